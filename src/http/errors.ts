// The HTTP server's own refusals, in the error body src/transport/errors.ts writes for every
// failure: Fastify's client errors, a method a path is not routed for, and the internal error.
import { type ErrorReply, errorReply, toErrorReply } from '../transport/errors.ts';

export const INTERNAL_ERROR = errorReply(500, 'INTERNAL', 'Internal error');

/** A path asked with a method it is not routed for; `Allow` and `details` name the methods it is routed for. */
export function methodNotAllowed(method: string, path: string, allowed: string[]): ErrorReply {
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
export function replyTo(error: unknown): ErrorReply | null {
  return toErrorReply(error) ?? (error && typeof error === 'object' ? frameworkReply(error as FastifyLikeError) : null);
}
