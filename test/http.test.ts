import { randomUUID } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from './support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('the HTTP server', () => {
  it('answers liveness and readiness, with each backend checked', async () => {
    expect((await t.rest('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await t.rest('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(t.app.services.db.kind).toBe('postgres');
    expect(ready.body).toEqual({
      status: 'ready',
      checks: { database: { ok: true }, bus: { ok: true }, objects: { ok: true } },
    });
  });

  it('answers unknown routes, oversized bodies and wrong content types with the error body', async () => {
    const missing = await t.rest('GET', '/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'NOT_FOUND' });
    const token = await t.token(randomUUID());
    const huge = await t.rest('POST', '/v1/renders', { token, rawBody: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const text = await t.rest('POST', '/v1/renders', { token, rawBody: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('VALIDATION_FAILED');
    const empty = await t.rest('POST', '/v1/renders', { token, rawBody: '' , headers: { 'content-type': 'application/json' } });
    expect(empty.status).toBe(400);
  });

  it('passes the request id through', async () => {
    const given = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'trace-me-123' } });
    expect(given.headers.get('x-request-id')).toBe('trace-me-123');
    const made = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'no spaces allowed' } });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('accepts graphql-ws connections on /graphql and refuses bad credentials', async () => {
    const token = await t.token(randomUUID());
    const wsUrl = `${t.url.replace('http', 'ws')}/graphql`;
    const good = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${token}` }, retryAttempts: 0 });
    const result = await new Promise<unknown>((resolve, reject) => {
      good.subscribe({ query: '{ renderJobs(first: 1) { edges { cursor } } }' }, { next: resolve, error: reject, complete: () => undefined });
    });
    expect(result).toEqual({ data: { renderJobs: { edges: [] } } });
    await good.dispose();

    const bad = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { Authorization: 'Bearer nope' }, retryAttempts: 0, lazy: false });
    const closed = await new Promise<number>((resolve) => bad.on('closed', (event) => resolve((event as { code: number }).code)));
    expect(closed).toBe(4403);
    await bad.dispose();
  });

  it('refuses a bad GraphQL token with 401 and masks nothing it should not', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-token' },
      body: JSON.stringify({ query: '{ wallet { balanceMinor } }' }),
    });
    expect(response.status).toBe(401);
    const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });
});

describe('shutdown', () => {
  it('drains WebSocket clients, stops listening and closes the database pool', async () => {
    const own = await startTestApp();
    const token = await own.token(randomUUID());
    const socket = new WebSocket(`${own.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } }));
    await new Promise((resolve) => socket.once('message', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));

    await own.close();

    expect(await closed).toBe(1001);
    await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
    await expect(own.app.services.db.prisma.renderJob.count()).rejects.toThrow();
  });

  it('makes /readyz answer 503 when a backend is gone', async () => {
    const own = await startTestApp();
    try {
      await own.app.services.bus.close();
      const ready = await own.rest('GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.status).toBe('unavailable');
      expect(ready.body.checks.bus.ok).toBe(false);
      expect(ready.body.checks.database.ok).toBe(true);
    } finally {
      await own.close();
    }
  });
});
