// fast-check arbitraries derived from the REST contract: for each operation, requests that follow
// its schemas (with real fixture ids where a name asks for one) and requests that break them in
// exactly the ways a hostile or buggy caller would. An invalid request is invalid by the contract
// itself (or by the strictness every service applies to bodies: unknown fields are refused), so a
// 2xx answer to one is a finding, not noise.
import fc from 'fast-check';
import {
  type ContractOperation,
  documentedResponses,
  type OpenApiDocument,
  type OpenApiOperation,
  pointer,
  resolveSchema,
  type Schema,
} from '../../rest-compat/contract.ts';

export interface Parameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  schema: Schema;
}

export interface OperationShape {
  operation: ContractOperation;
  parameters: Parameter[];
  body?: { contentType: string; required: boolean; schema: Schema };
  /** Documented statuses, each with its JSON body schema when it has one. */
  responses: Record<string, Schema | undefined>;
}

/**
 * Values the fuzzer uses for a field or parameter of this name (unless the contract gives an enum)
 * so that requests reach the handlers; an undefined value leaves an optional field out.
 */
export type Fixtures = Record<string, fc.Arbitrary<unknown>>;

/** A JSON number literal that JSON.stringify cannot write (1e309 parses to Infinity). */
export class RawJson {
  constructor(readonly text: string) {}
}

export interface FuzzRequest {
  /** What was broken, e.g. `body.frame_number: boundary`. */
  mutation: string;
  /** Path with parameters substituted and percent-encoded, without the query. */
  path: string;
  query: [string, string][];
  body?: { bytes: Buffer; contentType?: string };
}

/** A 1 MB string: big enough to hurt, small enough to pass the default 1 MiB body limit in JSON. */
export const HUGE_STRING_LENGTH = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Reading the contract

export function operationShape(contract: OpenApiDocument, operation: ContractOperation): OperationShape {
  const raw = contract.paths[operation.path]?.[operation.method.toLowerCase() as 'get'] as OpenApiOperation;
  const parameters = (raw.parameters ?? []).map((parameter) => {
    const resolved = (typeof parameter.$ref === 'string' ? pointer(contract, parameter.$ref) : parameter) as Record<string, unknown>;
    return {
      name: resolved.name as string,
      in: resolved.in as 'path' | 'query',
      required: resolved.required === true,
      schema: resolveSchema(contract, resolved.schema ?? {}),
    };
  });
  const content = raw.requestBody?.content as Record<string, { schema?: unknown }> | undefined;
  const [contentType, media] = Object.entries(content ?? {})[0] ?? [];
  return {
    operation,
    responses: documentedResponses(contract, raw),
    parameters: parameters.filter((parameter) => parameter.in === 'path' || parameter.in === 'query'),
    ...(contentType && media
      ? { body: { contentType, required: raw.requestBody?.required === true, schema: resolveSchema(contract, media.schema ?? {}) } }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Values that follow a schema

const LOWER_ALNUM = [...'abcdefghijklmnopqrstuvwxyz0123456789'];

export function validValue(schema: Schema, name: string, fixtures: Fixtures): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const fixture = fixtures[name];
  if (fixture) return fixture;
  switch (schema.type) {
    case 'string':
      return validString(schema);
    case 'integer': {
      const low = (schema.minimum ?? 0) + (schema.exclusiveMinimum ? 1 : 0);
      const high = (schema.maximum ?? Math.max(low, 0) + 1000) - (schema.exclusiveMaximum ? 1 : 0);
      return fc.oneof(fc.constantFrom(low, high), fc.integer({ min: low, max: high }));
    }
    case 'number':
      return fc.double({
        min: schema.minimum ?? 0,
        max: schema.maximum ?? 1000,
        minExcluded: schema.exclusiveMinimum === true,
        maxExcluded: schema.exclusiveMaximum === true,
        noNaN: true,
        noDefaultInfinity: true,
      });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(validValue(schema.items ?? {}, `${name}[]`, fixtures), { maxLength: 3 });
    case 'object':
      return validObject(schema, fixtures);
    default:
      return fc.constant('x');
  }
}

function validString(schema: Schema): fc.Arbitrary<string> {
  if (schema.format === 'uuid') return fc.uuid();
  if (schema.format === 'date-time') {
    return fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }).map((date) => date.toISOString());
  }
  if (schema.format === 'uri') return fc.webUrl({ validSchemes: ['https'] });
  if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
  const minLength = Math.max(1, schema.minLength ?? 1);
  const maxLength = Math.max(minLength, Math.min(schema.maxLength ?? 20, 20));
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...LOWER_ALNUM), minLength, maxLength }) },
    // Text that is valid JSON and valid by the contract but hard to store: NUL (PostgreSQL text
    // refuses it), lone surrogates, control characters, right-to-left marks, emoji.
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength, maxLength }) },
    { weight: 1, arbitrary: fc.constantFrom('a\u0000b', '\u0000', '\ud800', 'x\udfff', '\u202etxt.exe', '👩‍👩‍👧', '\r\n\t', "'; DROP TABLE render_jobs; --").filter((text) => text.length >= minLength && text.length <= maxLength) },
  );
}

export function validObject(schema: Schema, fixtures: Fixtures): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const model = Object.fromEntries(Object.entries(properties).map(([name, member]) => [name, validValue(member, name, fixtures)]));
  return fc.record(model, { requiredKeys: (schema.required ?? []).filter((name) => name in properties) }) as fc.Arbitrary<Record<string, unknown>>;
}

// ---------------------------------------------------------------------------------------------
// Values that break a schema

interface Breakage {
  kind: string;
  value: unknown;
}

const breakage = (kind: string, values: fc.Arbitrary<unknown>): fc.Arbitrary<Breakage> => values.map((value) => ({ kind, value }));

const NAN_ISH = ['NaN', 'Infinity', '-Infinity', '1e309', '0x10', '12abc', '', ' ', '-0', '1,5', 'null', 'true'];
const NUMBER_OVERFLOW = [1e20, -1e20, 2 ** 64, -(2 ** 64), new RawJson('1e309'), new RawJson('-1e309')];
const BAD_UUIDS = [
  '',
  'not-a-uuid',
  '123',
  '0190d3e4-8c4f-7cc2-9a53-2f0d3c5c1a1',
  '0190d3e4-8c4f-7cc2-9a53-2f0d3c5c1a100',
  '0190d3e48c4f7cc29a532f0d3c5c1a10x',
  'g190d3e4-8c4f-7cc2-9a53-2f0d3c5c1a10',
  ' 0190d3e4-8c4f-7cc2-9a53-2f0d3c5c1a10',
  '{0190d3e4-8c4f-7cc2-9a53-2f0d3c5c1a10}',
  "0190d3e4-8c4f-7cc2-9a53-2f0d3c5c1a10' OR '1'='1",
  '../../etc/passwd',
  '%00',
  '\u0000',
  'ünïcödé-💥',
];
const BAD_DATES = ['yesterday', '2024-13-01T00:00:00Z', '2024-02-30T00:00:00Z', '2024-01-01T25:61:00Z', '2024-01-01', '1700000000', '', 'T', '+275760-09-13T00:00:00.001Z'];

/** Arrays nested 200,000 deep: valid JSON that a recursive walk over the input cannot survive. */
const DEEP_NESTING = new RawJson(`${'['.repeat(200_000)}${']'.repeat(200_000)}`);

const otherJson = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.integer(),
  fc.boolean(),
  fc.constant({}),
  fc.constant([]),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
);

/** JSON values of another JSON type than the schema asks for. */
function wrongType(schema: Schema): fc.Arbitrary<unknown> {
  switch (schema.type) {
    case 'string':
      return fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant({}), fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }));
    case 'integer':
    case 'number':
      return fc.oneof(fc.constantFrom(...NAN_ISH), fc.boolean(), fc.constant({}), fc.constant([1]));
    case 'boolean':
      return fc.constantFrom('true', 'false', 1, 0, 'yes', {}, []);
    case 'array':
      return fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant({}));
    case 'object':
      return fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant([]));
    default:
      return otherJson;
  }
}

/** Breakages certain to violate the schema; none for a schema that takes anything. */
export function invalidValue(schema: Schema): fc.Arbitrary<Breakage> | undefined {
  if (!schema.type) return undefined;
  const options: fc.Arbitrary<Breakage>[] = [breakage('wrong type', wrongType(schema)), breakage('deep nesting', fc.constant(DEEP_NESTING))];
  if (!schema.nullable) options.push(breakage('null', fc.constant(null)));
  if (schema.type === 'integer' || schema.type === 'number') {
    options.push(breakage('overflow', fc.constantFrom(...NUMBER_OVERFLOW)));
    const bounds: number[] = [];
    if (schema.minimum !== undefined) bounds.push(schema.exclusiveMinimum ? schema.minimum : schema.minimum - (schema.type === 'integer' ? 1 : 0.001));
    if (schema.maximum !== undefined) bounds.push(schema.exclusiveMaximum ? schema.maximum : schema.maximum + (schema.type === 'integer' ? 1 : 0.001));
    if (bounds.length > 0) options.push(breakage('boundary', fc.constantFrom(...bounds)));
    if (schema.type === 'integer') options.push(breakage('fraction', fc.constantFrom(0.5, 1.5, -2.25, 1e-7)));
    if (schema.enum) options.push(breakage('out of enum', fc.integer({ min: -1000, max: 1000 }).filter((value) => !schema.enum!.includes(value))));
  }
  if (schema.type === 'string') {
    const constrained = schema.maxLength !== undefined || schema.format || schema.pattern || schema.enum;
    if (constrained) options.push(breakage('huge string', fc.constant('x'.repeat(HUGE_STRING_LENGTH))));
    if (schema.maxLength !== undefined) options.push(breakage('too long', fc.constant('x'.repeat(schema.maxLength + 1))));
    if ((schema.minLength ?? 0) > 0) options.push(breakage('too short', fc.constant('')));
    if (schema.enum) {
      const values = schema.enum.map(String);
      options.push(
        breakage(
          'out of enum',
          fc.oneof(
            fc.constantFrom(...values.flatMap((value) => [value.toLowerCase(), value.toUpperCase(), ` ${value}`, `${value}x`, ''])),
            fc.string({ maxLength: 12 }),
          ).filter((value) => !values.includes(value)),
        ),
      );
    }
    if (schema.format === 'uuid') options.push(breakage('bad uuid', fc.constantFrom(...BAD_UUIDS)));
    if (schema.format === 'date-time') options.push(breakage('bad date-time', fc.constantFrom(...BAD_DATES)));
    if (schema.format === 'uri') options.push(breakage('bad uri', fc.constantFrom('not a url', '', '//', 'http//missing-colon')));
    if (schema.pattern) {
      const pattern = new RegExp(schema.pattern);
      options.push(breakage('pattern', fc.string({ maxLength: 70 }).filter((value) => !pattern.test(value))));
    }
  }
  if (schema.type === 'array') {
    const item = schema.items ? invalidValue(schema.items) : undefined;
    if (item) {
      options.push(item.map(({ kind, value }) => ({ kind: `item ${kind}`, value: [value] })));
      // A huge array of wrong items, under the body limit so that validation has to deal with it.
      options.push(breakage('huge array', fc.constantFrom(Array(100_000).fill(0), Array(50_000).fill(null))));
    }
  }
  if (schema.type === 'object') options.push(breakage('unknown field', fc.constant({ ['__unknown_' + 'field']: 1 })));
  return fc.oneof(...options);
}

// ---------------------------------------------------------------------------------------------
// Requests

/** JSON text of a value in which RawJson markers are written as their literal text. */
export function jsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, member: unknown) => (member instanceof RawJson ? `\u0000raw${raws.push(member.text) - 1}\u0000` : member));
  return text.replace(/"\\u0000raw(\d+)\\u0000"/g, (_match, index: string) => raws[Number(index)] ?? 'null');
}

/** Fills in path parameters, percent-encoded except those sent as written (a literal '%' or '..'). */
function substitutePath(template: string, values: Record<string, string>, raw: ReadonlySet<string> = new Set()): string {
  return template.replace(/\{([^}]+)\}/g, (_match, name: string) => (raw.has(name) ? (values[name] ?? '') : encodeURIComponent(values[name] ?? '')));
}

function describeBytes(bytes: Buffer): string {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return `<PNG, ${bytes.length} bytes>`;
  const text = bytes.toString('utf8');
  return text.length > 200 ? `${text.slice(0, 120)}…(${bytes.length} bytes)…${text.slice(-40)}` : text;
}

function request(mutation: string, path: string, query: [string, string][], body?: FuzzRequest['body']): FuzzRequest {
  return {
    mutation,
    path,
    query,
    ...(body ? { body } : {}),
    [fc.toStringMethod]() {
      const search = query.map(([name, value]) => `${name}=${value.length > 80 ? `${value.slice(0, 40)}…(${value.length})` : value}`).join('&');
      const shortPath = path.length > 200 ? `${path.slice(0, 120)}…(${path.length})…${path.slice(-40)}` : path;
      return `${mutation}: ${shortPath}${search ? `?${search}` : ''}${body ? ` [${body.contentType ?? 'no content-type'}] ${describeBytes(body.bytes)}` : ''}`;
    },
  } as FuzzRequest;
}

const jsonBody = (value: unknown, contentType = 'application/json') => ({ bytes: Buffer.from(jsonText(value)), contentType });

/** Parameters that follow the contract: path values and the query pairs to send. */
function validParameters(shape: OperationShape, fixtures: Fixtures): fc.Arbitrary<{ path: Record<string, string>; query: [string, string][] }> {
  const model = Object.fromEntries(
    shape.parameters.map((parameter) => {
      const value = validValue(parameter.schema, parameter.name, fixtures).map(String);
      return [parameter.name, parameter.required || parameter.in === 'path' ? value : fc.option(value, { nil: undefined })];
    }),
  );
  return fc.record(model).map((values) => ({
    path: Object.fromEntries(shape.parameters.filter((p) => p.in === 'path').map((p) => [p.name, String(values[p.name])])),
    query: shape.parameters
      .filter((p) => p.in === 'query' && values[p.name] !== undefined)
      .map((p) => [p.name, String(values[p.name])] as [string, string]),
  }));
}

function validBodyValue(shape: OperationShape, fixtures: Fixtures): fc.Arbitrary<unknown> {
  const schema = shape.body?.schema ?? {};
  return schema.type === 'object' ? validObject(schema, fixtures) : validValue(schema, 'body', fixtures);
}

/** Requests that follow the operation's contract; the service may still refuse them for its state. */
export function validRequest(shape: OperationShape, fixtures: Fixtures): fc.Arbitrary<FuzzRequest> {
  const template = `/v1${shape.operation.path}`;
  const body = shape.body;
  const bodies: fc.Arbitrary<FuzzRequest['body'] | undefined> = !body
    ? fc.constant(undefined)
    : body.contentType === 'application/json'
      ? validBodyValue(shape, fixtures).map((value) => jsonBody(value))
      : (fixtures['body:bytes'] ?? fc.uint8Array({ maxLength: 64 })).map((bytes) => ({ bytes: Buffer.from(bytes as Uint8Array), contentType: body.contentType }));
  return fc.tuple(validParameters(shape, fixtures), bodies).map(([parameters, payload]) => request('valid', substitutePath(template, parameters.path), parameters.query, payload));
}

/** Path segments sent without percent-encoding. */
const RAW_PATH_SEGMENTS = ['..', '%', '%zz', '%00'];

/** Text that no JSON parser accepts. */
const MALFORMED_JSON = [
  '{',
  '{"a":}',
  "{'single': 'quotes'}",
  '{"trailing": 1,}',
  '{"a": NaN}',
  '{"a": undefined}',
  '[1, 2',
  '{"a": 1}}',
  'nul',
  '\u0000\u0001\u0002',
  '{"a": "unterminated}',
  '\uFEFF{"a": 1',
  '{"a": 01}',
  '{"a": .5}',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`.slice(0, -1),
];

/**
 * Requests that break the operation's contract in one place (a parameter, a body field, the
 * whole body or its media type), every other part valid so the break is what gets judged.
 */
export function invalidRequest(shape: OperationShape, fixtures: Fixtures): fc.Arbitrary<FuzzRequest> | undefined {
  const template = `/v1${shape.operation.path}`;
  const parameters = validParameters(shape, fixtures);
  const body = shape.body;
  const validBody: fc.Arbitrary<FuzzRequest['body'] | undefined> =
    body?.contentType === 'application/json' ? validBodyValue(shape, fixtures).map((value) => jsonBody(value)) : validRequest(shape, fixtures).map((r) => r.body);
  const cases: fc.Arbitrary<FuzzRequest>[] = [];

  for (const parameter of shape.parameters) {
    // Parameters are text: any text is a string, so only a constrained string can be broken.
    const { type, format, pattern, enum: values, minLength, maxLength } = parameter.schema;
    const breakable = type !== 'string' || Boolean(format || pattern || values || minLength || maxLength);
    const broken = breakable ? invalidValue(parameter.schema) : undefined;
    const kinds: fc.Arbitrary<{ kind: string; values: string[] | undefined }>[] = [];
    if (broken) {
      kinds.push(
        broken
          // A parameter is text: objects and arrays have no meaning there, and null would be "null".
          .filter(({ value }) => value === null || typeof value !== 'object' || value instanceof RawJson)
          // Written as text, a value of the wrong type or null is a string like any other.
          .filter(({ kind }) => type !== 'string' || (kind !== 'wrong type' && kind !== 'null'))
          .map(({ kind, value }) => ({ kind, text: value instanceof RawJson ? value.text : String(value) }))
          .filter(({ text }) => parameter.in === 'query' || text !== '')
          // Node refuses a request line over its header limit (16 KiB) before the service sees it.
          .filter(({ text }) => text.length <= 4000)
          .map(({ kind, text }) => ({ kind, values: [text] })),
      );
    }
    if (parameter.in === 'path') {
      kinds.push(fc.constantFrom(...BAD_UUIDS.filter(Boolean), ...RAW_PATH_SEGMENTS, 'a'.repeat(4000)).map((value) => ({ kind: 'bad path segment', values: [value] })));
    } else {
      // A repeated scalar parameter arrives as a list.
      kinds.push(validValue(parameter.schema, parameter.name, fixtures).map((value) => ({ kind: 'repeated', values: [String(value), String(value)] })));
      if (parameter.required) kinds.push(fc.constant({ kind: 'missing', values: undefined }));
    }
    for (const kind of kinds) {
      cases.push(
        fc.tuple(parameters, kind, validBody).map(([valid, { kind: what, values }, payload]) => {
          const label = `${parameter.in} ${parameter.name}: ${what}`;
          if (parameter.in === 'path') {
            const value = values![0]!;
            const raw = new Set(RAW_PATH_SEGMENTS.includes(value) ? [parameter.name] : []);
            return request(label, substitutePath(template, { ...valid.path, [parameter.name]: value }, raw), valid.query, payload);
          }
          const query = valid.query.filter(([name]) => name !== parameter.name);
          for (const value of values ?? []) query.push([parameter.name, value]);
          return request(label, substitutePath(template, valid.path), query, payload);
        }),
      );
    }
  }

  if (body) {
    const withParameters = (label: string, payloads: fc.Arbitrary<FuzzRequest['body']>) =>
      fc.tuple(parameters, payloads).map(([valid, payload]) => request(label, substitutePath(template, valid.path), valid.query, payload));
    cases.push(withParameters('body: malformed JSON', fc.constantFrom(...MALFORMED_JSON).map((text) => ({ bytes: Buffer.from(text), contentType: 'application/json' }))));
    cases.push(
      withParameters(
        'body: wrong content type',
        fc.tuple(validBody, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', undefined)).map(
          ([payload, contentType]) => ({ bytes: payload?.bytes ?? Buffer.from('{}'), ...(contentType ? { contentType } : {}) }),
        ),
      ),
    );
    if (body.contentType === 'application/json') {
      const schema = body.schema;
      const required = schema.required ?? [];
      if (required.length > 0) {
        cases.push(withParameters('body: empty', fc.constantFrom('', 'null', '{}').map((text) => ({ bytes: Buffer.from(text), contentType: 'application/json' }))));
      }
      cases.push(withParameters('body: not an object', fc.constantFrom('[]', '[{}]', '"text"', '42', 'true', '-1e309').map((text) => ({ bytes: Buffer.from(text), contentType: 'application/json' }))));
      const base = validBodyValue(shape, fixtures) as fc.Arbitrary<Record<string, unknown>>;
      cases.push(
        withParameters(
          'body: unknown field',
          fc.tuple(base, fc.constantFrom('__proto__', 'constructor', 'toString', 'extra', 'Name', 'id', 'user_id', 'is_admin', 'x'.repeat(10_000))).map(([value, name]) =>
            // JSON text, since a __proto__ key set on an object would change its prototype instead.
            ({ bytes: Buffer.from(`${jsonText(value).slice(0, -1)}${Object.keys(value).length > 0 ? ',' : ''}${JSON.stringify(name)}:{"is_admin":true}}`), contentType: 'application/json' }),
          ),
        ),
      );
      for (const name of required) {
        cases.push(withParameters(`body.${name}: missing`, base.map((value) => jsonBody(Object.fromEntries(Object.entries(value).filter(([key]) => key !== name))))));
      }
      for (const [name, member] of Object.entries(schema.properties ?? {})) {
        const broken = invalidValue(member);
        if (!broken) continue;
        cases.push(
          fc.tuple(parameters, base, broken).map(([valid, value, { kind, value: bad }]) =>
            request(`body.${name}: ${kind}`, substitutePath(template, valid.path), valid.query, jsonBody({ ...value, [name]: bad })),
          ),
        );
      }
    }
  } else if (shape.operation.method !== 'GET' && shape.operation.method !== 'HEAD') {
    // An operation without a body still parses one that is sent, so broken JSON must not pass.
    cases.push(
      fc.tuple(parameters, fc.constantFrom(...MALFORMED_JSON)).map(([valid, text]) =>
        request('body: malformed JSON', substitutePath(template, valid.path), valid.query, { bytes: Buffer.from(text), contentType: 'application/json' }),
      ),
    );
    cases.push(
      fc.tuple(parameters, fc.constantFrom('text/plain', 'application/xml')).map(([valid, contentType]) =>
        request('body: wrong content type', substitutePath(template, valid.path), valid.query, { bytes: Buffer.from('{}'), contentType }),
      ),
    );
  }
  return cases.length > 0 ? fc.oneof(...cases) : undefined;
}
