// One HTTP server, three doors: GraphQL (HTTP and graphql-ws on /graphql), REST under /v1, and
// health endpoints. Everything behind the doors is in Services.
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import { GraphQLError } from 'graphql';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { registerRestRoutes } from '../../rest-compat/routes.ts';
import type { FolderObjectStore } from '../adapters/storage/folder-store.ts';
import type { Actor } from '../domain/actor.ts';
import { DomainError } from '../domain/errors.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { formatGraphQLError } from '../graphql/errors.ts';
import { schema } from '../graphql/schema.ts';
import type { Services } from '../services.ts';
import { registerDocsRoutes } from './docs.ts';
import { errorReply, INTERNAL_ERROR, toErrorReply } from './errors.ts';
import { registerHealthRoutes } from './health.ts';
import { createLegacyProgressSockets } from './legacy-progress-ws.ts';
import { type Metrics, registerMetrics } from './metrics.ts';
import { registerPlaygroundRoutes } from './playground.ts';

export const BODY_LIMIT_BYTES = 1024 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received: agent signatures cover these bytes. */
    rawBody?: Buffer;
  }
}

export interface HttpServer {
  app: FastifyInstance;
  metrics: Metrics;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

/** A bad credential on the GraphQL door is refused with its HTTP status, as on REST. */
function graphQLAuthError(error: unknown): never {
  if (error instanceof DomainError) {
    throw new GraphQLError(error.message, { extensions: { code: error.code, http: { status: error.status } } });
  }
  throw error;
}

export async function createHttpServer(
  services: Services,
  options: { logger: Logger; folderStore?: FolderObjectStore },
): Promise<HttpServer> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // The router's own refusals (a malformed percent-encoding, an overlong path parameter) bypass
    // the error handler; they get the same error body.
    frameworkErrors: (error, _request, reply) => {
      const mapped = toErrorReply(error) ?? INTERNAL_ERROR;
      return (reply as FastifyReply).status(mapped.status).send(mapped.body);
    },
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w-]{1,64}$/.test(given) ? given : crypto.randomUUID();
    },
  });

  // JSON only: any other body is refused with 415 instead of reaching a service as a string.
  app.removeAllContentTypeParsers();
  // Encoded outputs uploaded by agents; the routes that accept them set their own body limit.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    done(null, body);
  });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString('utf8')));
    } catch {
      done(Object.assign(new Error('The request body is not valid JSON'), { statusCode: 400 }), undefined);
    }
  });

  // Callers and log searches correlate through one id, given by the caller or made here.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.setErrorHandler((error, request, reply) => {
    const mapped = toErrorReply(error);
    if (mapped) return reply.status(mapped.status).headers(mapped.headers ?? {}).send(mapped.body);
    request.log.error({ err: error }, 'Unhandled error');
    return reply.status(INTERNAL_ERROR.status).send(INTERNAL_ERROR.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const notFound = errorReply(404, 'NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`);
    return reply.status(notFound.status).send(notFound.body);
  });

  const metrics = registerMetrics(app, services);
  registerHealthRoutes(app, services);
  registerRestRoutes(app, services, { folderStore: options.folderStore });
  await registerDocsRoutes(app);
  await registerPlaygroundRoutes(app);

  const contextFor = (actor: Actor): GraphQLContext => ({ actor, services, prisma: services.db.prisma });

  const wsServer = new WebSocketServer({ noServer: true, maxPayload: BODY_LIMIT_BYTES });
  const wsActors = new WeakMap<object, Actor>();
  const wsCleanup = useServer<Record<string, unknown> | undefined, { request: { headers: Record<string, unknown> } }>(
    {
      schema,
      onConnect: async (ctx) => {
        metrics.graphqlWs.connecting(ctx);
        const fromParams = ctx.connectionParams?.Authorization ?? ctx.connectionParams?.authorization;
        const header = typeof fromParams === 'string' ? fromParams : ctx.extra.request.headers.authorization;
        try {
          wsActors.set(ctx.extra, await services.authenticator.fromAuthorization(header as string | undefined));
          return true;
        } catch {
          return false;
        }
      },
      onClose: (ctx) => metrics.graphqlWs.closed(ctx),
      context: (ctx) => contextFor(wsActors.get(ctx.extra) ?? { kind: 'anonymous' }),
      // The same error shapes and masking as over HTTP.
      onNext: (_ctx, _id, _payload, _args, result) =>
        'errors' in result && result.errors
          ? { ...result, errors: result.errors.map((error) => formatGraphQLError(error.toJSON(), error)) }
          : undefined,
      onError: (_ctx, _id, _payload, errors) => errors.map((error) => formatGraphQLError(error.toJSON(), error)),
    },
    wsServer,
  );
  const legacyProgress = createLegacyProgressSockets(services, BODY_LIMIT_BYTES);
  app.server.on('upgrade', (request, socket, head) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    if (path === '/graphql') {
      wsServer.handleUpgrade(request, socket, head, (client) => wsServer.emit('connection', client, request));
    } else if (legacyProgress.handles(path)) {
      legacyProgress.upgrade(request, socket, head);
    } else {
      socket.destroy();
    }
  });

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    formatError: formatGraphQLError,
    logger: options.logger,
    // main.ts drains and closes everything on SIGTERM/SIGINT; Apollo re-raising them would cut that short.
    stopOnTerminationSignals: false,
    introspection: true,
    includeStacktraceInErrorResponses: services.config.env !== 'production',
    // Apollo's own landing page loads from a CDN; the playground at /playground is served here.
    plugins: [fastifyApolloDrainPlugin(app), metrics.apolloPlugin, ApolloServerPluginLandingPageDisabled()],
  });
  await apollo.start();
  app.route({
    url: '/graphql',
    method: ['GET', 'POST', 'OPTIONS'],
    handler: fastifyApolloHandler(apollo, {
      context: async (request: FastifyRequest) =>
        contextFor(await services.authenticator.fromAuthorization(request.headers.authorization).catch(graphQLAuthError)),
    }),
  });

  return {
    app,
    metrics,
    async listen(port, host) {
      await app.listen({ port, host });
      const address = app.server.address();
      return typeof address === 'object' && address ? address.port : port;
    },
    async close() {
      await wsCleanup.dispose();
      await legacyProgress.close();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
      await apollo.stop();
      await app.close();
    },
  };
}
