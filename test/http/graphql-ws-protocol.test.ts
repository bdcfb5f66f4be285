// The graphql-transport-ws protocol on /graphql, spoken by a raw WebSocket: the close codes and
// reasons a client gets for each breach, ping and pong, an operation's answer and completion, a
// subscription the client completes, and the server's keep-alive pings.
import { randomUUID } from 'node:crypto';
import { createClient as createRedisClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import WebSocket from 'ws';
import { topics } from '../../src/domain/events.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { info, submitRender } from '../support/jobs.ts';

let t: TestApp;
let token: string;
const redis = createRedisClient({ url: inject('redisUrl') });

interface RawSocket {
  socket: WebSocket;
  /** The messages received, parsed, in order. */
  messages: Array<{ type: string; id?: string; payload?: any }>;
  /** When the server's WebSocket pings came. */
  pings: number[];
  send(message: unknown): void;
  /** Waits until a message satisfies `match`; answers it. */
  message(match: (message: { type: string; id?: string; payload?: any }) => boolean, timeoutMs?: number): Promise<{ type: string; id?: string; payload?: any }>;
  /** Resolves with the close code and reason once the socket has closed. */
  closed: Promise<{ code: number; reason: string }>;
}

async function open(options: { protocol?: string | null; autoPong?: boolean } = {}): Promise<RawSocket> {
  const protocol = options.protocol === undefined ? 'graphql-transport-ws' : options.protocol;
  const socket = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, protocol === null ? [] : [protocol], { autoPong: options.autoPong ?? true });
  const messages: RawSocket['messages'] = [];
  const pings: number[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  socket.on('ping', () => pings.push(Date.now()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    messages,
    pings,
    closed,
    send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    async message(match, timeoutMs = 10_000) {
      let found: RawSocket['messages'][number] | undefined;
      await vi.waitFor(
        () => {
          found = messages.find(match);
          expect(found, JSON.stringify(messages)).toBeDefined();
        },
        { timeout: timeoutMs, interval: 10 },
      );
      return found!;
    },
  };
}

/** A socket whose connection_init was acknowledged. */
async function acknowledged(): Promise<RawSocket> {
  const raw = await open();
  raw.send({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } });
  await raw.message((message) => message.type === 'connection_ack');
  return raw;
}

const PROGRESS = 'subscription Progress($jobId: UUID!) { renderProgress(jobId: $jobId) { step message } }';

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  token = await t.token(randomUUID());
  await redis.connect();
});

afterAll(async () => {
  await redis.close();
  await t?.close();
});

describe('graphql-transport-ws on /graphql', () => {
  it('closes a socket that breaks the protocol with the code and reason for that breach', async () => {
    const noProtocol = await open({ protocol: null });
    expect(await noProtocol.closed).toEqual({ code: 4406, reason: 'Subprotocol not acceptable' });

    const silent = await open();
    expect(await silent.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });

    const twice = await acknowledged();
    twice.send({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } });
    expect(await twice.closed).toEqual({ code: 4429, reason: 'Too many initialisation requests' });

    const early = await open();
    early.send({ id: '1', type: 'subscribe', payload: { query: '{ __typename }' } });
    expect(await early.closed).toEqual({ code: 4401, reason: 'Unauthorized' });

    const garbled = await acknowledged();
    garbled.send('not json');
    expect(await garbled.closed).toEqual({ code: 4400, reason: 'Invalid message received' });

    const refused = await open();
    refused.send({ type: 'connection_init', payload: { Authorization: 'Bearer not-a-token' } });
    expect(await refused.closed).toEqual({ code: 4403, reason: 'Forbidden' });

    const unexpected = await acknowledged();
    unexpected.send({ id: '1', type: 'next', payload: { data: null } });
    expect(await unexpected.closed).toEqual({ code: 4500, reason: 'Unexpected message of type next received' });
  });

  it('answers a ping with a pong carrying its payload, and an operation with its result and a complete', async () => {
    const raw = await acknowledged();
    try {
      raw.send({ type: 'ping', payload: { at: 1 } });
      raw.send({ type: 'ping' });
      await vi.waitFor(() => expect(raw.messages.filter((message) => message.type === 'pong')).toEqual([{ type: 'pong', payload: { at: 1 } }, { type: 'pong' }]));

      raw.send({ id: 'q', type: 'subscribe', payload: { query: '{ __typename }' } });
      await raw.message((message) => message.id === 'q' && message.type === 'complete');
      expect(raw.messages.filter((message) => message.id === 'q')).toEqual([
        { id: 'q', type: 'next', payload: { data: { __typename: 'Query' } } },
        { id: 'q', type: 'complete' },
      ]);
    } finally {
      raw.socket.close();
    }
  });

  it('refuses a second subscription under an id in use, and stops one the client completes', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const raw = await open();
    raw.send({ type: 'connection_init', payload: { Authorization: `Bearer ${user.token}` } });
    await raw.message((message) => message.type === 'connection_ack');
    raw.send({ id: 'p', type: 'subscribe', payload: { query: PROGRESS, variables: { jobId: job.id } } });
    await raw.message((message) => message.id === 'p' && message.type === 'next');
    const channel = t.redisPrefix + topics.renderProgress(job.id);
    expect(await redis.pubSubNumSub([channel])).toEqual({ [channel]: 1 });

    raw.send({ id: 'p', type: 'complete' });
    // Completed by the client: its channel is let go, and nothing more comes, not even a complete.
    await vi.waitFor(async () => expect(await redis.pubSubNumSub([channel])).toEqual({ [channel]: 0 }));
    await t.app.services.jobs.move(job.id, { to: 'Preparing', log: info('Preparing the replica') });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(raw.messages.filter((message) => message.id === 'p').map((message) => message.type)).toEqual(['next']);

    raw.send({ id: 'again', type: 'subscribe', payload: { query: PROGRESS, variables: { jobId: job.id } } });
    await raw.message((message) => message.id === 'again' && message.type === 'next');
    raw.send({ id: 'again', type: 'subscribe', payload: { query: PROGRESS, variables: { jobId: job.id } } });
    expect(await raw.closed).toEqual({ code: 4409, reason: 'Subscriber for again already exists' });
    await vi.waitFor(async () => expect(await redis.pubSubNumSub([channel])).toEqual({ [channel]: 0 }));
  });

  it('pings every socket within 12 s, and cuts one that has not answered by its next turn', { timeout: 45_000 }, async () => {
    const opened = Date.now();
    const answering = await acknowledged();
    const silent = await open({ autoPong: false });
    silent.send({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } });
    await silent.message((message) => message.type === 'connection_ack');
    await vi.waitFor(() => expect([answering.pings.length, silent.pings.length]).toEqual([1, 1]), { timeout: 13_000, interval: 50 });
    expect(Math.max(answering.pings[0]!, silent.pings[0]!) - opened).toBeLessThan(13_000);

    const cut = await silent.closed;
    expect(cut.code).toBe(1006);
    expect(Date.now() - silent.pings[0]!).toBeGreaterThan(11_000);
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
    answering.socket.close();
  });
});
