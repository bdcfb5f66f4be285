// What one GraphQL operation may ask for: its depth, its cost, its page sizes and whether it may
// introspect the schema. Measured once the document is valid and before anything executes, the
// same way for HTTP and graphql-ws, so a refused operation never reaches a resolver.
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  getArgumentValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  isCompositeType,
  isInterfaceType,
  isObjectType,
  Kind,
  type SelectionSetNode,
} from 'graphql';
import type { ApolloServerPlugin } from '@apollo/server';
import type { Actor } from '../domain/actor.ts';
import { MAX_PAGE_SIZE } from '../domain/validation.ts';
import type { GraphQLContext } from './builder.ts';

/** The arguments that size a page or a batch; the same cap as REST's page_size. */
const PAGE_SIZE_ARGUMENTS = ['first', 'last', 'pageSize'];
/** What a connection returns when no page size is given (the connections' defaultSize). */
const DEFAULT_PAGE_SIZE = 20;
/** A federation router asks for many entities in one field: each one costs its selection. */
const ENTITIES_FIELD = '_entities';
const INTROSPECTION_FIELDS = new Set(['__schema', '__type']);

/**
 * Caps a document before it is even validated: parsing and validation cost grows with it, and
 * no real query (GraphiQL's introspection query is about 300 tokens) comes near this.
 */
export const MAX_DOCUMENT_TOKENS = 10_000;

export type IntrospectionPolicy = 'on' | 'admins' | 'off';

export interface GraphQLLimits {
  maxDepth: number;
  maxCost: number;
  introspection: IntrospectionPolicy;
}

export interface OperationMeasure {
  /** Nesting of fields; a root field is depth 1. Introspection fields are not counted. */
  depth: number;
  /** Every field costs 1 (`__typename` nothing), times the page or batch size of the lists above it. */
  cost: number;
  /** Page-size arguments over MAX_PAGE_SIZE, by field path. */
  pageSizes: { path: string; argument: string; value: number }[];
  introspects: boolean;
}

interface Measured {
  depth: number;
  cost: number;
}

/** Measures an operation of a valid document; variables as the caller sent them. */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
): OperationMeasure {
  const operation = getOperationAST(document, operationName);
  const measure: OperationMeasure = { depth: 0, cost: 0, pageSizes: [], introspects: false };
  if (!operation) return measure;
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) return measure;
  // Invalid variables fail execution with their own error; measured without them, the
  // operation is priced at the connections' defaults until then.
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables ?? {});
  const variables = coerced.coerced ?? {};
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  // A fragment measures the same wherever it is spread: once each keeps the walk linear even
  // when fragments spread each other many times over.
  const fragmentMeasures = new Map<string, Measured>();

  const sizeOf = (field: GraphQLField<unknown, unknown>, node: FieldNode, path: string): number => {
    let args: Record<string, unknown>;
    try {
      args = getArgumentValues(field, node, variables);
    } catch {
      return 1;
    }
    if (field.name === ENTITIES_FIELD && Array.isArray(args.representations)) return args.representations.length;
    const sizing = field.args.filter((arg) => PAGE_SIZE_ARGUMENTS.includes(arg.name));
    if (sizing.length === 0) return 1;
    let size: number | undefined;
    for (const arg of sizing) {
      const value = args[arg.name];
      if (typeof value !== 'number') continue;
      if (value > MAX_PAGE_SIZE) measure.pageSizes.push({ path, argument: arg.name, value });
      size = Math.max(size ?? 0, value);
    }
    return size ?? DEFAULT_PAGE_SIZE;
  };

  const walk = (selectionSet: SelectionSetNode, parent: GraphQLNamedType, path: string): Measured => {
    let depth = 0;
    let cost = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (name === '__typename') continue;
        if (INTROSPECTION_FIELDS.has(name)) {
          measure.introspects = true;
          continue;
        }
        const field = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
        if (!field) continue;
        const fieldPath = path ? `${path}.${selection.alias?.value ?? name}` : (selection.alias?.value ?? name);
        const size = sizeOf(field, selection, fieldPath);
        const type = getNamedType(field.type);
        const below = selection.selectionSet && isCompositeType(type) ? walk(selection.selectionSet, type, fieldPath) : { depth: 0, cost: 0 };
        depth = Math.max(depth, 1 + below.depth);
        cost += 1 + size * below.cost;
      } else {
        const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
        if (!fragment) continue;
        const typeName = fragment.typeCondition?.name.value;
        const type = typeName ? schema.getType(typeName) : parent;
        if (!type) continue;
        let inner: Measured | undefined;
        if (selection.kind === Kind.FRAGMENT_SPREAD) inner = fragmentMeasures.get(selection.name.value);
        if (!inner) {
          inner = walk(fragment.selectionSet, type, path);
          if (selection.kind === Kind.FRAGMENT_SPREAD) fragmentMeasures.set(selection.name.value, inner);
        }
        depth = Math.max(depth, inner.depth);
        cost += inner.cost;
      }
    }
    return { depth, cost };
  };

  const root = walk(operation.selectionSet, rootType, '');
  measure.depth = root.depth;
  measure.cost = root.cost;
  return measure;
}

function refusal(code: string, message: string, limit: number, measured: number, extra: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, limit, measured, ...extra, http: { status: 400 } } });
}

function mayIntrospect(policy: IntrospectionPolicy, actor: Actor): boolean {
  if (policy === 'on') return true;
  if (policy === 'off') return false;
  // The playground loads the schema for the admins who use it; services generate clients from it.
  return (actor.kind === 'user' && actor.isAdmin) || actor.kind === 'service';
}

/** The limits an operation breaks, each as a typed error; none when it may run. */
export function refusalsOf(measure: OperationMeasure, limits: GraphQLLimits, actor: Actor): GraphQLError[] {
  const refusals: GraphQLError[] = [];
  if (measure.introspects && !mayIntrospect(limits.introspection, actor)) {
    refusals.push(
      new GraphQLError('Introspection is disabled on this server', {
        extensions: { code: 'INTROSPECTION_DISABLED', http: { status: 400 } },
      }),
    );
  }
  if (measure.depth > limits.maxDepth) {
    refusals.push(refusal('QUERY_TOO_DEEP', `The operation is ${measure.depth} levels deep; at most ${limits.maxDepth} are allowed`, limits.maxDepth, measure.depth));
  }
  for (const page of measure.pageSizes) {
    refusals.push(
      refusal('PAGE_SIZE_TOO_LARGE', `${page.argument} of ${page.path} is ${page.value}; at most ${MAX_PAGE_SIZE} are allowed`, MAX_PAGE_SIZE, page.value, {
        field: page.path,
        argument: page.argument,
      }),
    );
  }
  if (measure.cost > limits.maxCost) {
    refusals.push(refusal('QUERY_TOO_COMPLEX', `The operation costs ${measure.cost}; at most ${limits.maxCost} are allowed`, limits.maxCost, measure.cost));
  }
  return refusals;
}

/** What HTTP and graphql-ws both ask of an operation before running it. */
export function operationRefusals(
  operation: {
    schema: GraphQLSchema;
    document: DocumentNode;
    operationName?: string | null;
    variables?: Record<string, unknown> | null;
  },
  limits: GraphQLLimits,
  actor: Actor,
): GraphQLError[] {
  return refusalsOf(measureOperation(operation.schema, operation.document, operation.operationName, operation.variables), limits, actor);
}

/** Applies the limits over HTTP; onRefused hears the code of each limit an operation broke. */
export function limitsPlugin(limits: GraphQLLimits, onRefused: (code: string) => void): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operationName, request, contextValue }) {
          const refusals = operationRefusals({ schema, document, operationName, variables: request.variables }, limits, contextValue.actor);
          for (const refusal of refusals) onRefused(String(refusal.extensions.code));
          // Apollo answers one error from this hook; the first broken limit is the one to fix first.
          if (refusals[0]) throw refusals[0];
        },
      };
    },
  };
}
