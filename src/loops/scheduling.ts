import type { Logger } from 'pino';
import type { Counter, Histogram } from 'prom-client';
import type { Scheduler } from '../domain/scheduling/scheduler.ts';
import { createLoop, type Loop } from './loop.ts';

/** Often enough that a free node waits about a second for work. */
export const ASSIGN_INTERVAL_MS = 1000;
/** A fifth of the heartbeat timeout, so a lost node is noticed within about 18 s. */
export const SWEEP_INTERVAL_MS = 3000;

/** Stalls are judged in minutes; looking every 30 s is plenty. */
export const STALL_SWEEP_INTERVAL_MS = 30_000;

export function schedulingLoops(
  scheduler: Scheduler,
  sweepStalls: () => Promise<unknown>,
  logger: Logger,
  passSeconds: Histogram,
  nodesLost: Counter,
): Loop[] {
  return [
    createLoop({
      name: 'assign-work',
      intervalMs: ASSIGN_INTERVAL_MS,
      logger,
      run: () => scheduler.assignWork(),
      onPass: (seconds) => passSeconds.observe(seconds),
    }),
    createLoop({
      name: 'heartbeat-sweeper',
      intervalMs: SWEEP_INTERVAL_MS,
      logger,
      run: async () => {
        const swept = await scheduler.sweepHeartbeats();
        nodesLost.inc(swept.offline.length);
        return swept;
      },
    }),
    createLoop({ name: 'stall-sweeper', intervalMs: STALL_SWEEP_INTERVAL_MS, logger, run: () => sweepStalls() }),
  ];
}
