// Domain errors as GraphQL types, for mutations that return them in result unions, and thrown
// failures as GraphQL errors for everything else, with the code and status src/transport/errors.ts
// gives them at every door.
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import {
  ConflictError,
  DomainError,
  type FieldProblem,
  ForbiddenError,
  InvalidStateError,
  NotFoundError,
  PaymentRequiredError,
  ValidationError,
} from '../domain/errors.ts';
import { type Failure, failureOf } from '../transport/errors.ts';
import { builder } from './builder.ts';

const ErrorInterface = builder.interfaceRef<DomainError>('DomainError').implement({
  description: 'A failure the caller can act on. `code` is the same as in the REST error body.',
  fields: (t) => ({
    code: t.exposeString('code'),
    message: t.exposeString('message'),
  }),
});

const FieldProblemRef = builder.objectRef<FieldProblem>('FieldProblem').implement({
  fields: (t) => ({
    path: t.exposeString('path'),
    message: t.exposeString('message'),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    problems: t.field({ type: [FieldProblemRef], resolve: (error) => error.problems }),
  }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    entity: t.exposeString('entity'),
    id: t.exposeString('id'),
  }),
});

builder.objectType(ForbiddenError, { name: 'ForbiddenError', interfaces: [ErrorInterface] });

builder.objectType(ConflictError, { name: 'ConflictError', interfaces: [ErrorInterface] });

builder.objectType(InvalidStateError, {
  name: 'InvalidStateError',
  description: 'The job (or other object) is in a state that does not allow this.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    state: t.string({ nullable: true, resolve: (error) => (typeof error.details.step === 'string' ? error.details.step : null) }),
  }),
});

builder.objectType(PaymentRequiredError, {
  name: 'PaymentRequiredError',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    requiredMinor: t.field({ type: 'BigInt', resolve: (error) => error.requiredMinor }),
    balanceMinor: t.field({ type: 'BigInt', resolve: (error) => error.balanceMinor }),
  }),
});

/** A failure's code, details and HTTP status, as every GraphQL error it answers carries them. */
function extensionsOf({ code, details, status }: Failure, http: Record<string, unknown> = {}): Record<string, unknown> {
  return { code, ...(details ? { details } : {}), http: { status, ...http } };
}

/**
 * A domain error raised outside any resolver (before the operation runs), in the shape and with
 * the HTTP status formatGraphQLError gives one thrown by a resolver.
 */
export function asGraphQLError(error: DomainError, http: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(error.message, { originalError: error, extensions: extensionsOf(failureOf(error), http) });
}

export const INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR';

/**
 * graphql-js reports syntax, validation and variable errors without a code; Apollo adds one over
 * HTTP (GRAPHQL_PARSE_FAILED, ...). Operations over graphql-ws get theirs the same way, or they
 * would be masked as internal.
 */
export function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

/**
 * Errors GraphQL itself reports (syntax, validation, variables, limits) carry their own code and
 * domain errors are the caller's to act on; anything else is internal and its message may reveal
 * too much (a stack, a SQL statement).
 */
export function isInternalError(error: unknown): boolean {
  if (failureOf(unwrapResolverError(error))) return false;
  const code = error instanceof GraphQLError ? error.extensions.code : undefined;
  return code === undefined || code === INTERNAL_SERVER_ERROR;
}

/** Failures the caller can act on keep their code and message; anything internal is masked. */
export function formatGraphQLError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const failure = failureOf(unwrapResolverError(error));
  if (failure) return { ...formatted, message: failure.message, extensions: extensionsOf(failure) };
  if (isInternalError(error)) {
    // A request id already given (by a failure before the operation ran) names where it is logged.
    const requestId = formatted.extensions?.requestId;
    return {
      message: 'Internal server error',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: INTERNAL_SERVER_ERROR, ...(typeof requestId === 'string' ? { requestId } : {}) },
    };
  }
  return formatted;
}
