// One HTTP server, three doors: GraphQL (HTTP and graphql-ws on /graphql), REST under /v1, and
// health endpoints. Everything behind the doors is in Services; this puts the doors on one Fastify
// app, with what they share: body parsing, request ids, error answers, metrics and rate limits.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { registerRestRoutes } from '../../rest-compat/routes.ts';
import type { FolderObjectStore } from '../adapters/storage/folder-store.ts';
import type { Actor } from '../domain/actor.ts';
import type { RateLimitedError } from '../domain/errors.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import type { RateLimitCounter } from '../ports.ts';
import type { Services } from '../services.ts';
import { registerConsoleRoutes } from './console.ts';
import { registerDocsRoutes } from './docs.ts';
import { answerErrors, answerFrameworkError } from './error-handler.ts';
import { mountGraphQLOverHttp } from './graphql-http.ts';
import { createGraphQLWs } from './graphql-ws.ts';
import { registerHealthRoutes } from './health.ts';
import { createLegacyProgressSockets } from './legacy-progress-ws.ts';
import { type Door, type Metrics, registerMetrics } from './metrics.ts';
import { registerPlaygroundRoutes } from './playground.ts';
import { createRateLimiter } from './rate-limit.ts';
import { acceptBodies } from './request-body.ts';
import { RequestLog } from './request-log.ts';
import { trackRouteMethods } from './route-methods.ts';
import { createShutdown, type Shutdown } from './shutdown.ts';

export interface HttpServer {
  app: FastifyInstance;
  metrics: Metrics;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

interface HttpServerOptions {
  logger: Logger;
  folderStore?: FolderObjectStore;
  rateLimitCounter: RateLimitCounter;
}

export async function createHttpServer(services: Services, options: HttpServerOptions): Promise<HttpServer> {
  const shutdown = createShutdown();
  // What start-up has opened closes again when a later step fails, or the process could not exit.
  const closeAfterFailedStart = () => shutdown.close((error) => options.logger.error({ err: error }, 'Closing after a failed start failed'));
  let server: Pick<HttpServer, 'app' | 'metrics'>;
  try {
    server = await assembleHttpServer(services, options, shutdown);
  } catch (error) {
    await closeAfterFailedStart();
    throw error;
  }
  return {
    ...server,
    async listen(port, host) {
      // Listening is the last step of start-up: a port already taken leaves nothing open either.
      await server.app.listen({ port, host }).catch(async (error: unknown) => {
        await closeAfterFailedStart();
        throw error;
      });
      const address = server.app.server.address();
      return typeof address === 'object' && address ? address.port : port;
    },
    async close() {
      let failure: unknown;
      await shutdown.close((error) => {
        failure ??= error;
      });
      if (failure !== undefined) throw failure;
    },
  };
}

async function assembleHttpServer(services: Services, options: HttpServerOptions, shutdown: Shutdown): Promise<Pick<HttpServer, 'app' | 'metrics'>> {
  const bodyLimit = services.config.limits.bodyLimitBytes;
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new RequestLog(),
    bodyLimit,
    frameworkErrors: (error, _request, reply) => answerFrameworkError(error, reply as FastifyReply),
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w-]{1,64}$/.test(given) ? given : crypto.randomUUID();
    },
  });
  shutdown.add('app', () => app.close());

  // Before any route is added: a method a path is not routed for answers 405, naming every route's.
  const methodsAt = trackRouteMethods(app);
  acceptBodies(app);
  // Callers and log searches correlate through one id, given by the caller or made here.
  // Callback hooks rather than async ones: every request passes them, and a promise each is CPU.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  const metrics = registerMetrics(app, services);
  const refused = (reason: string, door: Door) => metrics.refusals.inc({ reason: reason.toLowerCase(), door });
  answerErrors(app, { bodyLimit, methodsAt, refused });
  const rateLimiter = createRateLimiter(options.rateLimitCounter, services.config.limits.rateLimit, (error, firstOfRun) => {
    metrics.rateLimitCounterErrors.inc();
    if (firstOfRun) options.logger.warn({ err: error }, 'Rate limits cannot be counted; requests are served without them until the counter answers');
  });
  /** Counts the request against the actor's budget; the refusal to answer with when it is spent. */
  const admit = async (actor: Actor, door: Door): Promise<RateLimitedError | undefined> => {
    const refusal = await rateLimiter.admit(actor);
    if (refusal) refused('rate_limited', door);
    return refusal;
  };

  registerHealthRoutes(app, services);
  registerRestRoutes(app, services, {
    folderStore: options.folderStore,
    admit: async (actor) => {
      const refusal = await admit(actor, 'rest');
      if (refusal) throw refusal;
    },
  });
  await registerDocsRoutes(app, { publicBaseUrl: services.config.publicBaseUrl });
  await registerPlaygroundRoutes(app);
  await registerConsoleRoutes(app);

  const contextFor = (actor: Actor): GraphQLContext => ({ actor, services, prisma: services.db.prisma });
  const graphqlWs = createGraphQLWs({
    services,
    logger: options.logger,
    metrics,
    maxPayload: bodyLimit,
    contextFor,
    admit: (actor) => admit(actor, 'graphql_ws'),
    refused: (reason) => refused(reason, 'graphql_ws'),
  });
  shutdown.add('sockets', () => graphqlWs.close());
  const legacyProgress = createLegacyProgressSockets(services, bodyLimit);
  shutdown.add('sockets', () => legacyProgress.close());
  app.server.on('upgrade', (request, socket, head) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    if (path === '/graphql') graphqlWs.upgrade(request, socket, head);
    else if (legacyProgress.handles(path)) legacyProgress.upgrade(request, socket, head);
    else socket.destroy();
  });

  const graphqlHttp = await mountGraphQLOverHttp(app, {
    services,
    logger: options.logger,
    metrics,
    contextFor,
    admit: (actor) => admit(actor, 'graphql'),
    refused: (reason) => refused(reason, 'graphql'),
  });
  shutdown.add('graphql', () => graphqlHttp.stop());

  return { app, metrics };
}
