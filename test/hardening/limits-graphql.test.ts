// GraphQL's limits through its doors (HTTP and graphql-ws): depth, cost, page size, the
// introspection policy, and internal errors masked. Each refusal is a typed error naming the
// limit and what the operation measured, and nothing behind it runs.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { overWebSocket } from '../support/graphql-ws.ts';
import { graphql, metric } from './limits-support.ts';

const JOB_FIELDS = 'id step name priceType paidPriceMinor quality resolution frameRate totalFrames queuedAt';
const DEEP = `{ renderJobs(first: 5) { edges { node { frameJobs { node { name } } } } } }`;
const INTROSPECTION = '{ __schema { queryType { name } types { name } } }';

let dev: TestApp;
let prod: TestApp;
let refusalsCounted = 0;

beforeAll(async () => {
  [dev, prod] = await Promise.all([
    startTestApp({ env: { GRAPHQL_MAX_DEPTH: '5' } }),
    startTestApp({ env: { NODE_ENV: 'production' } }),
  ]);
});
afterAll(async () => {
  console.log(`graphql limits: ${refusalsCounted} refusals counted in metrics`);
  await Promise.all([dev?.close(), prod?.close()]);
});

function expectRefusal(answer: { status?: number; body?: any; errors?: any[] }, code: string, limit?: number, measured?: number) {
  const errors = answer.errors ?? answer.body?.errors;
  expect(errors, JSON.stringify(answer)).toHaveLength(1);
  expect(errors[0].extensions).toMatchObject({ code, ...(limit === undefined ? {} : { limit, measured }) });
  expect(answer.body?.data ?? (answer as { data?: unknown }).data).toBeUndefined();
  if (answer.status !== undefined) expect(answer.status).toBe(400);
}

describe('depth', () => {
  it('refuses an operation nested deeper than GRAPHQL_MAX_DEPTH, over HTTP and graphql-ws', async () => {
    const user = await dev.user();
    expectRefusal(await graphql(dev, DEEP, { token: user.token }), 'QUERY_TOO_DEEP', 5, 6);
    expectRefusal(await overWebSocket(dev.url, DEEP, { token: user.token }), 'QUERY_TOO_DEEP', 5, 6);
    // Fragments count where they are spread.
    const viaFragment = `query { renderJobs { edges { ...deep } } } fragment deep on QueryRenderJobsConnectionEdge { node { frameJobs { node { name } } } }`;
    expectRefusal(await graphql(dev, viaFragment, { token: user.token }), 'QUERY_TOO_DEEP', 5, 6);
    const shallow = await graphql(dev, '{ renderJobs(first: 5) { edges { node { frameJobs { id } } } } }', { token: user.token });
    expect(shallow.body).toEqual({ data: { renderJobs: { edges: [] } } });
  });

  it('is 10 by default, beyond any operation the schema allows today', async () => {
    const user = await prod.user();
    const answer = await graphql(prod, DEEP, { token: user.token });
    expect(answer.body).toEqual({ data: { renderJobs: { edges: [] } } });
    expect(loadConfig({}).limits.graphql).toMatchObject({ maxDepth: 10, maxCost: 20_000 });
  });
});

describe('cost', () => {
  it('refuses an operation whose pages multiply past GRAPHQL_MAX_COST, over HTTP and graphql-ws', async () => {
    const user = await prod.user();
    // Twenty aliases of a full page: each is cheap alone, together 20 x (1 + 100 x 12).
    const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: renderJobs(first: 100) { edges { node { ${JOB_FIELDS} } } }`).join('\n');
    expectRefusal(await graphql(prod, `{ ${aliases} }`, { token: user.token }), 'QUERY_TOO_COMPLEX', 20_000, 24_020);
    expectRefusal(await overWebSocket(prod.url, `{ ${aliases} }`, { token: user.token }), 'QUERY_TOO_COMPLEX', 20_000, 24_020);

    // A batch of entities costs each one's selection, and a page size given by a variable counts.
    const representations = Array.from({ length: 50 }, () => ({ __typename: 'User', id: randomUUID() }));
    const entities = `query ($reps: [_Any!]!, $n: Int) { _entities(representations: $reps) { ... on User { renderJobs(first: $n) { edges { node { ${JOB_FIELDS} } } } } } }`;
    expectRefusal(await graphql(prod, entities, { token: user.token, variables: { reps: representations, n: 100 } }), 'QUERY_TOO_COMPLEX', 20_000, 60_051);
    const small = await graphql(prod, entities, { token: user.token, variables: { reps: representations.slice(0, 2), n: 100 } });
    expect(small.body.errors).toBeUndefined();
    expect(small.body.data._entities).toHaveLength(2);

    // The same page once is far under the limit.
    const once = await graphql(prod, `{ renderJobs(first: 100) { edges { node { ${JOB_FIELDS} } } } }`, { token: user.token });
    expect(once.body).toEqual({ data: { renderJobs: { edges: [] } } });
  });
});

describe('page size', () => {
  it('refuses first or last over 100 on every connection, as REST refuses page_size over 100', async () => {
    const user = await prod.user(1000);
    for (const query of [
      '{ renderJobs(first: 101) { edges { cursor } } }',
      '{ exports(last: 5000) { edges { cursor } } }',
      '{ wallet { entries(first: 1000) { edges { cursor } } } }',
    ]) {
      const answer = await graphql(prod, query, { token: user.token });
      expectRefusal(answer, 'PAGE_SIZE_TOO_LARGE');
      expect(answer.body.errors?.[0]?.extensions).toMatchObject({ limit: 100, measured: expect.any(Number), argument: expect.stringMatching(/^(first|last)$/) });
    }
    const byVariable = await graphql(prod, 'query ($n: Int) { renderJobs(first: $n) { edges { cursor } } }', { token: user.token, variables: { n: 500 } });
    expectRefusal(byVariable, 'PAGE_SIZE_TOO_LARGE', 100, 500);
    expect(byVariable.body.errors?.[0]?.extensions).toMatchObject({ field: 'renderJobs', argument: 'first' });
    const viaWs = await overWebSocket(prod.url, '{ a: renderJobs(first: 200) { edges { cursor } } }', { token: user.token });
    expectRefusal(viaWs, 'PAGE_SIZE_TOO_LARGE', 100, 200);
    expect(viaWs.errors?.[0]?.extensions).toMatchObject({ field: 'a' });

    expect((await graphql(prod, '{ renderJobs(first: 100) { edges { cursor } } }', { token: user.token })).body.errors).toBeUndefined();
    const rest = await prod.rest('GET', '/v1/renders?page_size=101', { token: user.token });
    expect(rest.status).toBe(400);
    expect(rest.body.error.code).toBe('VALIDATION_FAILED');
  });
});

describe('introspection', () => {
  it('is refused in production to everyone but admins and services, over HTTP and graphql-ws', async () => {
    const user = await prod.user();
    const admin = await prod.user(0, { admin: true });
    expectRefusal(await graphql(prod, INTROSPECTION), 'INTROSPECTION_DISABLED');
    expectRefusal(await graphql(prod, INTROSPECTION, { token: user.token }), 'INTROSPECTION_DISABLED');
    expectRefusal(await graphql(prod, '{ __type(name: "RenderJob") { name } }', { token: user.token }), 'INTROSPECTION_DISABLED');
    expectRefusal(await overWebSocket(prod.url, INTROSPECTION, { token: user.token }), 'INTROSPECTION_DISABLED');
    // __typename is no introspection.
    expect((await graphql(prod, '{ __typename }', { token: user.token })).body).toEqual({ data: { __typename: 'Query' } });
    // The playground's admins still load the schema.
    const forAdmin = await graphql(prod, INTROSPECTION, { token: admin.token });
    expect(forAdmin.body.data.__schema.queryType).toEqual({ name: 'Query' });
    expect((await overWebSocket(prod.url, INTROSPECTION, { token: admin.token })).data.__schema.queryType).toEqual({ name: 'Query' });
  });

  it('is allowed outside production, and GRAPHQL_INTROSPECTION decides when set', async () => {
    const anonymous = await graphql(dev, INTROSPECTION);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.data.__schema.types.length).toBeGreaterThan(50);
    const production = { NODE_ENV: 'production', DATABASE_URL: 'postgresql://db/x', S3_ENDPOINT: 'http://s3:9000', S3_BUCKET: 'b', S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's', PUBLIC_BASE_URL: 'https://x.example', JWT_SECRET: 'j'.repeat(32), NODE_HMAC_SECRET: 'h'.repeat(32), SERVICE_TOKENS: 't' };
    expect(loadConfig(production).limits.graphql.introspection).toBe('admins');
    expect(loadConfig({ ...production, GRAPHQL_INTROSPECTION: 'off' }).limits.graphql.introspection).toBe('off');
    expect(loadConfig({ ...production, GRAPHQL_INTROSPECTION: 'on' }).limits.graphql.introspection).toBe('on');
    expect(loadConfig({}).limits.graphql.introspection).toBe('on');
    expect(() => loadConfig({ GRAPHQL_INTROSPECTION: 'maybe' })).toThrow(/GRAPHQL_INTROSPECTION/);
  });
});

describe('internal errors', () => {
  it('are masked as "Internal server error" with the request id, while domain errors pass through', async () => {
    const user = await prod.user();
    const missing = randomUUID();
    const notFound = await graphql(prod, `{ renderJob(id: "${missing}") { id } }`, { token: user.token });
    expect(notFound.body.errors?.[0]).toMatchObject({ message: `render job ${missing} was not found`, extensions: { code: 'NOT_FOUND' } });
    const invalid = await graphql(prod, '{ renderJobs { nope } }', { token: user.token });
    expect(invalid.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(invalid.text).not.toContain('stacktrace');

    // The database loses a table under the running service: every query of it now fails inside.
    const client = new pg.Client({ connectionString: prod.databaseUrl });
    await client.connect();
    await client.query('ALTER TABLE render_jobs RENAME TO render_jobs_gone');
    await client.end();

    const query = `{ renderJobs(first: 5) { edges { node { ${JOB_FIELDS} } } } }`;
    const failed = await graphql(prod, query, { token: user.token });
    expect(failed.body.errors).toEqual([
      expect.objectContaining({
        message: 'Internal server error',
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: failed.headers.get('x-request-id') },
      }),
    ]);
    for (const leak of ['render_jobs', 'stacktrace', 'prisma', 'Prisma', 'relation', ' at ']) expect(failed.text).not.toContain(leak);

    const overWs = await overWebSocket(prod.url, query, { token: user.token });
    expect(overWs.errors?.[0]).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: expect.any(String) } });
    expect(JSON.stringify(overWs)).not.toContain('render_jobs');

    const rest = await prod.rest('GET', '/v1/renders', { token: user.token });
    expect(rest.status).toBe(500);
    expect(rest.body).toEqual({ error: { code: 'INTERNAL', message: 'Internal error', details: { request_id: rest.headers.get('x-request-id') } } });
  });
});

describe('refusals', () => {
  it('are counted by reason and door', async () => {
    for (const [reason, door] of [
      ['query_too_deep', 'graphql'],
      ['query_too_deep', 'graphql_ws'],
      ['query_too_complex', 'graphql'],
      ['page_size_too_large', 'graphql_ws'],
    ] as const) {
      const app = reason === 'query_too_deep' ? dev : prod;
      const counted = await metric(app, 'http_requests_refused_total', { reason, door });
      expect(counted, `${reason} ${door}`).toBeGreaterThan(0);
      refusalsCounted += counted;
    }
    const introspection = await metric(prod, 'http_requests_refused_total', { reason: 'introspection_disabled' });
    expect(introspection).toBeGreaterThanOrEqual(4);
    refusalsCounted += introspection;
  });
});
