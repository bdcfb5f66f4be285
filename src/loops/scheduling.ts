import type { Logger } from 'pino';
import type { Histogram } from 'prom-client';
import type { Scheduler } from '../domain/scheduling/scheduler.ts';
import { createLoop, type Loop } from './loop.ts';

/** Often enough that a free node waits about a second for work. */
export const ASSIGN_INTERVAL_MS = 1000;
/** A fifth of the heartbeat timeout, so a lost node is noticed within about 18 s. */
export const SWEEP_INTERVAL_MS = 3000;

export function schedulingLoops(scheduler: Scheduler, logger: Logger, passSeconds: Histogram): Loop[] {
  return [
    createLoop({
      name: 'assign-work',
      intervalMs: ASSIGN_INTERVAL_MS,
      logger,
      run: () => scheduler.assignWork(),
      onPass: (seconds) => passSeconds.observe(seconds),
    }),
    createLoop({ name: 'heartbeat-sweeper', intervalMs: SWEEP_INTERVAL_MS, logger, run: () => scheduler.sweepHeartbeats() }),
  ];
}
