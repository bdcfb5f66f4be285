// The arguments of every connection (cursors, page direction), checked before an operation runs.
// Pothos decodes a cursor inside the resolver that builds the query (for a related connection,
// the parent's) and throws an untyped error, which would be masked as internal; checked here once
// for all connections, the same way over HTTP and graphql-ws, a bad argument is the caller's
// VALIDATION_FAILED naming it.
import type { ApolloServerPlugin } from '@apollo/server';
import { parsePrismaCursor } from '@pothos/plugin-prisma';
import {
  type DocumentNode,
  getArgumentValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  type GraphQLSchema,
  isObjectType,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import { type FieldProblem, ValidationError } from '../domain/errors.ts';
import { uuid } from '../domain/validation.ts';
import type { GraphQLContext } from './builder.ts';
import { asGraphQLError } from './errors.ts';

/**
 * Every connection of this schema pages by its rows' UUID `id` (`cursor: 'id'`): a cursor that
 * decodes to anything else would fail the query (not a UUID, in the database).
 */
function isConnectionCursor(cursor: string): boolean {
  try {
    return uuid.safeParse(parsePrismaCursor(cursor)).success;
  } catch {
    return false;
  }
}

/** What Pothos refuses in a connection's arguments, by argument. */
function connectionProblems(args: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const given = (name: string) => args[name] !== undefined && args[name] !== null;
  for (const name of ['first', 'last']) {
    if (typeof args[name] === 'number' && args[name] < 0) problems.push({ path: name, message: 'must not be negative' });
  }
  for (const name of ['after', 'before']) {
    if (typeof args[name] === 'string' && !isConnectionCursor(args[name])) {
      problems.push({ path: name, message: 'is not a cursor of this connection (take one from its edges or pageInfo)' });
    }
  }
  if (given('before') && given('after')) problems.push({ path: 'before', message: 'cannot be combined with after' });
  if (given('before') && given('first')) problems.push({ path: 'before', message: 'pages backwards: use last with it, not first' });
  if (given('after') && given('last')) problems.push({ path: 'after', message: 'pages forwards: use first with it, not last' });
  return problems;
}

function isConnection(typeInfo: TypeInfo): boolean {
  const type = typeInfo.getType();
  const named = type ? getNamedType(type) : undefined;
  return isObjectType(named) && 'edges' in named.getFields() && 'pageInfo' in named.getFields();
}

/**
 * The connection arguments an operation of a valid document gets wrong, as one VALIDATION_FAILED
 * error whose problems name each argument by `field.argument` (the field by its alias if it has
 * one); none when they are all right.
 */
export function connectionArgumentErrors(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
): GraphQLError[] {
  const operation = getOperationAST(document, operationName);
  if (!operation) return [];
  // Invalid variables fail execution with their own error.
  const variables = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {}).coerced;
  if (!variables) return [];
  const problems: FieldProblem[] = [];
  const typeInfo = new TypeInfo(schema);
  const check = visitWithTypeInfo(typeInfo, {
    Field(node) {
      const field = typeInfo.getFieldDef();
      if (!field || !isConnection(typeInfo)) return;
      const name = node.alias?.value ?? node.name.value;
      for (const problem of connectionProblems(getArgumentValues(field, node, variables))) {
        problems.push({ path: `${name}.${problem.path}`, message: problem.message });
      }
    },
  });
  visit(operation, check);
  // Fragments are checked where they are defined: a fragment's fields are the same wherever it
  // is spread, and the variables are the operation's.
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) visit(definition, check);
  }
  if (problems.length === 0) return [];
  const [first] = problems;
  return [asGraphQLError(new ValidationError(`${first?.path} ${first?.message}`, problems))];
}

/** Checks connection arguments over HTTP, once the operation is known. */
export function connectionArgumentsPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operationName, request }) {
          const [error] = connectionArgumentErrors(schema, document, operationName, request.variables);
          if (error) throw error;
        },
      };
    },
  };
}
