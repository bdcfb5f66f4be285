// The composition root: configuration -> adapters -> services -> HTTP server.
import { createHmac } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { createAuthenticator } from './adapters/auth/authenticator.ts';
import { deriveAgentKey } from './adapters/auth/agent-signature.ts';
import { createMemoryBus } from './adapters/bus/memory-bus.ts';
import { withBestEffortPublishing } from './adapters/bus/best-effort-publishing.ts';
import { createRedisBus } from './adapters/bus/redis-bus.ts';
import { openDatabase } from './adapters/db/database.ts';
import { applyMigrations, MIGRATIONS_DIR } from './adapters/db/migrator.ts';
import { createMemoryNonceStore } from './adapters/nonce/memory-nonce-store.ts';
import { createRedisNonceStore } from './adapters/nonce/redis-nonce-store.ts';
import { createMemoryRateLimitCounter } from './adapters/rate-limit/memory-rate-limit-counter.ts';
import { createRedisRateLimitCounter } from './adapters/rate-limit/redis-rate-limit-counter.ts';
import { createFolderObjectStore, type FolderObjectStore } from './adapters/storage/folder-store.ts';
import { createS3ObjectStore } from './adapters/storage/s3-store.ts';
import { type Config, redisClientName } from './config.ts';
import { createLogger } from './logger.ts';
import { createDiscountCodeService } from './domain/billing/discount-codes.ts';
import { createBillingService } from './domain/billing/ledger.ts';
import { createExportService } from './domain/exports/export-service.ts';
import { createAgentService } from './domain/agents/agent-service.ts';
import { createJobService } from './domain/jobs/job-service.ts';
import { createNodeAdminService } from './domain/nodes/node-admin-service.ts';
import { createNodeService } from './domain/nodes/node-service.ts';
import { createSavedProjectService } from './domain/projects/saved-project-service.ts';
import { createScheduler } from './domain/scheduling/scheduler.ts';
import { createSnapshotService } from './domain/snapshots/snapshot-service.ts';
import { sweepStalledWork } from './domain/scheduling/stall-sweeper.ts';
import { createRolloutService } from './domain/updates/rollout-service.ts';
import { createHttpServer, type HttpServer } from './http/server.ts';
import { createExportSweeper } from './loops/export-sweeper.ts';
import { healthDownsamplingLoop } from './loops/health-downsampling.ts';
import { logRetentionLoop } from './loops/log-retention.ts';
import type { Loop } from './loops/loop.ts';
import { rolloutLoop } from './loops/rollouts.ts';
import { schedulingLoops } from './loops/scheduling.ts';
import { type Clock, systemClock } from './ports.ts';
import type { Services } from './services.ts';

export interface App {
  services: Services;
  http: HttpServer;
  logger: Logger;
  /** Background loops; started by listen(), stopped by close(). */
  loops: Loop[];
  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<{ url: string; port: number }>;
  /** Drains HTTP and WebSocket clients, then closes every pool and connection. */
  close(): Promise<void>;
}

export interface AppOptions {
  clock?: Clock;
  logger?: Logger;
  /** Tests that drive loops by hand (runOnce) leave them stopped. */
  startLoops?: boolean;
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config);
  if (config.developmentDefaults.length > 0) {
    logger.warn(
      { variables: config.developmentDefaults },
      'Using DEVELOPMENT DEFAULTS for secrets: never expose this instance. Set these variables in production.',
    );
  }
  const dataDir = resolve(config.dataDir);
  const closers: Array<() => Promise<void>> = [];
  try {
    const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir });
    closers.push(() => db.close());
    const { applied } = await applyMigrations(db.sql, MIGRATIONS_DIR, (message) => logger.info(message));
    if (applied.length > 0) logger.info({ applied }, 'Applied database migrations');

    const connectedBus = config.redisUrl
      ? await createRedisBus(config.redisUrl, {
          channelPrefix: config.redisPrefix,
          clientName: redisClientName(config),
          onError: (error) => logger.warn({ err: error }, 'Redis event bus: reconnecting or a listener failed'),
        })
      : createMemoryBus();
    closers.push(() => connectedBus.close());
    // The metrics exist once the HTTP server does; failures before that are only logged.
    let countUnpublished = () => {};
    const bus = withBestEffortPublishing(connectedBus, (error, topic) => {
      logger.warn({ err: error, topic }, 'An event could not be published; its change is saved and subscribers catch up when the bus is back');
      countUnpublished();
    });
    const nonces = config.redisUrl
      ? await createRedisNonceStore(config.redisUrl, {
          clock,
          keyPrefix: `${config.redisPrefix}nonce:`,
          onError: (error) => logger.warn({ err: error }, 'Replay checks: Redis'),
        })
      : createMemoryNonceStore({ clock });
    closers.push(() => nonces.close());
    const rateLimitCounter = config.redisUrl
      ? await createRedisRateLimitCounter(config.redisUrl, {
          keyPrefix: config.limits.rateLimit.keyPrefix,
          clientName: `${redisClientName(config)}:rate-limit`,
          onError: (error) => logger.debug({ err: error }, 'Rate limit counter: Redis connection error'),
        })
      : createMemoryRateLimitCounter();
    // Closed after the HTTP server: requests it drains as it closes are still counted.
    closers.push(() => rateLimitCounter.close());
    let folderStore: FolderObjectStore | undefined;
    const store = config.s3
      ? await createS3ObjectStore(config.s3)
      : (folderStore = createFolderObjectStore({
          root: join(dataDir, 'objects'),
          publicBaseUrl: config.publicBaseUrl,
          // A key of its own, so object URLs cannot be forged from anything agents hold.
          signingSecret: createHmac('sha256', config.nodeHmacSecret).update('object-urls').digest('hex'),
          clock,
        }));
    closers.push(() => store.close());

    const prisma = db.prisma;
    const scheduler = createScheduler({ prisma, bus, clock });
    const services: Services = {
      config,
      clock,
      db,
      bus,
      store,
      nonces,
      authenticator: createAuthenticator(config, nonces, clock),
      nodes: createNodeService({ prisma, driver: db, bus, clock, agentKeyOf: (nodeId) => deriveAgentKey(config.nodeHmacSecret, nodeId) }),
      nodeAdmin: createNodeAdminService({ prisma, bus, clock }),
      updates: createRolloutService({ prisma, bus, clock, store }),
      jobs: createJobService({ prisma, read: db.read, bus, clock }),
      scheduler,
      agents: createAgentService({
        prisma,
        driver: db,
        bus,
        clock,
        store,
        scheduler,
      }),
      billing: createBillingService({ prisma }),
      discountCodes: createDiscountCodeService({ prisma }),
      savedProjects: createSavedProjectService({ prisma }),
      exports: createExportService({ prisma, store, clock }),
      snapshots: createSnapshotService({ prisma, bus, clock, store }),
    };
    const http = await createHttpServer(services, { logger, folderStore, rateLimitCounter });
    countUnpublished = () => http.metrics.eventsNotPublished.inc();
    const loops: Loop[] = [
      ...schedulingLoops(scheduler, () => sweepStalledWork(prisma, bus, clock), logger, http.metrics.schedulerPassSeconds, http.metrics.nodesLost),
      createExportSweeper({ exports: services.exports, logger }),
      logRetentionLoop(services, logger),
      healthDownsamplingLoop(services, logger),
      rolloutLoop(services, logger),
    ];

    const closeAll = async () => {
      for (const close of closers.reverse()) await close().catch((error) => logger.error({ err: error }, 'close failed'));
    };
    return {
      services,
      http,
      logger,
      loops,
      async listen() {
        // The HTTP server has closed itself when it cannot listen; what the app opened goes too.
        const port = await http.listen(config.port, config.host).catch(async (error: unknown) => {
          await closeAll();
          throw error;
        });
        if (options.startLoops !== false) for (const loop of loops) loop.start();
        return { url: `http://127.0.0.1:${port}`, port };
      },
      async close() {
        await Promise.all(loops.map((loop) => loop.stop()));
        await http.close();
        await closeAll();
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw error;
  }
}
