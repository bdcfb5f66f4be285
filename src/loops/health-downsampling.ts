import type { Logger } from 'pino';
import { downsampleHealth } from '../domain/nodes/health-history.ts';
import type { Services } from '../services.ts';
import { createLoop, type Loop } from './loop.ts';

export const HEALTH_DOWNSAMPLING_INTERVAL_MS = 60_000;

export function healthDownsamplingLoop(services: Services, logger: Logger): Loop {
  return createLoop({
    name: 'health-downsampling',
    intervalMs: HEALTH_DOWNSAMPLING_INTERVAL_MS,
    logger,
    run: () => downsampleHealth(services.db.prisma, services.clock.now()),
  });
}
