// One HTTP server, three doors: GraphQL (HTTP and graphql-ws on /graphql), REST under /v1, and
// health endpoints. Everything behind the doors is in Services.
import { ApolloServer, type ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import { type DocumentNode, getOperationAST, getVariableValues, GraphQLError, parse, specifiedRules, validate } from 'graphql';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { registerRestRoutes } from '../../rest-compat/routes.ts';
import type { FolderObjectStore } from '../adapters/storage/folder-store.ts';
import type { Actor } from '../domain/actor.ts';
import { DomainError, type RateLimitedError, ValidationError } from '../domain/errors.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { connectionArgumentErrors, connectionArgumentsPlugin } from '../graphql/cursors.ts';
import { asGraphQLError, formatGraphQLError, INTERNAL_SERVER_ERROR, isInternalError, withCode } from '../graphql/errors.ts';
import { limitsPlugin, MAX_DOCUMENT_TOKENS, operationRefusals } from '../graphql/limits.ts';
import { schema } from '../graphql/schema.ts';
import type { RateLimitCounter } from '../ports.ts';
import type { Services } from '../services.ts';
import { errorReply, failureOf } from '../transport/errors.ts';
import { registerDocsRoutes } from './docs.ts';
import { INTERNAL_ERROR, methodNotAllowed, replyTo } from './errors.ts';
import { registerHealthRoutes } from './health.ts';
import { createLegacyProgressSockets } from './legacy-progress-ws.ts';
import { type Metrics, registerMetrics } from './metrics.ts';
import { discardRestOfBody } from './oversized-body.ts';
import { registerPlaygroundRoutes } from './playground.ts';
import { createRateLimiter } from './rate-limit.ts';
import { trackRouteMethods } from './route-methods.ts';

/**
 * One line per request, once answered, instead of Fastify's two. Agents' routine traffic (every
 * node heartbeats every few seconds and reports every frame) logs at debug, so info holds what
 * people and services did and every agent request that was refused.
 */
class RequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) return super.requestCompleted(error, request, reply);
    const routine = reply.statusCode < 400 && request.url.startsWith('/v1/internal/');
    const fields = { method: request.method, url: request.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime };
    if (routine) reply.log.debug(fields, 'request completed');
    else reply.log.info(fields, 'request completed');
  }
}

export interface HttpServer {
  app: FastifyInstance;
  metrics: Metrics;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

type Door = 'rest' | 'graphql' | 'graphql_ws';

/** Valid subscription documents kept for sharing (oldest dropped first), and the longest kept. */
const MAX_SHARED_DOCUMENTS = 256;
const MAX_SHARED_DOCUMENT_LENGTH = 4096;

/**
 * A request refused before any resolver ran (a bad credential, a rate limit) answers with the
 * status REST gives it; over HTTP it also says when to retry where REST does.
 */
function graphQLRefusal(error: DomainError, door: Door): GraphQLError {
  const headers = new HeaderMap();
  const { retryAfterSec } = failureOf(error);
  if (retryAfterSec !== undefined) headers.set('retry-after', String(retryAfterSec));
  return asGraphQLError(error, door === 'graphql' ? { headers } : {});
}

function rethrowAsGraphQLRefusal(error: unknown): never {
  throw error instanceof DomainError ? graphQLRefusal(error, 'graphql') : error;
}

/**
 * The credential a graphql-ws client sent in connection_init: an Authorization value, or (as the
 * Apollo Router and several browser clients send it) a bare `token`.
 */
function authorizationOf(params: Record<string, unknown> | undefined): string | undefined {
  const authorization = params?.Authorization ?? params?.authorization;
  if (typeof authorization === 'string') return authorization;
  const token = params?.token;
  if (typeof token !== 'string' || token === '') return undefined;
  return /^bearer /i.test(token) ? token : `Bearer ${token}`;
}

/** What a subscription sent over HTTP is refused with: it needs a socket to push its events on. */
export const SUBSCRIPTION_REQUIRES_WEBSOCKET = 'SUBSCRIPTION_REQUIRES_WEBSOCKET';

const subscriptionOverHttp = {
  message:
    'Subscriptions are served over WebSocket only: connect to this same /graphql path with graphql-ws (subprotocol graphql-transport-ws) and subscribe there',
  extensions: { code: SUBSCRIPTION_REQUIRES_WEBSOCKET },
};

/**
 * Refuses subscriptions over HTTP with 400 before anything runs (the resolver would answer null).
 * Apollo refuses a GET of one itself, with 405 (GET runs queries only), which would send the
 * client to POST: that answer is replaced by the same one.
 */
const subscriptionsOverWebSocketOnly: ApolloServerPlugin<GraphQLContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation }) {
        if (operation?.operation === 'subscription') {
          throw new GraphQLError(subscriptionOverHttp.message, { extensions: { ...subscriptionOverHttp.extensions, http: { status: 400 } } });
        }
      },
      async willSendResponse({ operation, response }) {
        if (operation?.operation !== 'subscription') return;
        response.body = { kind: 'single', singleResult: { errors: [subscriptionOverHttp] } };
        response.http.status = 400;
        response.http.headers.delete('allow');
      },
    };
  },
};

/**
 * Errors writing to a peer that is gone: reset, killed, or closed while an answer was on its way.
 * Nothing the server can fix, so logged at debug.
 */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

function isPeerGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && PEER_GONE.has(code);
}

function isGraphQLPath(url: string): boolean {
  return url.split('?')[0] === '/graphql';
}

interface HttpServerOptions {
  logger: Logger;
  folderStore?: FolderObjectStore;
  rateLimitCounter: RateLimitCounter;
}

type Closer = () => Promise<void>;

async function closeEach(closers: readonly Closer[], onError: (error: unknown) => void): Promise<void> {
  for (const close of [...closers].reverse()) await close().catch(onError);
}

export async function createHttpServer(services: Services, options: HttpServerOptions): Promise<HttpServer> {
  // What start-up has opened (the Fastify app, its sockets), in the order it opened it: a
  // later step failing closes it again, or the process could not exit.
  const closers: Closer[] = [];
  try {
    return await assembleHttpServer(services, options, closers);
  } catch (error) {
    await closeEach(closers, (closeError) => options.logger.error({ err: closeError }, 'Closing after a failed start failed'));
    throw error;
  }
}

async function assembleHttpServer(services: Services, options: HttpServerOptions, closers: Closer[]): Promise<HttpServer> {
  const { limits } = services.config;
  const bodyLimit = limits.bodyLimitBytes;
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new RequestLog(),
    bodyLimit,
    // The router's own refusals (a malformed percent-encoding, an overlong path parameter) bypass
    // the error handler; they get the same error body.
    frameworkErrors: (error, _request, reply) => {
      const mapped = replyTo(error) ?? INTERNAL_ERROR;
      return (reply as FastifyReply).status(mapped.status).send(mapped.body);
    },
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w-]{1,64}$/.test(given) ? given : crypto.randomUUID();
    },
  });

  closers.push(() => app.close());
  const methodsAt = trackRouteMethods(app);

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
      done(new ValidationError('The request body is not valid JSON', [{ path: 'body', message: 'is not valid JSON' }]), undefined);
    }
  });

  // Callers and log searches correlate through one id, given by the caller or made here.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // GraphQL callers get GraphQL's error shape with the same code, REST callers the error body.
  // An unexpected failure names the request, so that its logged cause can be found.
  app.setErrorHandler(async (error, request, reply) => {
    const mapped = replyTo(error);
    if (!mapped) request.log.error({ err: error }, 'Unhandled error');
    const graphQL = isGraphQLPath(request.url);
    const { status, body, headers } = mapped ?? INTERNAL_ERROR;
    reply.headers(headers ?? {});
    const details: Record<string, unknown> = { ...body.error.details, ...(mapped ? {} : { request_id: request.id }) };
    if (status === 413) {
      refused('payload_too_large', graphQL ? 'graphql' : 'rest');
      const limit = request.routeOptions.bodyLimit ?? bodyLimit;
      details.limit = limit;
      if (!(await discardRestOfBody(request.raw, limit))) reply.header('connection', 'close');
    }
    if (graphQL) {
      // As a domain error's extensions have them, with the request id where Apollo puts it.
      const { request_id: requestId, ...rest } = details;
      const extensions = { code: body.error.code, details: rest, ...(requestId === undefined ? {} : { requestId }) };
      return reply.status(status).send({ errors: [{ message: body.error.message, extensions }] });
    }
    return reply.status(status).send({ error: { ...body.error, details } });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = methodsAt(path);
    // A route that exists for this method may still find nothing to answer (an unknown asset).
    const { status, body, headers } =
      allowed.length > 0 && !allowed.includes(request.method)
        ? methodNotAllowed(request.method, path, allowed)
        : errorReply(404, 'NOT_FOUND', `No route for ${request.method} ${path}`, { entity: 'route', id: `${request.method} ${path}` });
    return reply.status(status).headers(headers ?? {}).send(body);
  });

  const metrics = registerMetrics(app, services);
  const refused = (reason: string, door: Door) => metrics.refusals.inc({ reason: reason.toLowerCase(), door });

  const rateLimiter = createRateLimiter(options.rateLimitCounter, limits.rateLimit, (error, firstOfRun) => {
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

  const contextFor = (actor: Actor): GraphQLContext => ({ actor, services, prisma: services.db.prisma });

  const formatWsError = (error: GraphQLError, peerGone = false) => {
    const formatted = formatGraphQLError(error.toJSON(), error);
    if (!isInternalError(error)) return formatted;
    const requestId = crypto.randomUUID();
    const fields = { err: error.originalError ?? error, requestId };
    if (peerGone) options.logger.debug(fields, 'graphql-ws client went away while its operation was answered');
    else options.logger.error(fields, 'GraphQL operation over graphql-ws failed');
    return { ...formatted, extensions: { ...formatted.extensions, requestId } };
  };

  // Subscribers send the same few documents again and again. Each one parsed and validated once
  // is shared by every subscription that sends it: ten thousand idle subscribers would otherwise
  // hold ten thousand copies of the same syntax tree, and pay the parse and validation each.
  const validDocuments = new Map<string, DocumentNode>();
  const remember = (query: string, document: DocumentNode) => {
    if (query.length > MAX_SHARED_DOCUMENT_LENGTH) return;
    if (validDocuments.size >= MAX_SHARED_DOCUMENTS) validDocuments.delete(validDocuments.keys().next().value as string);
    validDocuments.set(query, document);
  };

  // Apollo's stop goes here among the closers, to run once the sockets are closed: its drain
  // waits for every open connection.
  const sockets = closers.length;
  const wsServer = new WebSocketServer({ noServer: true, maxPayload: bodyLimit });
  const wsActors = new WeakMap<object, Actor>();
  const wsCleanup = useServer<Record<string, unknown> | undefined, { socket: WebSocket; request: { headers: Record<string, unknown> } }>(
    {
      schema,
      onConnect: async (ctx) => {
        metrics.graphqlWs.connecting(ctx);
        const header = authorizationOf(ctx.connectionParams) ?? ctx.extra.request.headers.authorization;
        try {
          wsActors.set(ctx.extra, await services.authenticator.fromAuthorization(header as string | undefined));
          return true;
        } catch (error) {
          if (isInternalError(error)) options.logger.error({ err: error }, 'graphql-ws connection could not be authenticated');
          return false;
        }
      },
      onClose: (ctx) => metrics.graphqlWs.closed(ctx),
      context: (ctx) => contextFor(wsActors.get(ctx.extra) ?? { kind: 'anonymous' }),
      // The checks Apollo and the limits plugin make over HTTP, for operations sent over the socket.
      onSubscribe: async (ctx, _id, payload) => {
        const actor = wsActors.get(ctx.extra) ?? { kind: 'anonymous' };
        const refusal = await admit(actor, 'graphql_ws');
        if (refusal) return [graphQLRefusal(refusal, 'graphql_ws')];
        let document = validDocuments.get(payload.query);
        if (!document) {
          try {
            document = parse(payload.query, { maxTokens: MAX_DOCUMENT_TOKENS });
          } catch (error) {
            if (error instanceof GraphQLError) return [withCode(error, ApolloServerErrorCode.GRAPHQL_PARSE_FAILED)];
            throw error;
          }
          const invalid = validate(schema, document, specifiedRules);
          if (invalid.length > 0) return invalid.map((error) => withCode(error, ApolloServerErrorCode.GRAPHQL_VALIDATION_FAILED));
          remember(payload.query, document);
        }
        const refusals = operationRefusals({ schema, document, operationName: payload.operationName, variables: payload.variables }, limits.graphql, actor);
        for (const limit of refusals) refused(String(limit.extensions.code), 'graphql_ws');
        if (refusals.length > 0) return refusals;
        const badArguments = connectionArgumentErrors(schema, document, payload.operationName, payload.variables);
        if (badArguments.length > 0) return badArguments;
        // Checked here, where graphql-ws would answer them as a result: Apollo refuses them over HTTP.
        const operation = getOperationAST(document, payload.operationName);
        const badVariables = operation ? getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {}).errors : undefined;
        if (badVariables) return badVariables.map((error) => withCode(error, ApolloServerErrorCode.BAD_USER_INPUT));
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables };
      },
      // The same error shapes and masking as over HTTP.
      onNext: (_ctx, _id, _payload, _args, result) =>
        'errors' in result && result.errors ? { ...result, errors: result.errors.map((error) => formatWsError(error)) } : undefined,
      // A failed write to a client that left has closed its socket by the time this runs.
      onError: (ctx, _id, _payload, errors) => {
        const open = ctx.extra.socket.readyState === WebSocket.OPEN;
        return errors.map((error) => formatWsError(error, !open && isPeerGone(error.originalError)));
      },
    },
    wsServer,
  );
  // ws closes a socket whose message is over maxPayload with 1009 before graphql-ws sees it.
  wsServer.on('connection', (socket) =>
    socket.on('error', (error: Error & { code?: string }) => {
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') refused('payload_too_large', 'graphql_ws');
    }),
  );
  closers.push(() => new Promise<void>((resolve) => wsServer.close(() => resolve())), async () => wsCleanup.dispose());
  const legacyProgress = createLegacyProgressSockets(services, bodyLimit);
  closers.push(() => legacyProgress.close());
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
    // The limits plugin applies the introspection policy, which depends on who asks.
    introspection: true,
    includeStacktraceInErrorResponses: services.config.env !== 'production',
    parseOptions: { maxTokens: MAX_DOCUMENT_TOKENS },
    // Apollo's own landing page loads from a CDN; the playground at /playground is served here.
    plugins: [
      fastifyApolloDrainPlugin(app),
      metrics.apolloPlugin,
      ApolloServerPluginLandingPageDisabled(),
      // The schema declares no cache hints, so every answer is uncacheable; the cache-control
      // plugin would still hook every resolved field to find that out (a tenth of the CPU of a
      // large listing), so it is off and the header it would send is set here.
      ApolloServerPluginCacheControlDisabled(),
      {
        async requestDidStart() {
          return {
            async willSendResponse({ response }) {
              response.http.headers.set('cache-control', 'no-store');
            },
          };
        },
      },
      subscriptionsOverWebSocketOnly,
      limitsPlugin(limits.graphql, (code) => refused(code, 'graphql')),
      connectionArgumentsPlugin(),
      {
        async requestDidStart() {
          return {
            // Masked errors name the request they happened in, so the logged original can be found.
            async didEncounterErrors({ errors, contextValue }) {
              for (const error of errors) {
                if (isInternalError(error)) options.logger.error({ err: error.originalError ?? error, reqId: contextValue.requestId }, 'GraphQL operation failed');
              }
            },
            async willSendResponse({ response, contextValue: { requestId } }) {
              if (response.body.kind !== 'single' || !requestId) return;
              for (const error of response.body.singleResult.errors ?? []) {
                if (error.extensions?.code === INTERNAL_SERVER_ERROR) Object.assign(error.extensions, { requestId });
              }
            },
          };
        },
      },
    ],
  });
  await apollo.start();
  closers.splice(sockets, 0, () => apollo.stop());
  app.route({
    url: '/graphql',
    method: ['GET', 'POST', 'OPTIONS'],
    handler: fastifyApolloHandler(apollo, {
      context: async (request: FastifyRequest) => {
        try {
          const actor = await services.authenticator.fromAuthorization(request.headers.authorization).catch(rethrowAsGraphQLRefusal);
          const refusal = await admit(actor, 'graphql');
          if (refusal) throw graphQLRefusal(refusal, 'graphql');
          return { ...contextFor(actor), requestId: request.id };
        } catch (error) {
          // Apollo answers a failed context without running the plugins that log and name masked
          // errors: done here, the same way.
          if (!isInternalError(error)) throw error;
          request.log.error({ err: error }, 'GraphQL context failed');
          throw new GraphQLError('Internal server error', { extensions: { code: INTERNAL_SERVER_ERROR, requestId: request.id, http: { status: 500 } } });
        }
      },
    }),
  });

  return {
    app,
    metrics,
    async listen(port, host) {
      // Listening is the last step of start-up: a port already taken leaves nothing open either.
      await app.listen({ port, host }).catch(async (error: unknown) => {
        await closeEach(closers, (closeError) => options.logger.error({ err: closeError }, 'Closing after a failed start failed'));
        throw error;
      });
      const address = app.server.address();
      return typeof address === 'object' && address ? address.port : port;
    },
    async close() {
      let failure: unknown;
      await closeEach(closers, (error) => {
        failure ??= error;
      });
      if (failure !== undefined) throw failure;
    },
  };
}
