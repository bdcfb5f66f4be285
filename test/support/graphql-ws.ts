// GraphQL over a WebSocket besides test/support/subscriber.ts: a bare graphql-ws client, one
// operation's first answer, and the contract's legacy progress socket followed until the server
// closes it.
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

export interface WebSocketAnswer {
  data?: any;
  errors?: { message: string; locations?: unknown; extensions?: Record<string, any> }[];
  /** The close code, when the server closed the socket instead of answering. */
  closedWith?: number;
}

/**
 * The first answer to one operation over graphql-ws at the service at `baseUrl`: its first result,
 * the errors it was refused with, or the code the server closed the socket with. The token goes in
 * connection_init as `Authorization`, unless connectionParams say otherwise; headers go on the
 * upgrade request.
 */
export async function overWebSocket(
  baseUrl: string,
  query: string,
  options: { token?: string; variables?: Record<string, unknown>; connectionParams?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<WebSocketAnswer> {
  const { headers } = options;
  const client = createClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: headers
      ? class extends WebSocket {
          constructor(address: string, protocols: string | string[]) {
            super(address, protocols, { headers });
          }
        }
      : WebSocket,
    connectionParams: options.connectionParams ?? (options.token ? { Authorization: `Bearer ${options.token}` } : {}),
    retryAttempts: 0,
  });
  try {
    return await new Promise<WebSocketAnswer>((resolve, reject) => {
      client.on('closed', (event) => resolve({ closedWith: (event as { code: number }).code }));
      client.subscribe(
        { query, variables: options.variables },
        {
          next: (result) => resolve(result as WebSocketAnswer),
          error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
          complete: () => resolve({}),
        },
      );
    });
  } finally {
    await client.dispose();
  }
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
