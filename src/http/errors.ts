// One mapping from failures to the REST error body `{"error":{"code","message","details"}}`.
// `details` is an object in every error, its keys in snake_case: a validation error's `problems`
// ({path, message} each, at least one), what was not found (`entity`, `id`), the limit that was
// reached (`limit`), when to retry (`retry_after_sec`), or whatever else the message names.
import { isDatabaseUnavailable } from '../adapters/db/database.ts';
import { DomainError, RateLimitedError } from '../domain/errors.ts';

export interface ErrorReply {
  status: number;
  body: { error: { code: string; message: string; details: Record<string, unknown> } };
  headers?: Record<string, string>;
}

export function errorReply(status: number, code: string, message: string, details: Record<string, unknown> = {}): ErrorReply {
  return { status, body: { error: { code, message, details } } };
}

/** Seconds a client should wait before retrying while the database is away (Retry-After). */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/**
 * The database being away is not the caller's fault, and the same request succeeds once it is
 * back (agent reports are idempotent, so retrying one that did land changes nothing).
 */
export const DATABASE_UNAVAILABLE: ErrorReply = {
  ...errorReply(503, 'SERVICE_UNAVAILABLE', 'The database cannot be reached; retry shortly', { retry_after_sec: UNAVAILABLE_RETRY_AFTER_SECONDS }),
  headers: { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) },
};

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

/**
 * @param renamePath maps a domain field path back to the name the caller used (REST callers speak
 * snake_case), so problems point at the caller's own fields.
 */
export function toErrorReply(error: unknown, renamePath: (path: string) => string = (path) => path): ErrorReply | null {
  if (error instanceof DomainError) {
    const details =
      'problems' in error && Array.isArray(error.problems)
        ? {
            ...error.details,
            problems: (error.problems as { path: string; message: string }[]).map((problem) => ({
              path: renamePath(problem.path),
              message: problem.message,
            })),
          }
        : error.details;
    const reply = errorReply(error.status, error.code, error.message, details);
    return error instanceof RateLimitedError ? { ...reply, headers: { 'retry-after': String(error.retryAfterSec) } } : reply;
  }
  if (isDatabaseUnavailable(error)) return DATABASE_UNAVAILABLE;
  if (error && typeof error === 'object') return frameworkReply(error as FastifyLikeError);
  return null;
}

export const INTERNAL_ERROR = errorReply(500, 'INTERNAL', 'Internal error');
