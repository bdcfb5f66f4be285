// GraphQL over HTTP on /graphql: Apollo with the limits, the error masking and the metrics, and
// the credential and rate limit checked before any operation runs. Subscriptions go over
// graphql-ws (graphql-ws.ts).
import { ApolloServer, type ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import type { Actor } from '../domain/actor.ts';
import { DomainError, type RateLimitedError } from '../domain/errors.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { connectionArgumentsPlugin } from '../graphql/cursors.ts';
import { asGraphQLError, formatGraphQLError, INTERNAL_SERVER_ERROR, isInternalError } from '../graphql/errors.ts';
import { apolloExecutor } from '../graphql/execute.ts';
import { limitsPlugin, MAX_DOCUMENT_TOKENS } from '../graphql/limits.ts';
import { schema } from '../graphql/schema.ts';
import type { Services } from '../services.ts';
import { failureOf } from '../transport/errors.ts';
import type { Metrics } from './metrics.ts';

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
 * A request refused before any resolver ran (a bad credential, a rate limit) answers with the
 * status REST gives it, and says when to retry where REST does.
 */
function refusal(error: DomainError): GraphQLError {
  const headers = new HeaderMap();
  const { retryAfterSec } = failureOf(error);
  if (retryAfterSec !== undefined) headers.set('retry-after', String(retryAfterSec));
  return asGraphQLError(error, { headers });
}

function rethrowAsRefusal(error: unknown): never {
  throw error instanceof DomainError ? refusal(error) : error;
}

export interface GraphQLOverHttpOptions {
  services: Services;
  logger: Logger;
  metrics: Metrics;
  contextFor(actor: Actor): GraphQLContext;
  /** Counts the request against the actor's budget; the refusal to answer with when it is spent. */
  admit(actor: Actor): Promise<RateLimitedError | undefined>;
  /** Counts a refusal by a limit. */
  refused(reason: string): void;
}

export interface GraphQLOverHttp {
  /** Drains the requests in flight: to be called once the WebSockets are closed, as it waits for every open connection. */
  stop(): Promise<void>;
}

export async function mountGraphQLOverHttp(app: FastifyInstance, options: GraphQLOverHttpOptions): Promise<GraphQLOverHttp> {
  const { services, logger, metrics } = options;
  const apollo = new ApolloServer<GraphQLContext>({
    gateway: apolloExecutor(schema),
    formatError: formatGraphQLError,
    logger,
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
      limitsPlugin(services.config.limits.graphql, options.refused),
      connectionArgumentsPlugin(),
      {
        async requestDidStart() {
          return {
            // Masked errors name the request they happened in, so the logged original can be found.
            async didEncounterErrors({ errors, contextValue }) {
              for (const error of errors) {
                if (isInternalError(error)) logger.error({ err: error.originalError ?? error, reqId: contextValue.requestId }, 'GraphQL operation failed');
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
  app.route({
    url: '/graphql',
    method: ['GET', 'POST', 'OPTIONS'],
    handler: fastifyApolloHandler(apollo, {
      context: async (request: FastifyRequest) => {
        try {
          const actor = await services.authenticator.fromAuthorization(request.headers.authorization).catch(rethrowAsRefusal);
          const refused = await options.admit(actor);
          if (refused) throw refusal(refused);
          return { ...options.contextFor(actor), requestId: request.id };
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
  return { stop: () => apollo.stop() };
}
