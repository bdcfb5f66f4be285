// The REST door's one piece of plumbing: authenticate, translate the contract's snake_case into
// the services' camelCase, call one service function, answer with the status the contract gives.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Actor } from '../src/domain/actor.ts';
import { ValidationError } from '../src/domain/errors.ts';
import type { Services } from '../src/services.ts';
import { toErrorReply } from '../src/transport/errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received, kept by the HTTP server's body parsers: agent signatures cover these bytes. */
    rawBody?: Buffer;
  }
}

/** caller: user JWT, service token or nobody (the service decides); agent: a signed node request. */
export type Door = 'caller' | 'agent';

export interface RestCall {
  actor: Actor;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: Record<string, unknown>;
  /** The raw body of a route that accepts bytes. */
  bytes?: Buffer;
  /** The request headers the route reads (RestRoute.headers), by the service's names for them. */
  headers: Record<string, string | undefined>;
}

export interface RestRoute {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
  url: string;
  door: Door;
  status: number;
  /** 'bytes' routes take an application/octet-stream body (file uploads) up to bodyLimit. */
  accepts?: 'json' | 'bytes';
  bodyLimit?: number;
  /** Request headers the route reads, by the service's name for each: `{ idempotencyKey: 'Idempotency-Key' }`. */
  headers?: Record<string, string>;
  handle(call: RestCall, services: Services): Promise<unknown>;
}

export function snakeToCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_match, next: string) => next.toUpperCase());
}

export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The headers the route reads, by the service's names; a problem with one names the header. */
function routeHeaders(route: RestRoute, request: FastifyRequest, spelling: Map<string, string>): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries(route.headers ?? {}).map(([field, header]) => {
      spelling.set(field, header);
      const value = request.headers[header.toLowerCase()];
      return [field, typeof value === 'string' ? value : undefined];
    }),
  );
}

/** Renames top-level keys and remembers the caller's spelling of each, for error messages. */
function camelKeys(input: Record<string, unknown>, spelling: Map<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(input).map(([key, value]) => {
      const camel = snakeToCamel(key);
      spelling.set(camel, key);
      return [camel, value];
    }),
  );
}

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw new ValidationError('The request body must be a JSON object', [{ path: 'body', message: 'must be a JSON object' }]);
  }
  return body as Record<string, unknown>;
}

async function authenticate(door: Door, request: FastifyRequest, services: Services): Promise<Actor> {
  if (door === 'caller') return services.authenticator.fromAuthorization(request.headers.authorization);
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  return services.authenticator.fromAgentRequest({
    headers: { nodeId: header('x-node-id'), timestamp: header('x-node-timestamp'), signature: header('x-node-signature') },
    method: request.method,
    path: request.url,
    rawBody: request.rawBody,
  });
}

/** Decides, once the caller is known, whether the request may go on (rate limits); throws if not. */
export type Admit = (actor: Actor) => Promise<void>;

export function mountRoutes(app: FastifyInstance, services: Services, routes: RestRoute[], admit?: Admit): void {
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      ...(route.bodyLimit ? { bodyLimit: route.bodyLimit } : {}),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const spelling = new Map<string, string>();
        const rename = (path: string) => {
          const [head = '', ...rest] = path.split('.');
          // A field the caller sent keeps its spelling; one it left out gets the contract's.
          return [spelling.get(head) ?? camelToSnake(head), ...rest].join('.');
        };
        try {
          const actor = await authenticate(route.door, request, services);
          await admit?.(actor);
          const result = await route.handle(
            {
              actor,
              params: request.params as Record<string, string>,
              // Before the body: a body field of the same name keeps its own spelling.
              headers: routeHeaders(route, request, spelling),
              query: camelKeys(request.query as Record<string, unknown>, spelling),
              ...(route.accepts === 'bytes'
                ? { body: {}, bytes: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0) }
                : { body: camelKeys(bodyObject(request.body), spelling) }),
            },
            services,
          );
          if (route.status === 204) return reply.status(204).send();
          return reply.status(route.status).send(result);
        } catch (error) {
          const mapped = toErrorReply(error, rename);
          if (!mapped) throw error;
          return reply.status(mapped.status).headers(mapped.headers ?? {}).send(mapped.body);
        }
      },
    });
  }
}
