// OpenTelemetry: the service started as operators start it, with OTEL_EXPORTER_OTLP_ENDPOINT
// pointing at an OTLP/HTTP receiver in this test (JSON encoding), on real PostgreSQL so that the
// database spans show too.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';
import { TEST_JWT_SECRET } from '../support/app.ts';
import { projectRoot } from '../support/command.ts';
import { createTestDatabase } from '../support/database.ts';
import { waitFor } from '../support/poll.ts';

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

interface Span {
  service?: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { scope?: { name: string }; spans?: Omit<Span, 'service' | 'scope'>[] }[];
  }[];
}

/** A tiny OTLP/HTTP collector: keeps the spans POSTed to /v1/traces as JSON. */
async function startReceiver(): Promise<{ url: string; spans: Span[]; others: string[]; close(): Promise<void> }> {
  const spans: Span[] = [];
  const others: string[] = [];
  const server: Server = createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.url === '/v1/traces' && request.headers['content-type']?.includes('application/json')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpJson;
        for (const resourceSpans of body.resourceSpans ?? []) {
          const service = resourceSpans.resource?.attributes?.find((attribute) => attribute.key === 'service.name')?.value.stringValue;
          for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
            for (const span of scopeSpans.spans ?? []) spans.push({ ...span, service, scope: scopeSpans.scope?.name ?? '' });
          }
        }
      } else {
        others.push(`${request.method} ${request.url} ${request.headers['content-type']}`);
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, spans, others, close: () => new Promise((done) => server.close(() => done())) };
}

async function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** This process's environment without the OTEL_* variables a developer's shell may hold. */
const withoutOtel = () => Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('OTEL_')));

interface Service {
  url: string;
  output(): string;
  /** SIGTERM, as an orchestrator stops it; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** `npm start` as a child process: node with tsx's loader, so that signals reach the service itself. */
async function startService(env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: projectRoot,
    env: { ...withoutOtel(), NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', JWT_SECRET: TEST_JWT_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('the service to answer /healthz', async () => {
      if (child.exitCode !== null) throw new Error(`The service exited with ${child.exitCode}:\n${output}`);
      return (await fetch(`${url}/healthz`).then((response) => response.ok).catch(() => false)) || undefined;
    }, { timeoutMs: 60_000 });
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    output: () => output,
    stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

let receiver: Awaited<ReturnType<typeof startReceiver>>;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let dataDir: string;
const services: Service[] = [];

beforeAll(async () => {
  receiver = await startReceiver();
  database = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), 'orchestrator-telemetry-'));
});
afterAll(async () => {
  for (const service of services) await service.stop();
  await receiver.close();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const otlpEnv = () => ({
  DATABASE_URL: database.url,
  DATA_DIR: dataDir,
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
});

// Each case starts a TypeScript process, which takes seconds on a busy machine.
describe('OpenTelemetry tracing', { timeout: 120_000 }, () => {
  it('exports HTTP server, GraphQL and database spans as render-orchestrator, and none for probes', async () => {
    const service = await startService({ ...otlpEnv(), OTEL_BSP_SCHEDULE_DELAY: '100' });
    services.push(service);
    const token = await signDevelopmentToken(TEST_JWT_SECRET, { sub: randomUUID() });
    const rest = await fetch(`${service.url}/v1/renders`, { headers: { authorization: `Bearer ${token}` } });
    expect(rest.status).toBe(200);
    const graphql = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ renderJobs(first: 5) { edges { node { id step } } } }' }),
    });
    expect(await graphql.json()).toEqual({ data: { renderJobs: { edges: [] } } });

    const serverSpan = (name: string) =>
      receiver.spans.find((span) => span.kind === SPAN_KIND_SERVER && span.scope === '@opentelemetry/instrumentation-http' && span.name === name);
    const restSpan = await waitFor('the REST request span', () => serverSpan('GET /v1/renders'));
    const graphqlSpan = await waitFor('the GraphQL request span', () => serverSpan('POST /graphql'));
    expect(restSpan.service).toBe('render-orchestrator');
    expect(restSpan.parentSpanId ?? '').toBe('');

    // Fastify's request span and the database queries belong to the REST request's trace.
    await waitFor('the request\'s database query', () =>
      receiver.spans.find(
        (span) =>
          span.traceId === restSpan.traceId &&
          span.kind === SPAN_KIND_CLIENT &&
          span.scope === '@opentelemetry/instrumentation-pg' &&
          span.name.startsWith('pg.query'),
      ),
    );
    expect(receiver.spans.some((span) => span.traceId === restSpan.traceId && span.scope === '@fastify/otel')).toBe(true);
    // The GraphQL operation and its resolvers belong to the GraphQL request's trace.
    const graphqlSpans = await waitFor('the GraphQL operation spans', () => {
      const found = receiver.spans.filter(
        (span) => span.traceId === graphqlSpan.traceId && span.scope === '@opentelemetry/instrumentation-graphql',
      );
      return found.some((span) => span.name.startsWith('graphql.resolve renderJobs')) ? found : undefined;
    });
    expect(graphqlSpans.map((span) => span.name)).toContain('graphql.validate');

    expect(receiver.spans.every((span) => span.service === 'render-orchestrator')).toBe(true);
    expect(receiver.spans.filter((span) => span.name.includes('/healthz'))).toEqual([]);
    // Traces only: /metrics stays Prometheus', and logs go to stdout.
    expect(receiver.others).toEqual([]);
    expect(await service.stop()).toBe(0);
  });

  it('honours OTEL_SERVICE_NAME and exports what is still buffered when stopped', async () => {
    receiver.spans.length = 0;
    // A batch that would wait ten minutes: only the shutdown can send it.
    const service = await startService({ ...otlpEnv(), OTEL_SERVICE_NAME: 'orchestrator-eu', OTEL_BSP_SCHEDULE_DELAY: '600000' });
    services.push(service);
    expect((await fetch(`${service.url}/v1/renders`)).status).toBe(401);
    await new Promise((done) => setTimeout(done, 500));
    expect(receiver.spans).toEqual([]);

    expect(await service.stop(), service.output()).toBe(0);
    const span = receiver.spans.find((candidate) => candidate.kind === SPAN_KIND_SERVER && candidate.name === 'GET /v1/renders');
    expect(span?.service).toBe('orchestrator-eu');
  });

  it('stops the start with exit code 2 when OTEL_EXPORTER_OTLP_ENDPOINT is not an HTTP URL', async () => {
    // No scheme: the URL parser takes "collector:" for one, the exporter could not use it.
    const failure = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: projectRoot,
      // Should it start after all, it must neither take port 4000 nor write to the project's .data.
      env: { ...withoutOtel(), OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318', PORT: '0', DATA_DIR: dataDir },
      timeout: 60_000,
    }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain('OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL');
  });

  it('loads nothing of OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT is not set', async () => {
    const probe = [
      "await import('./src/telemetry.ts');",
      "const { createRequire } = await import('node:module');",
      'const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes("opentelemetry"));',
      'process.stdout.write(JSON.stringify(loaded));',
    ].join('\n');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', probe], {
      cwd: projectRoot,
      env: withoutOtel(),
    });
    expect(JSON.parse(stdout)).toEqual([]);
  });
});
