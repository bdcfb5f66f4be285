// One GraphQL subscription over a real graphql-ws WebSocket, as a frontend holds it: what it
// received, the errors it was sent, and whether the server ended it.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** GraphQL errors as sent; a closed socket as its close code and reason; anything else by its message. */
function describeFailure(error: unknown): unknown {
  if (Array.isArray(error)) return error;
  const failure = error as { code?: unknown; reason?: unknown; message?: unknown; error?: unknown };
  if (typeof failure.code === 'number') return { close: failure.code, reason: failure.reason };
  if (failure.error instanceof Error) return { message: failure.error.message };
  return { message: typeof failure.message === 'string' ? failure.message : String(error) };
}

export interface Subscriber<R> {
  received: R[];
  /** GraphQL errors sent with a result or as the subscription's error, and socket failures. */
  errors: any[];
  /** The server completed the subscription, or it failed. */
  readonly ended: boolean;
  /** Waits until a result satisfies `done`; fails, with what came, on an error or after timeoutMs. */
  until(done: (result: R) => boolean, timeoutMs?: number): Promise<void>;
  /** Waits until `count` results came and answers the first `count`; fails, with what came, on an error or after timeoutMs. */
  results(count: number, timeoutMs?: number): Promise<R[]>;
  /** Waits until an error came (with a result or as the subscription's error); answers the errors so far. */
  failure(timeoutMs?: number): Promise<any[]>;
  /** Waits until the server ends the subscription (complete or error). */
  end(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Subscribes at the GraphQL path of the service or gateway at base URL `url`, with the token in connection_init, under the
 * given parameter name (`Authorization` or `authorization`, as different clients spell it).
 */
export function subscribe<R, V>(
  url: string,
  token: string | undefined,
  document: TypedDocumentNode<R, V>,
  variables: V,
  options: { param?: string } = {},
): Subscriber<R> {
  const client: Client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token === undefined ? {} : { [options.param ?? 'Authorization']: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  const received: R[] = [];
  const errors: any[] = [];
  let ended = false;
  const listeners: Array<() => void> = [];
  const notify = () => listeners.splice(0).forEach((listener) => listener());
  client.subscribe<R>(
    { query: print(document), variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.errors) errors.push(...result.errors);
        if (result.data) received.push(result.data);
        notify();
      },
      error: (error) => {
        errors.push(describeFailure(error));
        ended = true;
        notify();
      },
      complete: () => {
        ended = true;
        notify();
      },
    },
  );
  const waitFor = (satisfied: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms; got ${JSON.stringify({ received, errors })}`)), timeoutMs);
      const check = () => {
        if (satisfied()) {
          clearTimeout(timer);
          resolve();
        } else {
          listeners.push(check);
        }
      };
      check();
    });
  return {
    received,
    errors,
    get ended() {
      return ended;
    },
    async until(done, timeoutMs = 30_000) {
      await waitFor(() => received.some(done) || errors.length > 0 || ended, 'no matching result', timeoutMs);
      if (!received.some(done)) throw new Error(`the subscription ended or failed first: ${JSON.stringify({ received, errors })}`);
    },
    async results(count, timeoutMs = 30_000) {
      await waitFor(() => received.length >= count || errors.length > 0 || ended, `not ${count} results`, timeoutMs);
      if (received.length < count) throw new Error(`the subscription ended or failed first: ${JSON.stringify({ received, errors })}`);
      return received.slice(0, count);
    },
    async failure(timeoutMs = 30_000) {
      await waitFor(() => errors.length > 0, 'no error', timeoutMs);
      return errors;
    },
    end: (timeoutMs = 30_000) => waitFor(() => ended, 'the subscription did not end', timeoutMs),
    close: () => client.dispose() as Promise<void>,
  };
}
