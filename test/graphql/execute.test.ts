// The service's executor against graphql-js's own `execute`: the same answers, data and errors
// (messages, locations, paths, causes), for every kind of value completion, failure and operation,
// synchronous and not. The service's own operations go through it in every other test.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  buildSchema,
  type ExecutionResult,
  execute as graphqlExecute,
  getIntrospectionQuery,
  type GraphQLFieldResolver,
  GraphQLInterfaceType,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLUnionType,
  parse,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { execute } from '../../src/graphql/execute.ts';

const schema = buildSchema(`
  interface Named { name: String }
  type Person implements Named { name: String, age: Int, friends: [Person!], bestFriend: Person }
  type Robot implements Named { name: String, model: String! }
  union Thing = Person | Robot
  scalar Odd
  input EchoInput { text: String!, upper: Boolean = false }
  type Nested { value: String!, failing: String!, slowFailing: String!, child: Nested, siblings: [Nested!] }
  type Query {
    hello(name: String = "world"): String
    people: [Person!]!
    asyncPeople: [Person]
    items: [Person]
    strictItems: [Person!]
    named: [Named]
    things: [Thing]
    strays: [Thing]
    nested: Nested
    asyncNested: Nested
    strictNested: Nested!
    notAList: [String]
    badInt: Int
    odd: Odd
    echo(input: EchoInput!, times: Int = 1): [String!]
  }
  type Mutation { first: Int, second: Int, failing: Int! }
  type Subscription { tick: Int }
`);

const later = <T>(value: T, ms = 1): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(value), ms));
const failLater = (message: string, ms = 1): Promise<never> => new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms));

const ada = { kind: 'person', name: 'Ada', age: 36 };
const grace = { kind: 'person', name: 'Grace', age: 85, friends: [ada] };
const r2 = { kind: 'robot', name: 'R2', model: 'astromech' };

function fieldsOf(typeName: string, resolvers: Record<string, GraphQLFieldResolver<any, any>>): void {
  const type = schema.getType(typeName) as GraphQLObjectType;
  for (const [name, resolve] of Object.entries(resolvers)) type.getFields()[name]!.resolve = resolve;
}

fieldsOf('Query', {
  hello: (_, args: { name: string }) => `hello ${args.name}`,
  people: () => [ada, grace],
  asyncPeople: () => later([later(ada), grace, failLater('asyncPeople item', 5)]),
  items: () => [ada, new Error('item 1 is broken'), null, later(grace)],
  strictItems: () => [ada, null, grace],
  named: () => [ada, r2, later(grace)],
  things: () => [r2, ada],
  strays: () => [{ kind: 'none' }, { kind: 42 }, { kind: 'Unknown' }, { kind: 'Nested' }, { kind: 'EchoInput' }, { kind: 'object' }, r2],
  nested: () => ({ value: 'v' }),
  asyncNested: () => later({ value: 'v' }),
  strictNested: () => ({ value: 'v' }),
  notAList: () => 'not a list',
  badInt: () => 'abc',
  odd: () => 'anything',
  echo: (_, args: { input: { text: string; upper: boolean }; times: number }) => Array.from({ length: args.times }, () => (args.input.upper ? args.input.text.toUpperCase() : args.input.text)),
});
fieldsOf('Person', { friends: (person: { friends?: unknown[] }) => (person.friends ? later(person.friends) : null), bestFriend: () => failLater('no best friend') });
fieldsOf('Nested', {
  failing: () => {
    throw new Error('failing');
  },
  slowFailing: () => failLater('slow failing', 5),
  child: () => later({ value: 'child' }),
  siblings: () => [{ value: 'a' }, later({ value: 'b' })],
});
// Person and Robot say what they are with isTypeOf (graphql-js's default type resolver asks them);
// Named and Thing name the type, or give the wrong answers graphql-js refuses.
(schema.getType('Person') as GraphQLObjectType).isTypeOf = (value: { kind?: string }) => value.kind === 'person';
(schema.getType('Robot') as GraphQLObjectType).isTypeOf = (value: { kind?: string }) => later(value.kind === 'robot');
(schema.getType('Named') as GraphQLInterfaceType).resolveType = (value: { kind: string }) => (value.kind === 'person' ? 'Person' : later('Robot'));
(schema.getType('Thing') as GraphQLUnionType).resolveType = (value: { kind: unknown }): string | undefined => {
  switch (value.kind) {
    case 'none':
      return undefined;
    case 'person':
      return 'Person';
    case 'robot':
      return 'Robot';
    case 'object':
      return schema.getType('Robot') as never;
    default:
      return value.kind as string;
  }
};
const odd = schema.getType('Odd') as GraphQLScalarType;
odd.serialize = () => null;
fieldsOf('Mutation', {
  first: (_, __, log: string[]) => later(log.push('first'), 10),
  second: (_, __, log: string[]) => (log.push('second'), 2),
  failing: () => failLater('mutation failed'),
});
fieldsOf('Subscription', { tick: (event: { tick: number }) => event.tick * 2 });

/** What a caller (or a plugin) sees of a result: its keys, data, and each error with its cause. */
function outcome(result: ExecutionResult) {
  return {
    keys: Object.keys(result),
    data: JSON.parse(JSON.stringify(result.data ?? null)),
    errors: result.errors?.map((error) => ({ ...error.toJSON(), cause: error.originalError?.message })),
  };
}

async function bothWays(source: string, options: { variables?: Record<string, unknown>; operationName?: string; rootValue?: unknown } = {}) {
  const run = async (executor: typeof execute) => {
    const log: string[] = [];
    const result = await executor({ schema, document: parse(source), variableValues: options.variables, operationName: options.operationName, rootValue: options.rootValue, contextValue: log });
    // Failures that come after the answer (in a place already nulled) must not change it.
    await sleep(20);
    return { ...outcome(result), log };
  };
  const [ours, graphqlJs] = [await run(execute), await run(graphqlExecute)];
  expect(ours).toEqual(graphqlJs);
  return ours;
}

describe('the executor answers as graphql-js does', () => {
  it('for fields with and without arguments, aliases, variables, defaults and __typename', async () => {
    const ours = await bothWays(
      `query Greet($who: String, $times: Int) {
        hello greeting: hello(name: $who) __typename
        echo(input: { text: "hi" }) loud: echo(input: { text: "hi", upper: true }, times: $times)
      }`,
      { variables: { who: 'Ada', times: 2 } },
    );
    expect(ours.data).toEqual({ hello: 'hello world', greeting: 'hello Ada', __typename: 'Query', echo: ['hi'], loud: ['HI', 'HI'] });
  });

  it('for a response name that would be an object prototype', async () => {
    const ours = await bothWays('{ __proto__: hello people { __proto__: name } }');
    expect(Object.keys(ours.data as object)).toEqual(['__proto__', 'people']);
  });

  it('for fragments, inline fragments and @skip / @include', async () => {
    await bothWays(
      `query ($skip: Boolean!) {
        people { ...PersonName age @skip(if: $skip) ... on Person { friends @include(if: true) { name } } }
      }
      fragment PersonName on Person { name }`,
      { variables: { skip: true } },
    );
  });

  it('for lists of promises, failing items and null in a list of non-null items', async () => {
    const ours = await bothWays('{ asyncPeople { name friends { name } } items { name } strictItems { name } }');
    expect(ours.errors?.map((error) => error.message)).toEqual([
      'item 1 is broken',
      'Cannot return null for non-nullable field Query.strictItems.',
      'asyncPeople item',
    ]);
  });

  it('for interfaces and unions resolved by name, by a promise of a name and by isTypeOf', async () => {
    await bothWays('{ named { __typename name ... on Person { age } ... on Robot { model } } things { __typename ... on Robot { model } ... on Person { name } } }');
  });

  it('for every wrong answer of a type resolver', async () => {
    const ours = await bothWays('{ strays { __typename ... on Robot { model } } }');
    expect(ours.errors).toHaveLength(6);
  });

  it('for objects whose fields fail later, and objects within objects', async () => {
    await bothWays('{ people { bestFriend { name } } nested { child { child { value } } } }');
  });

  it('for a value isTypeOf refuses', async () => {
    // A Robot's isTypeOf refuses a person given where a Robot is expected.
    const thing = schema.getType('Thing') as GraphQLUnionType;
    const resolveType = thing.resolveType;
    thing.resolveType = () => 'Robot';
    try {
      const ours = await bothWays('{ things { __typename } }');
      expect(ours.errors?.map((error) => error.message)).toEqual([expect.stringContaining('Expected value of type "Robot" but got: ')]);
    } finally {
      thing.resolveType = resolveType;
    }
  });

  it('for errors that null their parents, up to the root, and the errors of places already nulled', async () => {
    // asyncNested's own field fails once its other fields are under way: their errors come first.
    const ours = await bothWays(`{
      nested { value failing }
      asyncNested { child { slowFailing } siblings { value slowFailing } failing }
      hello
    }`);
    expect(ours.data).toEqual({ nested: null, asyncNested: null, hello: 'hello world' });
    expect(ours.errors?.map((error) => error.path?.join('.'))).toEqual([
      'nested.failing',
      'asyncNested.siblings.0.slowFailing',
      'asyncNested.child.slowFailing',
      'asyncNested.failing',
    ]);
    // Its own field fails first, and the child's failure, later, falls in a place already nulled.
    const nulled = await bothWays('{ asyncNested { slowFailing child { slowFailing } } }');
    expect(nulled.errors?.map((error) => error.path?.join('.'))).toEqual(['asyncNested.slowFailing']);
    await bothWays('{ hello strictNested { failing } }');
  });

  it('for what cannot be completed: a list that is not one, a scalar it cannot serialise', async () => {
    await bothWays('{ notAList badInt odd }');
  });

  it('for mutations, run in turn, and a failing one', async () => {
    const ours = await bothWays('mutation { first second }');
    expect(ours.log).toEqual(['first', 'second']);
    await bothWays('mutation { first failing second }');
  });

  it('for an event of a subscription, executed with it as the root value', async () => {
    const ours = await bothWays('subscription { tick }', { rootValue: { tick: 21 } });
    expect(ours.data).toEqual({ tick: 42 });
  });

  it('for operations chosen by name, and variables that do not fit', async () => {
    const twoOperations = 'query A { hello } query B { people { name } }';
    await bothWays(twoOperations, { operationName: 'B' });
    await bothWays(twoOperations);
    await bothWays(twoOperations, { operationName: 'C' });
    const refused = await bothWays('query ($times: Int!) { echo(input: { text: "x" }, times: $times) }', { variables: { times: 'many' } });
    expect(refused.keys).toEqual(['errors']);
  });

  it('for introspection', async () => {
    await bothWays(getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, inputValueDeprecation: true }));
  });
});

describe('arguments', () => {
  it('of a field that declares none are one frozen object, so that a resolver writing to them fails at once', async () => {
    const seen: unknown[] = [];
    const type = schema.getType('Person') as GraphQLObjectType;
    const field = type.getFields().name!;
    const resolve = field.resolve;
    field.resolve = (person: { name: string }, args) => {
      seen.push(args);
      return person.name;
    };
    try {
      await execute({ schema, document: parse('{ people { name } }') });
    } finally {
      field.resolve = resolve;
    }
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
    expect(Object.isFrozen(seen[0])).toBe(true);
    expect(Object.keys(seen[0] as object)).toEqual([]);
  });
});
