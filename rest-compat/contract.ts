import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export const HTTP_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** One alternative of an OpenAPI security requirement list: scheme name -> scopes. */
export type SecurityRequirement = Record<string, string[]>;

export interface ContractOperation {
  method: HttpMethod;
  /** As the contract writes it, without the `/v1` server prefix: `/renders/{job_id}`. */
  path: string;
  tags: string[];
  /**
   * The requirement that applies: the operation's own when it has one (an empty list means no
   * authentication), else the document's. Any one alternative suffices.
   */
  security: SecurityRequirement[];
}

export interface OpenApiOperation {
  tags?: string[];
  summary?: string;
  security?: SecurityRequirement[];
  parameters?: Record<string, unknown>[];
  requestBody?: Record<string, unknown>;
  responses: Record<string, Record<string, unknown>>;
  [extension: string]: unknown;
}

export type OpenApiPathItem = Partial<Record<Lowercase<HttpMethod>, OpenApiOperation>> & Record<string, unknown>;

export interface OpenApiServer {
  url: string;
  description?: string;
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  servers?: OpenApiServer[];
  security?: SecurityRequirement[];
  paths: Record<string, OpenApiPathItem>;
  components?: Record<string, Record<string, unknown>>;
  [extension: string]: unknown;
}

// Resolved against this module rather than the working directory, so scripts and tests started
// from anywhere read the same file.
export const CONTRACT_FILE = new URL('./openapi.yaml', import.meta.url);

/** The document in `text` (YAML or JSON), read from `source`. */
export function parseContract(text: string, source: URL | string): OpenApiDocument {
  const document: unknown = parse(text);
  if (!isRecord(document) || typeof document.openapi !== 'string' || !isRecord(document.paths)) {
    throw new Error(`${String(source)} is not an OpenAPI document (no openapi version or paths)`);
  }
  return document as unknown as OpenApiDocument;
}

export function loadContract(file: URL | string = CONTRACT_FILE): OpenApiDocument {
  return parseContract(readFileSync(file, 'utf8'), file);
}

export function listOperations(contract: OpenApiDocument): ContractOperation[] {
  const operations: ContractOperation[] = [];
  for (const [path, item] of Object.entries(contract.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = item[method.toLowerCase() as Lowercase<HttpMethod>];
      if (!operation) continue;
      operations.push({
        method,
        path,
        tags: operation.tags ?? [],
        security: operation.security ?? contract.security ?? [],
      });
    }
  }
  return operations;
}

/** An OpenAPI 3.0 schema once resolved (see resolveSchema): no $ref, no allOf. */
export interface Schema {
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object';
  format?: string;
  pattern?: string;
  enum?: unknown[];
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
}

export function pointer(contract: OpenApiDocument, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`Only local references are supported: ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], contract);
}

/** Follows $ref and folds allOf, so a schema is one flat object. */
export function resolveSchema(contract: OpenApiDocument, raw: unknown): Schema {
  const { $ref, ...beside } = raw as Record<string, unknown>;
  if (typeof $ref === 'string') {
    const target = pointer(contract, $ref);
    // Keywords beside a $ref (the original's `{ $ref: Export, nullable: true }`) count, as their
    // authors meant and as OpenAPI 3.1 reads them, where 3.0 would ignore them.
    return resolveSchema(contract, Object.keys(beside).length === 0 ? target : { ...beside, allOf: [target, ...((beside.allOf as unknown[]) ?? [])] });
  }
  const { allOf, properties, items, ...rest } = beside as Record<string, unknown> & Schema;
  let schema: Schema = { ...rest };
  if (Array.isArray(allOf)) {
    // A later part narrows what an earlier one says of the same field.
    const parts = allOf.map((member) => resolveSchema(contract, member));
    schema = {
      ...Object.assign({}, ...parts),
      ...rest,
      properties: Object.assign({}, ...parts.map((part) => part.properties)),
      required: [...parts.flatMap((part) => part.required ?? []), ...(rest.required ?? [])],
    };
  }
  if (properties) {
    schema.properties = {
      ...schema.properties,
      ...Object.fromEntries(Object.entries(properties).map(([name, member]) => [name, resolveSchema(contract, member)])),
    };
  }
  if (items) schema.items = resolveSchema(contract, items);
  if (!schema.type && schema.properties) schema.type = 'object';
  return schema;
}

/** The operation's documented statuses, each with its JSON body schema when it has one. */
export function documentedResponses(contract: OpenApiDocument, operation: OpenApiOperation): Record<string, Schema | undefined> {
  return Object.fromEntries(
    Object.entries(operation.responses).map(([status, response]) => {
      const resolved = (typeof response.$ref === 'string' ? pointer(contract, response.$ref) : response) as { content?: Record<string, { schema?: unknown }> };
      const json = resolved.content?.['application/json']?.schema;
      return [status, json === undefined ? undefined : resolveSchema(contract, json)];
    }),
  );
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where a JSON value departs from a schema (types, nullability, enums, formats, required fields). */
export function schemaProblems(schema: Schema, value: unknown, path = '$'): string[] {
  if (value === null) return schema.nullable || !schema.type ? [] : [`${path} is null`];
  if (schema.enum && !schema.enum.includes(value)) return [`${path} = ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`];
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return [`${path} is not a string`];
      if (schema.format === 'uuid' && !UUID_TEXT.test(value)) return [`${path} = ${value} is not a UUID`];
      if (schema.format === 'date-time' && (Number.isNaN(Date.parse(value)) || !value.includes('T'))) return [`${path} = ${value} is not a date-time`];
      return [];
    case 'integer':
      return Number.isInteger(value) ? [] : [`${path} = ${JSON.stringify(value)} is not an integer`];
    case 'number':
      return typeof value === 'number' ? [] : [`${path} is not a number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${path} is not a boolean`];
    case 'array':
      if (!Array.isArray(value)) return [`${path} is not an array`];
      return value.flatMap((item, index) => (schema.items ? schemaProblems(schema.items, item, `${path}[${index}]`) : []));
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${path} is not an object`];
      const record = value as Record<string, unknown>;
      return [
        ...(schema.required ?? []).filter((name) => !(name in record)).map((name) => `${path}.${name} is missing`),
        ...Object.entries(schema.properties ?? {}).flatMap(([name, member]) => (name in record ? schemaProblems(member, record[name], `${path}.${name}`) : [])),
      ];
    }
    default:
      return [];
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
