// GraphQL over graphql-ws on /graphql: subscriptions, and any operation a client sends over its
// socket. Each gets the checks, error shapes and masking it would get over HTTP. The protocol
// itself is spoken by graphql-transport-ws.ts.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import { type DocumentNode, getOperationAST, getVariableValues, GraphQLError, parse, specifiedRules, validate } from 'graphql';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { setKeepingAtMost } from '../bounded-map.ts';
import type { Actor } from '../domain/actor.ts';
import type { RateLimitedError } from '../domain/errors.ts';
import type { GraphQLContext } from '../graphql/builder.ts';
import { connectionArgumentErrors } from '../graphql/cursors.ts';
import { asGraphQLError, formatGraphQLError, isInternalError, withCode } from '../graphql/errors.ts';
import { MAX_DOCUMENT_TOKENS, operationRefusals } from '../graphql/limits.ts';
import { schema } from '../graphql/schema.ts';
import type { Services } from '../services.ts';
import { createGraphQLTransport } from './graphql-transport-ws.ts';
import type { Metrics } from './metrics.ts';

/** Valid subscription documents kept for sharing (oldest dropped first), and the longest kept. */
const MAX_SHARED_DOCUMENTS = 256;
const MAX_SHARED_DOCUMENT_LENGTH = 4096;

/**
 * Errors writing to a peer that is gone: reset, killed, or closed while an answer was on its way.
 * Nothing the server can fix, so logged at debug.
 */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

function isPeerGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && PEER_GONE.has(code);
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

export interface GraphQLWsOptions {
  services: Services;
  logger: Logger;
  metrics: Metrics;
  maxPayload: number;
  contextFor(actor: Actor): GraphQLContext;
  /** Counts the operation against the actor's budget; the refusal to answer with when it is spent. */
  admit(actor: Actor): Promise<RateLimitedError | undefined>;
  /** Counts a refusal by a limit. */
  refused(reason: string): void;
}

export interface GraphQLWs {
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

export function createGraphQLWs(options: GraphQLWsOptions): GraphQLWs {
  const { services, logger, metrics } = options;
  const limits = services.config.limits.graphql;

  const formatError = (error: GraphQLError, peerGone = false) => {
    const formatted = formatGraphQLError(error.toJSON(), error);
    if (!isInternalError(error)) return formatted;
    const requestId = crypto.randomUUID();
    const fields = { err: error.originalError ?? error, requestId };
    if (peerGone) logger.debug(fields, 'graphql-ws client went away while its operation was answered');
    else logger.error(fields, 'GraphQL operation over graphql-ws failed');
    return { ...formatted, extensions: { ...formatted.extensions, requestId } };
  };

  // Subscribers send the same few documents again and again. Each one parsed and validated once
  // is shared by every subscription that sends it: ten thousand idle subscribers would otherwise
  // hold ten thousand copies of the same syntax tree, and pay the parse and validation each.
  const validDocuments = new Map<string, DocumentNode>();
  const remember = (query: string, document: DocumentNode) => {
    if (query.length > MAX_SHARED_DOCUMENT_LENGTH) return;
    setKeepingAtMost(validDocuments, MAX_SHARED_DOCUMENTS, query, document);
  };

  return createGraphQLTransport(
    {
      connect: async (connection, params) => {
        metrics.graphqlWs.connecting(connection);
        const header = authorizationOf(params) ?? connection.authorization;
        try {
          connection.actor = await services.authenticator.fromAuthorization(header);
          return true;
        } catch (error) {
          if (isInternalError(error)) logger.error({ err: error }, 'graphql-ws connection could not be authenticated');
          return false;
        }
      },
      // The checks Apollo and the limits plugin make over HTTP, for operations sent over the socket.
      prepare: async (connection, payload) => {
        const actor = connection.actor ?? { kind: 'anonymous' };
        const refusal = await options.admit(actor);
        if (refusal) return [asGraphQLError(refusal)];
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
        const refusals = operationRefusals({ schema, document, operationName: payload.operationName, variables: payload.variables }, limits, actor);
        for (const limit of refusals) options.refused(String(limit.extensions.code));
        if (refusals.length > 0) return refusals;
        const badArguments = connectionArgumentErrors(schema, document, payload.operationName, payload.variables);
        if (badArguments.length > 0) return badArguments;
        // Checked here, where graphql-ws would answer them as a result: Apollo refuses them over HTTP.
        const operation = getOperationAST(document, payload.operationName);
        const badVariables = operation ? getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {}).errors : undefined;
        if (badVariables) return badVariables.map((error) => withCode(error, ApolloServerErrorCode.BAD_USER_INPUT));
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: options.contextFor(actor),
        };
      },
      // The same error shapes and masking as over HTTP.
      resultPayload: (result) => (result.errors ? { ...result, errors: result.errors.map((error) => formatError(error)) } : result),
      // A failed write to a client that left has closed its socket by the time this runs.
      errorsPayload: (connection, errors) => {
        const open = connection.socket.readyState === WebSocket.OPEN;
        return errors.map((error) => formatError(error, !open && isPeerGone(error.originalError)));
      },
      closed: (connection) => metrics.graphqlWs.closed(connection),
      failed: (error) => logger.error({ err: error }, 'Internal error occurred during graphql-ws message handling'),
      // ws has closed the socket by then; a message over maxPayload (closed with 1009) is a refusal.
      socketFailed: (error) => {
        if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') options.refused('payload_too_large');
        else if (isPeerGone(error)) logger.debug({ err: error }, 'graphql-ws client went away');
        else logger.warn({ err: error }, 'graphql-ws socket failed and was closed');
      },
    },
    { maxPayload: options.maxPayload, production: services.config.env === 'production' },
  );
}
