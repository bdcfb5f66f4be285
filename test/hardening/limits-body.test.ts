// Body size limits: JSON bodies, GraphQL requests and graphql-ws messages over
// HTTP_BODY_LIMIT_BYTES are refused with 413 (or the socket closed as too big), while the agents'
// uploads keep their own, larger limits.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config.ts';
import { MAX_DISCARDED_BYTES } from '../../src/http/oversized-body.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { pngBytes, snapshotFixtures } from '../support/snapshots.ts';
import { metric } from './limits-support.ts';

const LIMIT = 64 * 1024;

let t: TestApp;
const clock = new ManualClock();
let f: ReturnType<typeof snapshotFixtures>;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false, env: { HTTP_BODY_LIMIT_BYTES: String(LIMIT) } });
  f = snapshotFixtures(t);
});
afterAll(() => t.close());

const padded = (bytes: number) => JSON.stringify({ saved_project_id: 'x', name: 'y'.repeat(bytes) });

describe('JSON bodies', () => {
  it('over the limit are refused with 413 and the error body; under it they reach validation', async () => {
    const user = await t.user();
    const big = await t.rest('POST', '/v1/renders', { token: user.token, rawBody: padded(LIMIT) });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large', details: { limit: LIMIT } } });
    const fits = await t.rest('POST', '/v1/renders', { token: user.token, rawBody: padded(LIMIT - 1024) });
    expect(fits.status).toBe(400);
    expect(fits.body.error.code).toBe('VALIDATION_FAILED');
    expect(await t.app.services.db.prisma.renderJob.count()).toBe(0);
  });

  it('default to 1 MiB', () => {
    expect(loadConfig({}).limits.bodyLimitBytes).toBe(1024 * 1024);
    expect(() => loadConfig({ HTTP_BODY_LIMIT_BYTES: 'lots' })).toThrow(/HTTP_BODY_LIMIT_BYTES/);
  });
});

describe('a JSON body over the limit that the client is still sending', () => {
  const TOO_LARGE = { error: { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large', details: { limit: LIMIT } } };

  it('gets its 413 and the error body: 50 POSTs of 2 MB from Node’s fetch in another process, 30 one after another, 20 at once', async () => {
    const user = await t.user();
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      'test/hardening/oversized-client.ts',
      `${t.url}/v1/renders`,
      user.token,
      '30',
      '20',
      String(2_000_000),
    ]);
    const outcomes = JSON.parse(stdout) as unknown[];
    expect(outcomes).toHaveLength(50);
    expect(outcomes.filter((outcome) => JSON.stringify(outcome) !== JSON.stringify({ status: 413, body: TOO_LARGE }))).toEqual([]);
    expect(await t.app.services.db.prisma.renderJob.count()).toBe(0);
  }, 60_000);

  it('is read no further than a cap: a body that never ends has its connection closed', async () => {
    const user = await t.user();
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.length;
        controller.enqueue(sent === chunk.length ? Buffer.concat([Buffer.from('{"name":"'), chunk]) : chunk);
      },
    });
    const answer = await fetch(`${t.url}/v1/renders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: endless,
      duplex: 'half',
    } as RequestInit).then(
      async (response) => ({ status: response.status, connection: response.headers.get('connection'), body: await response.json() }),
      (error: Error) => error,
    );
    // The answer may or may not reach a client that keeps writing once the server stops reading.
    if (!(answer instanceof Error)) expect(answer).toEqual({ status: 413, connection: 'close', body: TOO_LARGE });
    // What the client wrote is what the server read, plus what the sockets' buffers hold.
    expect(sent).toBeGreaterThan(LIMIT + MAX_DISCARDED_BYTES);
    expect(sent).toBeLessThan(LIMIT + 4 * MAX_DISCARDED_BYTES);
  });
});

describe('GraphQL requests', () => {
  it('over the limit are refused with 413 in GraphQL’s error shape', async () => {
    const user = await t.user();
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: `{ renderJobs { edges { cursor } } } # ${'x'.repeat(LIMIT)}` }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({
      errors: [{ message: 'The request body is too large', extensions: { code: 'PAYLOAD_TOO_LARGE', details: { limit: LIMIT } } }],
    });
  });

  it('over the limit close the graphql-ws socket as too big (1009)', async () => {
    const user = await t.user();
    const client = createClient({
      url: `${t.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${user.token}` },
      retryAttempts: 0,
    });
    const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    client.subscribe({ query: `{ renderJobs { edges { cursor } } } # ${'x'.repeat(LIMIT)}` }, { next: () => undefined, error: () => undefined, complete: () => undefined });
    expect(await closed).toBe(1009);
    await client.dispose();
  });
});

describe('agent uploads', () => {
  it('take bodies far over the JSON limit on the upload routes, and the JSON limit elsewhere', async () => {
    const owner = await t.user();
    const project = await f.savedProject(owner);
    const node = await t.onlineNode(undefined, { templates: [project.md5] });
    const asked = await t.rest('POST', '/v1/snapshots', { token: owner.token, body: { saved_project_id: project.id, scene_key: 'intro', frame_number: 1 } });
    expect(asked.status).toBe(202);
    await t.app.services.scheduler.assignWork();
    const command = await f.snapshotCommand(node);

    const image = pngBytes(2 * 1024 * 1024);
    const uploaded = await f.upload(node, command.snapshot_id, 'image', command.lease, image);
    expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(204);
    console.log(`body limits: a ${image.length}-byte upload accepted with JSON bodies limited to ${LIMIT} bytes`);

    expect((await f.upload(node, command.snapshot_id, 'thumbnail', command.lease, pngBytes(512))).status).toBe(204);

    const tooBig = await f.complete(node, command, { note: 'z'.repeat(LIMIT) });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await f.complete(node, command)).status).toBe(204);
  });
});

describe('refusals', () => {
  it('are counted by door', async () => {
    // The two JSON bodies of the first and last tests, the 50 from another process and the endless one.
    expect(await metric(t, 'http_requests_refused_total', { reason: 'payload_too_large', door: 'rest' })).toBe(2 + 50 + 1);
    expect(await metric(t, 'http_requests_refused_total', { reason: 'payload_too_large', door: 'graphql' })).toBe(1);
    expect(await metric(t, 'http_requests_refused_total', { reason: 'payload_too_large', door: 'graphql_ws' })).toBe(1);
  });
});
