// What a failure the caller can act on answers with, decided here once for every door: REST's
// error body, GraphQL's error extensions (over HTTP and graphql-ws) and the HTTP server's own
// refusals all read it, so each failure has one status and one code wherever it is answered.
// Domain errors bring their code, which HTTP_STATUS gives a status; the database being away is
// added here.
//
// The error body is `{"error":{"code","message","details"}}`. `details` is an object in every
// error, its keys in snake_case: a validation error's `problems` ({path, message} each, at least
// one), what was not found (`entity`, `id`), the limit that was reached (`limit`), when to retry
// (`retry_after_sec`), or whatever else the message names.
import { isDatabaseUnavailable } from '../adapters/db/database.ts';
import { DomainError, type ErrorCode, RateLimitedError } from '../domain/errors.ts';

export interface Failure {
  /** The HTTP status: REST answers with it, GraphQL gives it in `extensions.http.status`. */
  status: number;
  /** `error.code` in the error body, `extensions.code` in a GraphQL error. */
  code: string;
  message: string;
  /** What a domain error names; the database being away names nothing but when to retry. */
  details?: Record<string, unknown>;
  /** When the same request can succeed, for a Retry-After header. */
  retryAfterSec?: number;
}

/** The HTTP status of each domain failure: the one place where the domain meets HTTP. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  PAYMENT_REQUIRED: 402,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  INVALID_STATE: 409,
  STALE_LEASE: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
};

/** Seconds a client should wait before retrying while the database is away. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/**
 * The database being away is not the caller's fault, and the same request succeeds once it is
 * back (agent reports are idempotent, so retrying one that did land changes nothing).
 */
const DATABASE_UNAVAILABLE: Failure = {
  status: 503,
  code: 'SERVICE_UNAVAILABLE',
  message: 'The database cannot be reached; retry shortly',
  retryAfterSec: UNAVAILABLE_RETRY_AFTER_SECONDS,
};

/** The failure an error answers with, or null for one no caller can act on (an internal error). */
export function failureOf(error: DomainError): Failure;
export function failureOf(error: unknown): Failure | null;
export function failureOf(error: unknown): Failure | null {
  if (error instanceof DomainError) {
    return {
      status: HTTP_STATUS[error.code],
      code: error.code,
      message: error.message,
      details: error.details,
      ...(error instanceof RateLimitedError ? { retryAfterSec: error.retryAfterSec } : {}),
    };
  }
  if (isDatabaseUnavailable(error)) return DATABASE_UNAVAILABLE;
  return null;
}

export interface ErrorReply {
  status: number;
  body: { error: { code: string; message: string; details: Record<string, unknown> } };
  headers?: Record<string, string>;
}

export function errorReply(status: number, code: string, message: string, details: Record<string, unknown> = {}): ErrorReply {
  return { status, body: { error: { code, message, details } } };
}

/**
 * The error body of a failure, or null as failureOf gives it.
 * @param renamePath maps a domain field path back to the name the caller used (REST callers speak
 * snake_case), so problems point at the caller's own fields.
 */
export function toErrorReply(error: unknown, renamePath: (path: string) => string = (path) => path): ErrorReply | null {
  const failure = failureOf(error);
  if (!failure) return null;
  const { status, code, message, details = {}, retryAfterSec } = failure;
  const problems = details.problems as { path: string; message: string }[] | undefined;
  const reply = errorReply(status, code, message, {
    ...details,
    ...(problems ? { problems: problems.map((problem) => ({ path: renamePath(problem.path), message: problem.message })) } : {}),
    ...(retryAfterSec === undefined ? {} : { retry_after_sec: retryAfterSec }),
  });
  return retryAfterSec === undefined ? reply : { ...reply, headers: { 'retry-after': String(retryAfterSec) } };
}
