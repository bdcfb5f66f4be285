// Rate limits per user and per node through REST, GraphQL over HTTP and graphql-ws: 429 with the
// error body and Retry-After once the window's budget is spent, served again once it ends, one
// count shared by two replicas through Redis, and requests served when Redis is away.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestNode } from '../support/app.ts';
import { overWebSocket } from '../support/graphql-ws.ts';
import { graphql, metric } from './limits-support.ts';

const LIMIT = 5;
// Long enough that a loaded machine still makes a test's requests inside one window.
const WINDOW_SEC = 8;
const limits = (prefix: string, limit = LIMIT, windowSec = WINDOW_SEC) => ({
  RATE_LIMIT_KEY_PREFIX: prefix,
  RATE_LIMIT_USER_REQUESTS: String(limit),
  RATE_LIMIT_NODE_REQUESTS: String(limit),
  RATE_LIMIT_WINDOW_SEC: String(windowSec),
});

let a: TestApp;
let b: TestApp;
let refused = 0;

beforeAll(async () => {
  // Two replicas: separate processes' worth of state, one Redis, one key prefix.
  const shared = limits(`limits-test:${randomUUID()}:`);
  [a, b] = await Promise.all([startTestApp({ env: shared }), startTestApp({ env: shared })]);
  // A replica's first requests are slow (connections open): not inside a test's short window.
  await Promise.all([a, b].map((t) => t.rest('GET', '/v1/renders', { token: TEST_SERVICE_TOKEN })));
});
afterAll(async () => {
  console.log(`rate limits: ${refused} requests answered 429`);
  await Promise.all([a?.close(), b?.close()]);
});

const listJobs = (t: TestApp, token: string) => t.rest('GET', '/v1/renders', { token });

function expectRateLimited(answer: { status: number; body: any; headers: Headers }, windowSec = WINDOW_SEC) {
  expect(answer.status).toBe(429);
  refused += 1;
  const retryAfter = Number(answer.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSec);
  return retryAfter;
}

describe('a user', () => {
  it('is refused with 429 past the budget on any replica and any door, and served again after the window', async () => {
    const user = await a.user();
    for (let i = 0; i < 3; i++) expect((await listJobs(a, user.token)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await listJobs(b, user.token)).status).toBe(200);

    const rest = await listJobs(a, user.token);
    const retryAfter = expectRateLimited(rest);
    expect(rest.body).toEqual({
      error: { code: 'RATE_LIMITED', message: expect.stringContaining('Too many requests'), details: { limit: LIMIT, window_sec: WINDOW_SEC, retry_after_sec: retryAfter } },
    });

    const overHttp = await graphql(b, '{ renderJobs { edges { cursor } } }', { token: user.token });
    expectRateLimited(overHttp);
    expect(overHttp.body.data).toBeUndefined();
    expect(overHttp.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', details: { limit: LIMIT, window_sec: WINDOW_SEC } });

    const overWs = await overWebSocket(b.url, '{ renderJobs { edges { cursor } } }', { token: user.token });
    expect(overWs.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', details: { limit: LIMIT, retry_after_sec: expect.any(Number) } });
    refused += 1;

    // Someone else's budget is their own.
    const other = await a.user();
    expect((await listJobs(b, other.token)).status).toBe(200);

    await sleep(retryAfter * 1000 + 100);
    expect((await listJobs(b, user.token)).status).toBe(200);
    expect((await graphql(a, '{ renderJobs { edges { cursor } } }', { token: user.token })).body).toEqual({ data: { renderJobs: { edges: [] } } });
  });
});

describe('a node agent', () => {
  let beats = 0;
  const heartbeat = (node: TestNode) =>
    a.signed(node, 'POST', `/v1/internal/nodes/${node.id}/heartbeat`, { recorded_at: new Date(Date.now() + beats++).toISOString() });

  it('is refused with 429 past its budget, by node id, and served again after the window', async () => {
    const node = await a.onlineNode(`limited-${randomUUID().slice(0, 8)}`);
    const other = await a.onlineNode(`unlimited-${randomUUID().slice(0, 8)}`);
    // Going online was the first request of the window.
    for (let i = 1; i < LIMIT; i++) expect((await heartbeat(node)).status).toBe(200);
    const refusedBeat = await heartbeat(node);
    const retryAfter = expectRateLimited(refusedBeat);
    expect(refusedBeat.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { limit: LIMIT } });
    expect((await heartbeat(other)).status).toBe(200);

    await sleep(retryAfter * 1000 + 100);
    expect((await heartbeat(node)).status).toBe(200);
  });
});

describe('admins and services', () => {
  it('are not counted', async () => {
    const admin = await a.user(0, { admin: true });
    for (let i = 0; i < LIMIT * 2; i++) {
      expect((await a.rest('GET', '/v1/nodes', { token: admin.token })).status).toBe(200);
      expect((await a.rest('GET', '/v1/renders', { token: TEST_SERVICE_TOKEN })).status).not.toBe(429);
    }
  });
});

describe('refusals', () => {
  it('are counted by door', async () => {
    const counted = (await metric(a, 'http_requests_refused_total', { reason: 'rate_limited' })) + (await metric(b, 'http_requests_refused_total', { reason: 'rate_limited' }));
    expect(counted).toBe(refused);
    expect(await metric(b, 'http_requests_refused_total', { reason: 'rate_limited', door: 'graphql_ws' })).toBe(1);
  });
});

describe('without Redis', () => {
  it('counts in the process', async () => {
    const alone = await startTestApp({ env: { REDIS_URL: '', ...limits('unused:', 2) } });
    try {
      const user = await alone.user();
      expect((await listJobs(alone, user.token)).status).toBe(200);
      expect((await listJobs(alone, user.token)).status).toBe(200);
      expectRateLimited(await listJobs(alone, user.token));
    } finally {
      await alone.close();
    }
  });
});

/** A TCP relay to the test Redis that can be cut and restored, as a network partition would. */
async function redisRelay(): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const target = new URL(inject('redisUrl'));
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    if (server) return;
    const relay = createServer((client) => {
      const upstream = connect(Number(target.port || 6379), target.hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
    port = (relay.address() as { port: number }).port;
    server = relay;
  };
  const cut = async () => {
    const relay = server;
    if (!relay) return;
    server = undefined;
    const closed = new Promise<void>((resolve) => relay.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();
  return { url: `redis://127.0.0.1:${port}`, cut, restore: listen, close: cut };
}

describe('when Redis is away', () => {
  it('serves requests uncounted, counts the failures, and counts again once Redis is back', async () => {
    const relay = await redisRelay();
    const app = await startTestApp({ env: { REDIS_URL: relay.url, ...limits(`limits-test:${randomUUID()}:`, 3, 60) } });
    try {
      const counted = await app.user();
      for (let i = 0; i < 3; i++) expect((await listJobs(app, counted.token)).status).toBe(200);
      expectRateLimited(await listJobs(app, counted.token), 60);

      await relay.cut();
      const during = await app.user();
      const served = [];
      for (let i = 0; i < 6; i++) served.push((await listJobs(app, during.token)).status);
      expect(served).toEqual([200, 200, 200, 200, 200, 200]);
      expect(await metric(app, 'rate_limit_counter_errors_total')).toBeGreaterThanOrEqual(6);

      await relay.restore();
      const after = await app.user();
      const statuses: number[] = [];
      for (let i = 0; i < 60 && !statuses.includes(429); i++) {
        statuses.push((await listJobs(app, after.token)).status);
        if (statuses.at(-1) === 200) await sleep(100);
      }
      console.log(`rate limits with Redis cut: ${served.length} requests served uncounted; ${statuses.length} requests until counting resumed and refused`);
      expect(statuses).toContain(429);
    } finally {
      await relay.restore();
      await app.close();
      await relay.close();
    }
  });
});
