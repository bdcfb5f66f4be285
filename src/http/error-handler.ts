// How the HTTP server answers what no door answered itself: a request refused before it reached
// a route (a body too large or not JSON, a malformed URL), a path with no route, or a failure a
// route let through. GraphQL callers get GraphQL's error shape, everyone else the error body,
// with the code and status src/transport/errors.ts gives each failure.
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { type ErrorReply, errorReply, toErrorReply } from '../transport/errors.ts';
import type { Door } from './metrics.ts';
import { discardRestOfBody } from './oversized-body.ts';

const INTERNAL_ERROR = errorReply(500, 'INTERNAL', 'Internal error');

/** A path asked with a method it is not routed for; `Allow` and `details` name the methods it is routed for. */
function methodNotAllowed(method: string, path: string, allowed: string[]): ErrorReply {
  return {
    ...errorReply(405, 'METHOD_NOT_ALLOWED', `${path} does not take ${method}; it takes ${allowed.join(', ')}`, { allowed_methods: allowed }),
    headers: { allow: allowed.join(', ') },
  };
}

/** A refusal of the request's URL or body as a whole, shaped like a field's validation error. */
function invalidRequest(message: string, part: 'url' | 'body', problem: string): ErrorReply {
  return errorReply(400, 'VALIDATION_FAILED', message, { problems: [{ path: part, message: problem }] });
}

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
}

/** Fastify's own client errors (a malformed URL, a wrong content type, a body too large) keep their 4xx. */
function frameworkReply(error: FastifyLikeError): ErrorReply | null {
  const status = error.statusCode;
  if (status === undefined || status < 400 || status >= 500) return null;
  // The router refuses a path parameter over its length limit with 414; no such parameter is valid.
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return invalidRequest('A path parameter is too long', 'url', 'has a path parameter that is too long');
  if (status === 413) return errorReply(413, 'PAYLOAD_TOO_LARGE', 'The request body is too large');
  if (status === 415) {
    return errorReply(415, 'UNSUPPORTED_MEDIA_TYPE', "Send the body as application/json (the agents' file uploads as application/octet-stream)");
  }
  const message = error.message ?? 'Bad request';
  if (status === 400) return invalidRequest(message, error.code === 'FST_ERR_BAD_URL' ? 'url' : 'body', message);
  return errorReply(status, 'BAD_REQUEST', message);
}

/** The answer to a failure the service can name, Fastify's own included; null for an internal one. */
function replyTo(error: unknown): ErrorReply | null {
  return toErrorReply(error) ?? (error && typeof error === 'object' ? frameworkReply(error as FastifyLikeError) : null);
}

/**
 * For Fastify's `frameworkErrors` option: the router's own refusals (a malformed percent-encoding,
 * an overlong path parameter) bypass the error handler; they get the same error body.
 */
export function answerFrameworkError(error: FastifyError, reply: FastifyReply): FastifyReply {
  const mapped = replyTo(error) ?? INTERNAL_ERROR;
  return reply.status(mapped.status).send(mapped.body);
}

function isGraphQLPath(url: string): boolean {
  return url.split('?')[0] === '/graphql';
}

export interface ErrorAnswerOptions {
  bodyLimit: number;
  /** The methods a path is routed for (trackRouteMethods), so that another method answers 405. */
  methodsAt(path: string): string[];
  /** Counts a refusal by a limit. */
  refused(reason: string, door: Door): void;
}

/** Sets the error and not-found handlers. */
export function answerErrors(app: FastifyInstance, options: ErrorAnswerOptions): void {
  // An unexpected failure names the request, so that its logged cause can be found.
  app.setErrorHandler(async (error, request, reply) => {
    const mapped = replyTo(error);
    if (!mapped) request.log.error({ err: error }, 'Unhandled error');
    const graphQL = isGraphQLPath(request.url);
    const { status, body, headers } = mapped ?? INTERNAL_ERROR;
    reply.headers(headers ?? {});
    const details: Record<string, unknown> = { ...body.error.details, ...(mapped ? {} : { request_id: request.id }) };
    if (status === 413) {
      options.refused('payload_too_large', graphQL ? 'graphql' : 'rest');
      const limit = request.routeOptions.bodyLimit ?? options.bodyLimit;
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
    const allowed = options.methodsAt(path);
    // A route that exists for this method may still find nothing to answer (an unknown asset).
    const { status, body, headers } =
      allowed.length > 0 && !allowed.includes(request.method)
        ? methodNotAllowed(request.method, path, allowed)
        : errorReply(404, 'NOT_FOUND', `No route for ${request.method} ${path}`, { entity: 'route', id: `${request.method} ${path}` });
    return reply.status(status).headers(headers ?? {}).send(body);
  });
}
