// Moves node software rollouts along: halts them on crashes, sends the next wave once the
// current one has soaked. Replicas may all run it: a pass locks the rollouts it works on and
// skips those another replica holds.
import type { Logger } from 'pino';
import type { Services } from '../services.ts';
import { createLoop, type Loop } from './loop.ts';

export const ROLLOUT_INTERVAL_MS = 10_000;

export function rolloutLoop(services: Services, logger: Logger): Loop {
  return createLoop({
    name: 'rollouts',
    intervalMs: ROLLOUT_INTERVAL_MS,
    logger,
    run: () => services.updates.advanceRollouts(services.clock.now()),
  });
}
