// What the tests against the started service share beside test/support/subscriber.ts: a bare
// graphql-ws client, and the contract's legacy progress socket followed until the server closes it.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** How long a stream that should end by itself is given before the test fails. */
const END_WITHIN_MS = 20_000;

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
