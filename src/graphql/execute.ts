// GraphQL execution, for every operation the service runs: Apollo's (through its executor hook,
// apolloExecutor below) and graphql-ws's, queries, mutations and each subscription event.
//
// It answers what graphql-js 16's `execute` answers, data and errors alike (test/graphql/
// execute.test.ts holds the two side by side), and follows the same steps: graphql-js's own
// functions build the execution context (variables coerced), collect the fields, build each
// resolver's `info` and look fields up. What differs is what it allocates. graphql-js builds, for
// every field of every object, its arguments in two dictionary-mode objects (`Object.create(null)`)
// and every completed object in another. A listing of 6,000 chunks spent half of what it allocated
// there, and the collector's work that followed was a quarter of its CPU. Here a field without
// arguments gets one shared, frozen empty object; a completed object is a plain object (a
// dictionary only when a response name would be its prototype); and the fields of an object type
// are collected once per selection in a request, as graphql-js does.
import type { ApolloServerOptionsWithGateway } from '@apollo/server';
import {
  execute as graphqlJsExecute,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  getArgumentValues,
  type GraphQLAbstractType,
  GraphQLError,
  type GraphQLField,
  type GraphQLLeafType,
  type GraphQLList,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  isAbstractType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  locatedError,
  responsePathAsArray,
} from 'graphql';
import { collectFields, collectSubfields } from 'graphql/execution/collectFields.js';
import { buildExecutionContext, buildResolveInfo, type ExecutionContext, getFieldDef } from 'graphql/execution/execute.js';
import { inspect } from 'graphql/jsutils/inspect.js';
import type { Path } from 'graphql/jsutils/Path.js';
import type { GraphQLContext } from './builder.ts';

type Results = Record<string, unknown>;

/** The fields a selection asks of an object type, as execution walks them. */
interface Selection {
  /** Response names, in the document's order, with each one's nodes and definition. */
  names: string[];
  nodes: (readonly FieldNode[])[];
  definitions: (GraphQLField<unknown, unknown> | undefined)[];
  /** Whether a response name (an alias may be any name) would set a plain object's prototype. */
  nullPrototype: boolean;
}

/** The arguments of every field that declares none: graphql-js would build two objects to say so. */
const NO_ARGUMENTS: Readonly<Record<string, unknown>> = Object.freeze(Object.create(null));

const isPromise = (value: unknown): value is Promise<unknown> => typeof (value as { then?: unknown } | null | undefined)?.then === 'function';

const isIterable = (value: unknown): value is Iterable<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as Iterable<unknown>)[Symbol.iterator] === 'function';

/**
 * Whether a tracer wrapped graphql-js's `execute` as the process started: telemetry.ts's
 * OpenTelemetry GraphQL instrumentation does, to open a span for each operation and resolver, and
 * it marks its wrappers. Operations then go through it, or traces would lose them; a span per
 * resolver costs far more than what is saved here.
 */
const traced = (graphqlJsExecute as { __wrapped?: unknown }).__wrapped === true;

/** Executes an operation, as graphql-js's `execute` does, with less garbage per field. */
export function execute(args: ExecutionArgs): ExecutionResult | Promise<ExecutionResult> {
  if (traced) return graphqlJsExecute(args);
  const context = buildExecutionContext(args);
  if (Array.isArray(context)) return { errors: context };
  return new Execution(context as ExecutionContext).run();
}

class Execution {
  /** The fields each selection asks of each object type, collected once per request. */
  private readonly selections = new Map<readonly FieldNode[], Map<GraphQLObjectType, Selection>>();

  constructor(private readonly context: ExecutionContext) {}

  run(): ExecutionResult | Promise<ExecutionResult> {
    let data: Results | Promise<Results>;
    try {
      data = this.executeOperation();
    } catch (error) {
      return this.response(null, error);
    }
    return isPromise(data) ? data.then((value) => this.response(value), (error: unknown) => this.response(null, error)) : this.response(data);
  }

  private response(data: Results | null, error?: unknown): ExecutionResult {
    const { collectedErrors } = this.context;
    if (error !== undefined) collectedErrors.add(error as GraphQLError, undefined);
    return collectedErrors.errors.length === 0 ? { data } : { errors: collectedErrors.errors, data };
  }

  private executeOperation(): Results | Promise<Results> {
    const { schema, fragments, variableValues, operation, rootValue } = this.context;
    const rootType = schema.getRootType(operation.operation);
    if (!rootType) throw new GraphQLError(`Schema is not configured to execute ${operation.operation} operation.`, { nodes: operation });
    const selection = this.selectionOf(rootType, collectFields(schema, fragments, variableValues, rootType, operation.selectionSet));
    return operation.operation === 'mutation'
      ? this.executeFieldsInTurn(rootType, rootValue, selection)
      : this.executeFields(rootType, rootValue, undefined, selection);
  }

  /** A mutation's fields, each after the previous one is done. */
  private async executeFieldsInTurn(parentType: GraphQLObjectType, source: unknown, selection: Selection): Promise<Results> {
    const results = newResults(selection);
    for (let index = 0; index < selection.names.length; index++) {
      const responseName = selection.names[index]!;
      const path: Path = { prev: undefined, key: responseName, typename: parentType.name };
      const value = await this.executeField(parentType, selection.definitions[index], source, selection.nodes[index]!, path);
      if (value !== undefined) results[responseName] = value;
    }
    return results;
  }

  /** An object's fields, side by side: the object, or a promise of it once any field is one. */
  private executeFields(parentType: GraphQLObjectType, source: unknown, path: Path | undefined, selection: Selection): Results | Promise<Results> {
    const results = newResults(selection);
    let pending: string[] | undefined;
    try {
      for (let index = 0; index < selection.names.length; index++) {
        const responseName = selection.names[index]!;
        const fieldPath: Path = { prev: path, key: responseName, typename: parentType.name };
        const value = this.executeField(parentType, selection.definitions[index], source, selection.nodes[index]!, fieldPath);
        if (value === undefined) continue;
        results[responseName] = value;
        if (isPromise(value)) (pending ??= []).push(responseName);
      }
    } catch (error) {
      // The fields already under way may fail too: their errors are handled before this one goes up.
      if (pending) return Promise.all(pending.map((name) => results[name])).then(() => Promise.reject(error), () => Promise.reject(error));
      throw error;
    }
    if (!pending) return results;
    const names = pending;
    return Promise.all(names.map((name) => results[name])).then((values) => {
      for (let index = 0; index < names.length; index++) results[names[index]!] = values[index];
      return results;
    });
  }

  private executeField(
    parentType: GraphQLObjectType,
    fieldDef: GraphQLField<unknown, unknown> | undefined,
    source: unknown,
    fieldNodes: readonly FieldNode[],
    path: Path,
  ): unknown {
    if (!fieldDef) return undefined;
    const returnType = fieldDef.type;
    const resolve = fieldDef.resolve ?? this.context.fieldResolver;
    const info = buildResolveInfo(this.context, fieldDef, fieldNodes, parentType, path);
    try {
      const result = resolve(source, this.argumentsOf(fieldDef, fieldNodes[0]!), this.context.contextValue, info);
      const completed = isPromise(result)
        ? result.then((value) => this.completeValue(returnType, fieldNodes, info, path, value))
        : this.completeValue(returnType, fieldNodes, info, path, result);
      return isPromise(completed) ? completed.then(undefined, (error: unknown) => this.fieldFailed(error, returnType, fieldNodes, path)) : completed;
    } catch (error) {
      return this.fieldFailed(error, returnType, fieldNodes, path);
    }
  }

  private argumentsOf(fieldDef: GraphQLField<unknown, unknown>, node: FieldNode): Record<string, unknown> {
    return fieldDef.args.length === 0 ? NO_ARGUMENTS : getArgumentValues(fieldDef, node, this.context.variableValues);
  }

  /** A failed field is null with its error beside the data, unless it may not be null: then its parent fails. */
  private fieldFailed(rawError: unknown, returnType: GraphQLOutputType, fieldNodes: readonly FieldNode[], path: Path): null {
    const error = locatedError(rawError, fieldNodes, responsePathAsArray(path));
    if (isNonNullType(returnType)) throw error;
    // graphql-js's list of errors, which leaves out those of a place already nulled by another.
    this.context.collectedErrors.add(error, path);
    return null;
  }

  private completeValue(returnType: GraphQLOutputType, fieldNodes: readonly FieldNode[], info: GraphQLResolveInfo, path: Path, result: unknown): unknown {
    if (result instanceof Error) throw result;
    if (isNonNullType(returnType)) {
      const completed = this.completeValue(returnType.ofType, fieldNodes, info, path, result);
      if (completed === null) throw new Error(`Cannot return null for non-nullable field ${info.parentType.name}.${info.fieldName}.`);
      return completed;
    }
    if (result == null) return null;
    if (isListType(returnType)) return this.completeList(returnType, fieldNodes, info, path, result);
    if (isLeafType(returnType)) return completeLeaf(returnType, result);
    if (isAbstractType(returnType)) return this.completeAbstract(returnType, fieldNodes, info, path, result);
    if (isObjectType(returnType)) return this.completeObject(returnType, fieldNodes, info, path, result);
    throw new Error(`Cannot complete value of unexpected output type: ${inspect(returnType)}`);
  }

  private completeList(
    returnType: GraphQLList<GraphQLOutputType>,
    fieldNodes: readonly FieldNode[],
    info: GraphQLResolveInfo,
    path: Path,
    result: unknown,
  ): unknown[] | Promise<unknown[]> {
    if (!isIterable(result)) throw new GraphQLError(`Expected Iterable, but did not find one for field "${info.parentType.name}.${info.fieldName}".`);
    const itemType = returnType.ofType;
    const items: unknown[] = [];
    let anyPromise = false;
    let index = 0;
    for (const item of result) {
      const itemPath: Path = { prev: path, key: index++, typename: undefined };
      let completed: unknown;
      try {
        completed = isPromise(item)
          ? item.then((value) => this.completeValue(itemType, fieldNodes, info, itemPath, value))
          : this.completeValue(itemType, fieldNodes, info, itemPath, item);
      } catch (error) {
        completed = this.fieldFailed(error, itemType, fieldNodes, itemPath);
      }
      if (isPromise(completed)) {
        anyPromise = true;
        completed = completed.then(undefined, (error: unknown) => this.fieldFailed(error, itemType, fieldNodes, itemPath));
      }
      items.push(completed);
    }
    return anyPromise ? Promise.all(items) : items;
  }

  private completeAbstract(returnType: GraphQLAbstractType, fieldNodes: readonly FieldNode[], info: GraphQLResolveInfo, path: Path, result: unknown) {
    const resolveType = returnType.resolveType ?? this.context.typeResolver;
    const runtimeType = resolveType(result, this.context.contextValue, info, returnType);
    const complete = (name: unknown) => this.completeObject(this.runtimeType(name, returnType, fieldNodes, info, result), fieldNodes, info, path, result);
    return isPromise(runtimeType) ? runtimeType.then(complete) : complete(runtimeType);
  }

  /** The object type an abstract type's value resolved to, refused as graphql-js refuses it. */
  private runtimeType(name: unknown, returnType: GraphQLAbstractType, fieldNodes: readonly FieldNode[], info: GraphQLResolveInfo, result: unknown): GraphQLObjectType {
    const field = `"${info.parentType.name}.${info.fieldName}"`;
    if (name == null) {
      throw new GraphQLError(
        `Abstract type "${returnType.name}" must resolve to an Object type at runtime for field ${field}. Either the "${returnType.name}" type should provide a "resolveType" function or each possible type should provide an "isTypeOf" function.`,
        { nodes: fieldNodes },
      );
    }
    if (isObjectType(name)) {
      throw new GraphQLError('Support for returning GraphQLObjectType from resolveType was removed in graphql-js@16.0.0 please return type name instead.');
    }
    if (typeof name !== 'string') {
      throw new GraphQLError(
        `Abstract type "${returnType.name}" must resolve to an Object type at runtime for field ${field} with value ${inspect(result)}, received "${inspect(name)}".`,
      );
    }
    const runtimeType = this.context.schema.getType(name);
    if (runtimeType == null) {
      throw new GraphQLError(`Abstract type "${returnType.name}" was resolved to a type "${name}" that does not exist inside the schema.`, { nodes: fieldNodes });
    }
    if (!isObjectType(runtimeType)) {
      throw new GraphQLError(`Abstract type "${returnType.name}" was resolved to a non-object type "${name}".`, { nodes: fieldNodes });
    }
    if (!this.context.schema.isSubType(returnType, runtimeType)) {
      throw new GraphQLError(`Runtime Object type "${runtimeType.name}" is not a possible type for "${returnType.name}".`, { nodes: fieldNodes });
    }
    return runtimeType;
  }

  private completeObject(returnType: GraphQLObjectType, fieldNodes: readonly FieldNode[], info: GraphQLResolveInfo, path: Path, result: unknown) {
    const selection = this.subselection(returnType, fieldNodes);
    if (returnType.isTypeOf) {
      const isTypeOf = returnType.isTypeOf(result, this.context.contextValue, info);
      const checked = (matches: unknown) => {
        if (!matches) throw new GraphQLError(`Expected value of type "${returnType.name}" but got: ${inspect(result)}.`, { nodes: fieldNodes });
        return this.executeFields(returnType, result, path, selection);
      };
      return isPromise(isTypeOf) ? isTypeOf.then(checked) : checked(isTypeOf);
    }
    return this.executeFields(returnType, result, path, selection);
  }

  private subselection(returnType: GraphQLObjectType, fieldNodes: readonly FieldNode[]): Selection {
    let byType = this.selections.get(fieldNodes);
    if (!byType) this.selections.set(fieldNodes, (byType = new Map()));
    let selection = byType.get(returnType);
    if (!selection) {
      const { schema, fragments, variableValues } = this.context;
      selection = this.selectionOf(returnType, collectSubfields(schema, fragments, variableValues, returnType, fieldNodes));
      byType.set(returnType, selection);
    }
    return selection;
  }

  private selectionOf(type: GraphQLObjectType, fields: Map<string, readonly FieldNode[]>): Selection {
    const names = [...fields.keys()];
    const nodes = [...fields.values()];
    const definitions = nodes.map((fieldNodes) => getFieldDef(this.context.schema, type, fieldNodes[0]!) ?? undefined);
    return { names, nodes, definitions, nullPrototype: fields.has('__proto__') };
  }
}

const newResults = (selection: Selection): Results => (selection.nullPrototype ? Object.create(null) : {});

function completeLeaf(returnType: GraphQLLeafType, result: unknown): unknown {
  const serialized = returnType.serialize(result);
  if (serialized == null) {
    throw new Error(`Expected \`${inspect(returnType)}.serialize(${inspect(result)})\` to return non-nullable value, returned: ${inspect(serialized)}`);
  }
  return serialized;
}

type Gateway = ApolloServerOptionsWithGateway<GraphQLContext>['gateway'];

/**
 * Apollo Server runs operations with graphql-js's `execute` unless a gateway gives it an executor:
 * this "gateway" serves the subgraph's own schema, as `schema` would, and runs operations here.
 */
export function apolloExecutor(schema: GraphQLSchema): Gateway {
  return {
    onSchemaLoadOrUpdate(callback) {
      // Apollo reads the supergraph's SDL only to report schemas to its registry, which this service does not.
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => {};
    },
    async load() {
      return {
        executor: async (request) =>
          execute({
            schema: request.schema,
            document: request.document,
            contextValue: request.context,
            variableValues: request.request.variables,
            operationName: request.request.operationName,
          }),
      };
    },
    async stop() {},
  };
}
