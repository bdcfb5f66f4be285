import type { Logger } from 'pino';
import { pruneJobLogs } from '../domain/jobs/log-retention.ts';
import type { Services } from '../services.ts';
import { createLoop, type Loop } from './loop.ts';

export const LOG_RETENTION_INTERVAL_MS = 60 * 60 * 1000;

export function logRetentionLoop(services: Services, logger: Logger): Loop {
  return createLoop({
    name: 'job-log-retention',
    intervalMs: LOG_RETENTION_INTERVAL_MS,
    logger,
    run: () => pruneJobLogs(services.db.prisma, services.clock.now()),
  });
}
