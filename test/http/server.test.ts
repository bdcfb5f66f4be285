import { randomUUID } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type HttpAnswer, startTestApp, TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';

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
    expect(text.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
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

/**
 * The error body as the contract's Error schema lays it out: a code, a message, and details, an
 * object with snake_case keys, holding a validation error's problems and what was not found.
 */
function expectErrorBody(answer: HttpAnswer, status: number, code: string): void {
  const context = `${status} ${code}: ${JSON.stringify(answer.body)}`;
  expect(answer.status, context).toBe(status);
  expect(answer.headers.get('content-type'), context).toMatch(/^application\/json/);
  expect(Object.keys(answer.body), context).toEqual(['error']);
  expect(Object.keys(answer.body.error).sort(), context).toEqual(['code', 'details', 'message']);
  expect(answer.body.error.code, context).toBe(code);
  expect(typeof answer.body.error.message, context).toBe('string');
  const details = answer.body.error.details as Record<string, any>;
  expect(typeof details === 'object' && details !== null && !Array.isArray(details), context).toBe(true);
  for (const key of Object.keys(details)) expect(key, context).toMatch(/^[a-z]+(_[a-z]+)*$/);
  if (code === 'VALIDATION_FAILED') {
    expect(details.problems.length, context).toBeGreaterThan(0);
    for (const problem of details.problems) expect(Object.keys(problem).sort(), context).toEqual(['message', 'path']);
  }
  if (code === 'NOT_FOUND') expect(Object.keys(details).sort(), context).toEqual(['entity', 'id']);
}

describe('error answers', () => {
  it('answer a known path asked with a method it does not have with 405 and the methods it has', async () => {
    const token = await t.token(randomUUID());
    const cases: [string, string, string[]][] = [
      ['DELETE', '/v1/renders', ['GET', 'HEAD', 'POST']],
      ['PUT', `/v1/renders/${randomUUID()}`, ['GET', 'HEAD']],
      ['GET', `/v1/renders/${randomUUID()}/cancel`, ['POST']],
      ['PATCH', `/v1/internal/snapshots/${randomUUID()}/image`, ['PUT']],
      ['POST', '/healthz', ['GET', 'HEAD']],
    ];
    for (const [method, path, allowed] of cases) {
      const answer = await t.rest(method, path, { token });
      expectErrorBody(answer, 405, 'METHOD_NOT_ALLOWED');
      expect(answer.headers.get('allow'), `${method} ${path}`).toBe(allowed.join(', '));
      expect(answer.body.error.details, `${method} ${path}`).toEqual({ allowed_methods: allowed });
    }
    const graphql = await t.rest('PUT', '/graphql', { token, body: { query: '{ __typename }' } });
    expect(graphql.status).toBe(405);
    expect(graphql.headers.get('allow')?.split(', ')).toEqual(expect.arrayContaining(['GET', 'POST']));
  });

  it('answer a path nothing answers with 404, and a body that is not JSON with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const missing = await t.rest('DELETE', '/v1/nothing-here?x=1');
    expectErrorBody(missing, 404, 'NOT_FOUND');
    expect(missing.body.error.details).toEqual({ entity: 'route', id: 'DELETE /v1/nothing-here' });
    expectErrorBody(await t.rest('GET', '/v1/docs/assets/0000/nothing.js'), 404, 'NOT_FOUND');
    const token = await t.token(randomUUID());
    for (const contentType of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
      const answer = await t.rest('POST', '/v1/renders', { token, rawBody: '<render/>', headers: { 'content-type': contentType } });
      expectErrorBody(answer, 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(answer.body.error.message, contentType).toContain('application/json');
    }
    expect(await t.app.services.db.prisma.renderJob.count()).toBe(0);
  });

  it('have details of one shape, whatever refuses the request', async () => {
    const token = await t.token(randomUUID());
    const json = (rawBody: string) => ({ token, rawBody, headers: { 'content-type': 'application/json' } });
    const refusals: [HttpAnswer, number, string, unknown?][] = [
      [await t.rest('POST', '/v1/renders', json('{"saved_project_id":')), 400, 'VALIDATION_FAILED', [{ path: 'body', message: 'is not valid JSON' }]],
      [await t.rest('POST', '/v1/renders', json('[1, 2]')), 400, 'VALIDATION_FAILED', [{ path: 'body', message: 'must be a JSON object' }]],
      [await t.rest('POST', '/v1/renders', json('{}')), 400, 'VALIDATION_FAILED'],
      [await t.rest('GET', '/v1/renders/%zz', { token }), 400, 'VALIDATION_FAILED'],
      [await t.rest('GET', `/v1/renders/${'a'.repeat(4000)}`, { token }), 400, 'VALIDATION_FAILED'],
      [await t.rest('GET', '/v1/renders/not-a-uuid', { token }), 400, 'VALIDATION_FAILED'],
      [await t.rest('GET', '/v1/renders', { token: 'not-a-token' }), 401, 'UNAUTHENTICATED'],
      [await t.rest('POST', `/v1/renders/${randomUUID()}/cancel`, { token: TEST_SERVICE_TOKEN }), 403, 'FORBIDDEN'],
      [await t.rest('GET', `/v1/renders/${randomUUID()}`, { token }), 404, 'NOT_FOUND'],
      [await t.rest('POST', '/v1/renders', json(JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }))), 413, 'PAYLOAD_TOO_LARGE'],
    ];
    for (const [answer, status, code, problems] of refusals) {
      expectErrorBody(answer, status, code);
      if (problems) expect(answer.body.error.details.problems).toEqual(problems);
    }
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
