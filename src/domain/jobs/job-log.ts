import type { LogLevel, Prisma } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';

export interface JobLogLine {
  level: LogLevel;
  message: string;
  nodeId?: string | null;
  meta?: Prisma.InputJsonObject;
}

export async function writeJobLog(tx: Tx, renderJobId: string, line: JobLogLine): Promise<void> {
  await tx.jobLog.create({
    data: { renderJobId, level: line.level, message: line.message, nodeId: line.nodeId ?? null, meta: line.meta ?? {} },
  });
}
