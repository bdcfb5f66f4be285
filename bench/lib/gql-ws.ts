// A bare graphql-transport-ws client for benchmarks that hold thousands of subscriptions from one
// process: a `ws` socket and the protocol's four messages, none of graphql-ws's per-client
// machinery (retries, lazy connects, timers) on the measuring side.
import WebSocket from 'ws';

export interface Subscription {
  socket: WebSocket;
  close(): void;
}

/**
 * Connects, subscribes, and resolves once the first `next` (the current state) has arrived; every
 * later `next` payload goes to onNext with the time it was received (performance.now()).
 */
export function subscribe(options: {
  url: string;
  token: string;
  query: string;
  variables: Record<string, unknown>;
  onNext?: (payload: unknown, receivedAt: number) => void;
  timeoutMs?: number;
}): Promise<Subscription> {
  const socket = new WebSocket(options.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    let first = true;
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`No first event within ${options.timeoutMs ?? 30_000} ms`));
    }, options.timeoutMs ?? 30_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.terminate();
      reject(error);
    };
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${options.token}` } })));
    socket.on('error', fail);
    socket.on('close', (code, reason) => {
      if (first) fail(new Error(`Closed before the first event: ${code} ${reason.toString()}`));
    });
    socket.on('message', (data) => {
      const receivedAt = performance.now();
      const message = JSON.parse(data.toString()) as { type: string; payload?: unknown };
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: options.query, variables: options.variables } }));
      } else if (message.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      } else if (message.type === 'next') {
        if (first) {
          first = false;
          clearTimeout(timer);
          resolve({ socket, close: () => socket.terminate() });
        } else {
          options.onNext?.(message.payload, receivedAt);
        }
      } else if (message.type === 'error') {
        fail(new Error(`Subscription refused: ${JSON.stringify(message.payload)}`));
      }
    });
  });
}

/** Opens `count` connections with at most `parallel` handshakes in flight at a time. */
export async function openMany<T>(count: number, parallel: number, open: (index: number) => Promise<T>): Promise<T[]> {
  const opened: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const index = next++;
        opened[index] = await open(index);
      }
    }),
  );
  return opened;
}
