// How long job logs are kept: debug lines for DEBUG_RETENTION_DAYS, everything of a job that
// ended (Completed, Failed, Cancelled) for ENDED_JOB_RETENTION_DAYS after it ended. Lines of
// jobs still running are kept whatever their age, since they explain what the job is doing.
// Deletes go in batches so a large backlog never holds long locks; running it on several
// replicas at once is harmless (a line is deleted once, the others find nothing).
import type { PrismaClient } from '../../generated/prisma/client.ts';
import { TERMINAL_STEPS } from './state-machine.ts';

export const DEBUG_RETENTION_DAYS = 7;
export const ENDED_JOB_RETENTION_DAYS = 30;
const BATCH = 5000;
const DAY_MS = 24 * 60 * 60 * 1000;

export async function pruneJobLogs(prisma: PrismaClient, now: Date): Promise<{ deleted: number }> {
  const debugBefore = new Date(now.getTime() - DEBUG_RETENTION_DAYS * DAY_MS);
  const endedBefore = new Date(now.getTime() - ENDED_JOB_RETENTION_DAYS * DAY_MS);
  let deleted = 0;
  for (;;) {
    const batch = await prisma.jobLog.findMany({
      where: {
        OR: [
          { level: 'debug', timestamp: { lt: debugBefore } },
          { renderJob: { step: { in: [...TERMINAL_STEPS] }, completedAt: { lt: endedBefore } } },
        ],
      },
      select: { id: true },
      take: BATCH,
    });
    if (batch.length === 0) return { deleted };
    const { count } = await prisma.jobLog.deleteMany({ where: { id: { in: batch.map((line) => line.id) } } });
    deleted += count;
    if (batch.length < BATCH) return { deleted };
  }
}
