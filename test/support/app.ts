import { randomUUID } from 'node:crypto';
// Starts the real service for a test file: its own PostgreSQL database cloned from the migrated
// template, the shared Redis, the s3rver of the global setup, a free port. Talks to it over HTTP
// like its users do.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type { Logger } from 'pino';
import { inject } from 'vitest';
import { signAgentRequest } from '../../src/adapters/auth/agent-signature.ts';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';
import { type App, createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Actor } from '../../src/domain/actor.ts';
import type { Loop } from '../../src/loops/loop.ts';
import type { Clock } from '../../src/ports.ts';
import { freePort } from '../../bench/lib/service.ts';
import { createTestDatabase } from './database.ts';

export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789';
export const TEST_NODE_HMAC_SECRET = 'test-node-hmac-secret-0123456789abcdef';
export const TEST_SERVICE_TOKEN = 'test-service-token';

export interface HttpAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestUser {
  id: string;
  token: string;
}

export interface TestNode {
  id: string;
  agentKey: string;
  /** As registered, for nodes this helper registers. */
  name?: string;
}

export interface NodeOptions {
  region?: string;
  priority?: number;
  /** Anything else of the registration body (POST /v1/nodes), over the defaults. */
  registration?: Record<string, unknown>;
}

export interface OnlineNodeOptions extends NodeOptions {
  aeVersions?: string[];
  /** The templates (AEP md5s) the node says it has cached. */
  templates?: string[];
  /** The agent version the node reports when it starts; none when not given. */
  agentVersion?: string;
}

export interface TokenOptions {
  admin?: boolean;
  roles?: string[];
  plan?: string;
  /** For tests that move the app's clock further than the default lifetime of an hour. */
  ttlSeconds?: number;
}

/** An actor for service calls made directly in a test. */
export function userActor(userId: string, isAdmin = false): Actor {
  return { kind: 'user', userId, isAdmin, plan: null, isReseller: false };
}

/** The paths of a REST validation error's problems, sorted. */
export const problemPaths = (body: any): string[] => body.error.details.problems.map((problem: { path: string }) => problem.path).sort();

/** A GET of a (presigned) URL: its status, bytes and content type. */
export async function download(url: string): Promise<{ status: number; bytes: Buffer; contentType: string | null }> {
  const response = await fetch(url);
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type') };
}

export type AgentCommand = { type: string; command_id: string; lease?: string; [field: string]: unknown };

/** An administrator acting inside the test, for service calls made directly. */
export const TEST_ADMIN: Actor = { kind: 'user', userId: '00000000-0000-4000-8000-00000000ad11', isAdmin: true, plan: null, isReseller: false };

/** A caller of a running service (in this process or another) over HTTP, as its users call it. */
export interface ServiceClient {
  url: string;
  token(userId: string, options?: TokenOptions): Promise<string>;
  rest<T = any>(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  ): Promise<HttpAnswer<T>>;
  /**
   * A request signed as a node agent, as the real agents sign it: a JSON body, or bytes
   * (application/octet-stream). Signed at the app's clock when the test controls it.
   */
  signed<T = any>(
    node: { id: string; agentKey: string },
    method: string,
    path: string,
    body?: unknown,
    options?: { timestamp?: number; headers?: Record<string, string> },
  ): Promise<HttpAnswer<T>>;
  /** A node registered by an admin over REST (a made-up name when none is given), with its agent key. */
  node(name?: string, options?: NodeOptions): Promise<TestNode>;
  /** A node registered by an admin over REST that has reported online, with its agent key. */
  onlineNode(name?: string, options?: OnlineNodeOptions): Promise<TestNode>;
  /**
   * One signed heartbeat of the node (stamped, so two in one second differ; body adds to it or
   * overrides the stamp); its pending commands.
   */
  heartbeat(node: TestNode, body?: Record<string, unknown>): Promise<AgentCommand[]>;
  /** A heartbeat whose commands the node acknowledges, as agents do before running them; the commands. */
  takeCommands(node: TestNode, body?: Record<string, unknown>): Promise<AgentCommand[]>;
  gql<R, V>(
    document: TypedDocumentNode<R, V>,
    variables: V,
    token?: string,
  ): Promise<{ data?: R; errors?: { message: string; extensions?: Record<string, any> }[]; status: number }>;
}

export interface TestApp extends ServiceClient {
  app: App;
  databaseUrl?: string;
  /** Before every Redis channel and key of this app: test runs sharing a Redis hear only their own. */
  redisPrefix: string;
  /** A new user with a token, whose wallet holds amountMinor (credited by the billing service). */
  user(amountMinor?: number, options?: TokenOptions): Promise<TestUser>;
  /** The app's background loop of this name, for tests that run its passes by hand (runOnce). */
  loop(name: string): Loop;
  close(): Promise<void>;
}

async function answer(response: Response): Promise<HttpAnswer> {
  const text = await response.text();
  let body: unknown = text;
  if (response.headers.get('content-type')?.includes('application/json') && text !== '') body = JSON.parse(text);
  return { status: response.status, body, headers: response.headers };
}

/**
 * A client of the service at `url` whose tokens and agent signatures are made with the test
 * secrets; signed at `clock` when the test controls the service's clock.
 */
export function serviceClient(url: string, { clock }: { clock?: Clock } = {}): ServiceClient {
  const rest: ServiceClient['rest'] = async (method, path, requestOptions = {}) => {
    const headers: Record<string, string> = { ...requestOptions.headers };
    if (requestOptions.token) headers.authorization = `Bearer ${requestOptions.token}`;
    let payload: string | undefined = requestOptions.rawBody;
    if (requestOptions.body !== undefined) payload = JSON.stringify(requestOptions.body);
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    return answer(await fetch(`${url}${path}`, { method, headers, body: payload }));
  };

  // Outlives the clock jumps of tests that move the app's clock, which it checks tokens against.
  const adminToken = signDevelopmentToken(TEST_JWT_SECRET, { sub: TEST_ADMIN.kind === 'user' ? TEST_ADMIN.userId : '', admin: true, ttlSeconds: 365 * 24 * 3600 });
  const node: ServiceClient['node'] = async (name = `node-${randomUUID().slice(0, 8)}`, nodeOptions = {}) => {
    const created = await rest('POST', '/v1/nodes', {
      token: await adminToken,
      body: {
        name,
        region: nodeOptions.region ?? 'eu',
        node_ip: '10.0.0.1',
        worker_port: 9000,
        current_ae_version: '24.1',
        ...(nodeOptions.priority === undefined ? {} : { priority: nodeOptions.priority }),
        ...nodeOptions.registration,
      },
    });
    if (created.status !== 201) throw new Error(`registering ${name} answered ${created.status}: ${JSON.stringify(created.body)}`);
    return { id: created.body.id as string, agentKey: created.body.agent_key as string, name };
  };

  let heartbeats = 0;
  const signed: ServiceClient['signed'] = async (node, method, path, body, signOptions = {}) => {
    const timestamp = signOptions.timestamp ?? (clock ? Math.floor(clock.now().getTime() / 1000) : undefined);
    if (Buffer.isBuffer(body)) {
      const headers = signAgentRequest({ nodeId: node.id, agentKey: node.agentKey, method, path, body, timestamp });
      return answer(
        await fetch(`${url}${path}`, {
          method,
          headers: { ...headers, 'content-type': 'application/octet-stream', ...signOptions.headers },
          body,
        }),
      );
    }
    const payload = body === undefined ? '' : JSON.stringify(body);
    const headers = signAgentRequest({ nodeId: node.id, agentKey: node.agentKey, method, path, body: payload, timestamp });
    return rest(method, path, {
      rawBody: body === undefined ? undefined : payload,
      headers: { ...headers, ...signOptions.headers },
    });
  };

  const heartbeat: ServiceClient['heartbeat'] = async (node, body = {}) => {
    const recordedAt = new Date((clock?.now() ?? new Date()).getTime() + heartbeats++).toISOString();
    const answer = await signed(node, 'POST', `/v1/internal/nodes/${node.id}/heartbeat`, { recorded_at: recordedAt, ...body });
    if (answer.status !== 200) throw new Error(`heartbeat answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body.pending_commands as AgentCommand[];
  };

  return {
    url,
    token: (userId, tokenOptions = {}) => signDevelopmentToken(TEST_JWT_SECRET, { sub: userId, ...tokenOptions }),
    rest,
    signed,
    node,
    async onlineNode(name, nodeOptions = {}) {
      const versions = nodeOptions.aeVersions ?? ['24.1'];
      const registered = await node(name, { ...nodeOptions, registration: { current_ae_version: versions[0], ...nodeOptions.registration } });
      const online = await signed(registered, 'POST', `/v1/internal/nodes/${registered.id}/online`, {
        available_ae_versions: versions,
        ...(nodeOptions.templates ? { cached_template_md5s: nodeOptions.templates } : {}),
        ...(nodeOptions.agentVersion ? { node_agent_version: nodeOptions.agentVersion } : {}),
      });
      if (online.status !== 200) throw new Error(`${registered.name} online answered ${online.status}: ${JSON.stringify(online.body)}`);
      return registered;
    },
    heartbeat,
    async takeCommands(node, body) {
      const commands = await heartbeat(node, body);
      for (const command of commands) {
        const ack = await signed(node, 'POST', `/v1/internal/nodes/${node.id}/commands/${command.command_id}/ack`);
        if (ack.status !== 204) throw new Error(`acknowledging ${command.type} answered ${ack.status}: ${JSON.stringify(ack.body)}`);
      }
      return commands;
    },
    async gql(document, variables, token) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query: print(document), variables }),
      });
      const body = (await response.json()) as { data?: any; errors?: any[] };
      return { ...body, status: response.status };
    },
  };
}

export async function startTestApp(
  options: {
    clock?: Clock;
    embedded?: boolean;
    env?: Record<string, string>;
    startLoops?: boolean;
    /** Another replica of that app: the same database and Redis prefix, which it leaves to that app. */
    replicaOf?: TestApp;
    /** Where the app logs, for tests that check what it logged. */
    logger?: Logger;
  } = {},
): Promise<TestApp> {
  const database = options.embedded || options.replicaOf ? undefined : await createTestDatabase();
  const databaseUrl = options.replicaOf?.databaseUrl ?? database?.url;
  const dataDir = await mkdtemp(join(tmpdir(), 'orchestrator-test-'));
  const port = await freePort();
  const s3 = inject('s3');
  const redisPrefix = options.replicaOf?.redisPrefix ?? `test:${randomUUID()}:`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    JWT_SECRET: TEST_JWT_SECRET,
    NODE_HMAC_SECRET: TEST_NODE_HMAC_SECRET,
    SERVICE_TOKENS: TEST_SERVICE_TOKEN,
    LOG_LEVEL: 'silent',
    ...(options.embedded
      ? {}
      : {
          DATABASE_URL: databaseUrl ?? '',
          REDIS_URL: inject('redisUrl'),
          REDIS_PREFIX: redisPrefix,
          S3_ENDPOINT: s3.endpoint,
          S3_BUCKET: s3.bucket,
          S3_REGION: s3.region,
          S3_ACCESS_KEY_ID: s3.accessKeyId,
          S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
        }),
    ...options.env,
  };
  const app = await createApp(loadConfig(env), { clock: options.clock, startLoops: options.startLoops, logger: options.logger });
  // A failed listen closes the app; the database and folder are this helper's to remove.
  const { url } = await app.listen().catch(async (error: unknown) => {
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });

  return {
    ...serviceClient(url, { clock: options.clock }),
    app,
    databaseUrl,
    redisPrefix,
    async user(amountMinor = 0, userOptions = {}) {
      const id = randomUUID();
      if (amountMinor > 0) {
        await app.services.billing.credit(TEST_ADMIN, { userId: id, amountMinor: BigInt(amountMinor), idempotencyKey: `test-funds-${randomUUID()}` });
      }
      return { id, token: await signDevelopmentToken(TEST_JWT_SECRET, { sub: id, ...userOptions }) };
    },
    loop(name) {
      const found = app.loops.find((loop) => loop.name === name);
      if (!found) throw new Error(`The app has no loop named ${name}: ${app.loops.map((loop) => loop.name).join(', ')}`);
      return found;
    },
    async close() {
      await app.close();
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
