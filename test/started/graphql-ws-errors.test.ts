// Errors over graphql-ws, through the service started as users run it (`tsx src/main.ts`, a real
// process, which loads graphql the way production does): the same messages and codes as over
// HTTP, subscriptions over HTTP refused with a pointer to graphql-ws, and a client that vanishes
// mid-subscription is no error of the server's.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { createClient as createRedisClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { topics } from '../../src/domain/events.ts';
import { overWebSocket } from '../support/graphql-ws.ts';
import { type Replicas, startReplicas } from '../support/replicas.ts';

let service: Replicas;
let url: string;
let token: string;
const redis = createRedisClient({ url: inject('redisUrl') });

beforeAll(async () => {
  service = await startReplicas(1);
  url = service.urls[0] as string;
  token = (await service.user(10_000)).token;
  await redis.connect();
}, 90_000);

afterAll(async () => {
  await redis.close();
  await service?.close();
});

type GraphQLErrorBody = { message: string; locations?: unknown; extensions?: Record<string, any> };

async function overHttp(query: string, variables?: Record<string, unknown>, method: 'POST' | 'GET' = 'POST') {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const response =
    method === 'POST'
      ? await fetch(`${url}/graphql`, { method, headers, body: JSON.stringify({ query, variables }) })
      : await fetch(`${url}/graphql?${new URLSearchParams({ query, ...(variables ? { variables: JSON.stringify(variables) } : {}) })}`, { headers });
  return { status: response.status, body: (await response.json()) as { data?: unknown; errors?: GraphQLErrorBody[] } };
}

const essentials = (errors: GraphQLErrorBody[] | undefined) =>
  (errors ?? []).map((error) => ({ message: error.message, code: error.extensions?.code, locations: error.locations }));

const PROGRESS = 'subscription($jobId: UUID!) { renderProgress(jobId: $jobId) { seq step } }';

describe('errors over graphql-ws', () => {
  const job = 'query($id: UUID!) { renderJob(id: $id) { id } }';
  const cases: { name: string; query: string; variables?: Record<string, unknown>; code: string }[] = [
    { name: 'a syntax error', query: 'subscription { renderProgress(jobId: "x") { seq ', code: 'GRAPHQL_PARSE_FAILED' },
    { name: 'an unknown field', query: 'subscription { progres }', code: 'GRAPHQL_VALIDATION_FAILED' },
    { name: 'a bad UUID literal', query: 'subscription { renderProgress(jobId: "x") { seq } }', code: 'GRAPHQL_VALIDATION_FAILED' },
    { name: 'a variable of the wrong type', query: job, variables: { id: 5 }, code: 'BAD_USER_INPUT' },
    { name: 'a variable that is not a UUID', query: job, variables: { id: 'x' }, code: 'BAD_USER_INPUT' },
    { name: 'a missing required variable', query: job, variables: {}, code: 'BAD_USER_INPUT' },
    { name: 'a page over the limit', query: '{ renderJobs(first: 500) { edges { node { id } } } }', code: 'PAGE_SIZE_TOO_LARGE' },
    { name: 'a bad connection argument', query: '{ renderJobs(first: -1) { edges { node { id } } } }', code: 'VALIDATION_FAILED' },
  ];

  it.each(cases)('carry the message and code HTTP gives for $name', async ({ query, variables, code }) => {
    const http = await overHttp(query, variables);
    expect(http.status).toBe(400);
    const expected = essentials(http.body.errors);
    expect(expected.map((error) => error.code)).toEqual([code]);
    expect(essentials((await overWebSocket(url, query, { token, variables })).errors)).toEqual(expected);
  });

  it('carry BAD_USER_INPUT for the variables of a subscription', async () => {
    const { errors } = await overWebSocket(url, PROGRESS, { token, variables: { jobId: 5 } });
    expect(essentials(errors)).toEqual([
      { message: 'Variable "$jobId" got invalid value 5; Value is not string: 5', code: 'BAD_USER_INPUT', locations: [{ line: 1, column: 14 }] },
    ]);
  });
});

describe('a subscription over HTTP', () => {
  it('is refused with 400 and told to use graphql-ws on /graphql, over POST and GET, instead of running', async () => {
    const jobId = randomUUID();
    for (const method of ['POST', 'GET'] as const) {
      const answer = await overHttp(PROGRESS, { jobId }, method);
      expect(answer.status, method).toBe(400);
      expect(answer.body.data, method).toBeUndefined();
      expect(essentials(answer.body.errors)).toEqual([
        {
          message: expect.stringMatching(/this same \/graphql path with graphql-ws \(subprotocol graphql-transport-ws\)/),
          code: 'SUBSCRIPTION_REQUIRES_WEBSOCKET',
          locations: undefined,
        },
      ]);
    }
  });
});

describe('a client that goes away mid-subscription', () => {
  it('is not logged as an error, while its events are still being written', { timeout: 60_000 }, async () => {
    const response = await fetch(`${url}/v1/renders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ saved_project_id: randomUUID(), quality: 'Low', resolution: 'HD', frame_rate: 30, duration_sec: 1, ae_version: '99.0' }),
    });
    const jobId = ((await response.json()) as { id: string }).id;
    const current = await service.db.prisma.renderJob.findUniqueOrThrow({ where: { id: jobId } });

    // The client resets its connection as soon as the burst of events below starts reaching it,
    // while the server is still writing the rest: its writes then fail (ECONNRESET, EPIPE).
    const firstSeq = current.eventSeq + 1;
    const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    let reset!: () => void;
    const wasReset = new Promise<void>((resolve) => {
      reset = resolve;
    });
    const subscribed = new Promise<void>((resolve, reject) => {
      socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        if (message.type === 'connection_ack') {
          const query = 'subscription($jobId: UUID!) { renderProgress(jobId: $jobId) { seq message } }';
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables: { jobId } } }));
        }
        if (message.type === 'error') reject(new Error(JSON.stringify(message)));
        if (message.type !== 'next') return;
        if (message.payload.data.renderProgress.seq < firstSeq) return resolve();
        (socket as unknown as { _socket: Socket })._socket.resetAndDestroy();
        reset();
      });
    });
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } })));
    await subscribed;
    const before = service.processes[0]?.output().length ?? 0;

    // Published as a replica publishes job events, all at once.
    const channel = service.redisPrefix + topics.renderProgress(jobId);
    const progress = { jobId, step: 'Queued', progress: 0, currentFrame: null, totalFrames: 30, etaSeconds: null, previewB64: null, activeNodes: 0 };
    await Promise.all(
      Array.from({ length: 20_000 }, (_, index) =>
        redis.publish(channel, JSON.stringify({ jobId, userId: current.userId, step: 'Queued', seq: firstSeq + index, progress: { ...progress, message: `event ${index}` } })),
      ),
    );
    await wasReset;
    await new Promise((resolve) => setTimeout(resolve, 2000));

    const logged = (service.processes[0]?.output() ?? '').slice(before);
    const errors = logged.split('\n').filter((line) => /"level":(50|60)/.test(line) || /Internal error/.test(line));
    expect(errors).toEqual([]);
  });
});
