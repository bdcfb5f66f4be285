// One mapping from failures to the REST error body `{"error":{"code","message","details"}}`.
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
  ...errorReply(503, 'SERVICE_UNAVAILABLE', 'The database cannot be reached; retry shortly'),
  headers: { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) },
};

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
}

/** Fastify's own client errors (bad JSON, wrong content type, body too large) keep their 4xx. */
function frameworkReply(error: FastifyLikeError): ErrorReply | null {
  const status = error.statusCode;
  if (status === undefined || status < 400 || status >= 500) return null;
  // The router refuses a path parameter over its length limit with 414; no such parameter is valid.
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return errorReply(400, 'VALIDATION_FAILED', 'A path parameter is too long');
  if (status === 413) return errorReply(413, 'PAYLOAD_TOO_LARGE', 'The request body is too large');
  if (status === 415) return errorReply(415, 'VALIDATION_FAILED', 'Send the body as application/json');
  if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return errorReply(400, 'VALIDATION_FAILED', 'The request body is empty; send a JSON object');
  }
  if (status === 400) return errorReply(400, 'VALIDATION_FAILED', error.message ?? 'Bad request');
  return errorReply(status, 'BAD_REQUEST', error.message ?? 'Bad request');
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
