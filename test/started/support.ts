// What the tests against the started service share: subscriptions over a real graphql-ws
// WebSocket and the contract's legacy progress socket, each followed until the server ends it.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** How long a stream that should end by itself is given before the test fails. */
const END_WITHIN_MS = 20_000;

type Result = { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] };

async function withinTime<T>(work: Promise<T>, what: string, timeoutMs = END_WITHIN_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

export function graphqlWsClient(baseUrl: string, token: string) {
  return createClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
}

export interface Subscription {
  /** Every result, in order. */
  results: Result[];
  /** Resolves once the server completed the subscription (the client's loop ended by itself). */
  ended: Promise<void>;
  /** Resolves once `count` results arrived. */
  received(count: number): Promise<void>;
}

/** One operation over graphql-ws, consumed with `for await` until the server completes it. */
export function subscribe(baseUrl: string, token: string, query: string, variables: Record<string, unknown> = {}): Subscription {
  const client = graphqlWsClient(baseUrl, token);
  const results: Result[] = [];
  const waiters: (() => void)[] = [];
  const loop = (async () => {
    try {
      for await (const result of client.iterate({ query, variables })) {
        results.push(result as Result);
        waiters.splice(0).forEach((wake) => wake());
      }
    } finally {
      await client.dispose();
    }
  })();
  const ended = withinTime(loop, `the subscription ${query.slice(0, 60)}`);
  const received = (count: number) =>
    withinTime(
      new Promise<void>((resolve) => {
        const check = () => (results.length >= count ? resolve() : waiters.push(check));
        check();
      }),
      `waiting for ${count} results`,
    );
  return { results, ended, received };
}

export interface LegacySocket {
  /** The JSON messages received, in order. */
  messages: any[];
  /** The close code and reason, once the server closed the socket. */
  closed: Promise<{ code: number; reason: string }>;
  opened: Promise<void>;
}

/** The contract's browser WebSocket for one job, the token in the query string as browsers send it. */
export function legacyProgress(baseUrl: string, token: string, jobId: string): LegacySocket {
  const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws/v1/render/${jobId}?token=${encodeURIComponent(token)}`);
  const messages: any[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const closed = withinTime(
    new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: String(reason) }))),
    `the legacy progress socket of ${jobId}`,
  );
  return { messages, closed, opened };
}
