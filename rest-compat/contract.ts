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

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  security?: SecurityRequirement[];
  paths: Record<string, OpenApiPathItem>;
  components?: Record<string, Record<string, unknown>>;
  [extension: string]: unknown;
}

// Resolved against this module rather than the working directory, so scripts and tests started
// from anywhere read the same file.
const CONTRACT_FILE = new URL('./openapi.yaml', import.meta.url);

export function loadContract(file: URL | string = CONTRACT_FILE): OpenApiDocument {
  const document: unknown = parse(readFileSync(file, 'utf8'));
  if (!isRecord(document) || typeof document.openapi !== 'string' || !isRecord(document.paths)) {
    throw new Error(`${String(file)} is not an OpenAPI document (no openapi version or paths)`);
  }
  return document as unknown as OpenApiDocument;
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
