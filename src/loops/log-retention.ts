import type { Logger } from 'pino';
import { pruneJobEvents } from '../domain/jobs/job-events.ts';
import { pruneJobLogs } from '../domain/jobs/log-retention.ts';
import { pruneSubmissionKeys } from '../domain/jobs/submission-keys.ts';
import type { Services } from '../services.ts';
import { createLoop, type Loop } from './loop.ts';

export const LOG_RETENTION_INTERVAL_MS = 60 * 60 * 1000;

export function logRetentionLoop(services: Services, logger: Logger): Loop {
  return createLoop({
    name: 'job-log-retention',
    intervalMs: LOG_RETENTION_INTERVAL_MS,
    logger,
    run: async () => {
      const now = services.clock.now();
      const logs = await pruneJobLogs(services.db.prisma, now);
      const events = await pruneJobEvents(services.db.prisma, now);
      const keys = await pruneSubmissionKeys(services.db.prisma, now);
      return { logLines: logs.deleted, progressEvents: events.deleted, submissionKeys: keys.deleted };
    },
  });
}
