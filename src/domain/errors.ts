// Typed domain errors. Services throw them with the code callers see; src/transport/errors.ts
// gives each code its HTTP status and turns them into every door's answer (REST's status and
// error body, GraphQL's typed errors and extensions), so all doors answer alike.

export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_STATE'
  | 'STALE_LEASE'
  | 'PAYMENT_REQUIRED'
  | 'RATE_LIMITED'
  | 'PAYLOAD_TOO_LARGE';

export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export interface FieldProblem {
  path: string;
  message: string;
}

export class ValidationError extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  constructor(
    message: string,
    readonly problems: FieldProblem[] = [],
  ) {
    super(message, problems.length > 0 ? { problems } : {});
  }
}

export class UnauthenticatedError extends DomainError {
  readonly code = 'UNAUTHENTICATED';
}

export class ForbiddenError extends DomainError {
  readonly code = 'FORBIDDEN';
}

export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} was not found`, { entity, id });
  }
}

export class ConflictError extends DomainError {
  readonly code: ErrorCode = 'CONFLICT';
}

export class InvalidStateError extends ConflictError {
  override readonly code = 'INVALID_STATE';
}

export class StaleLeaseError extends ConflictError {
  override readonly code = 'STALE_LEASE';
}

export class PaymentRequiredError extends DomainError {
  readonly code = 'PAYMENT_REQUIRED';
  constructor(
    readonly requiredMinor: bigint,
    readonly balanceMinor: bigint,
  ) {
    super(`Insufficient balance: ${requiredMinor} required, ${balanceMinor} available (minor units)`, {
      required_minor: Number(requiredMinor),
      balance_minor: Number(balanceMinor),
    });
  }
}

/** Too many requests from one caller; retry after retryAfterSec. */
export class RateLimitedError extends DomainError {
  readonly code = 'RATE_LIMITED';
  constructor(
    readonly retryAfterSec: number,
    limit: number,
    windowSec: number,
  ) {
    super(`Too many requests: at most ${limit} every ${windowSec} s; retry in ${retryAfterSec} s`, {
      limit,
      window_sec: windowSec,
      retry_after_sec: retryAfterSec,
    });
  }
}
