// The console's only door to the service: GraphQL over HTTP for reads and admin actions, graphql-ws
// for live changes, both with the admin token the operator pasted.
import { type Client, createClient } from 'graphql-ws';

/** A failure the operator can act on: `code` is the API's (FORBIDDEN, NOT_FOUND, …). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Why the console cannot go on with a token, for the codes after which no request with it can succeed. */
const REFUSALS: Record<string, string> = {
  FORBIDDEN:
    'This token is valid but not an admin’s. The console shows the whole farm, which only admins may see; sign in with an admin token.',
  UNAUTHENTICATED: 'The service did not accept this token: it is malformed, expired or signed with another key.',
};

/** What to tell the operator on the sign-in page, when `error` means the token cannot be used. */
export const refusalOf = (error: ApiError): string | undefined => REFUSALS[error.code];

interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

function failureOf(errors: NonNullable<GraphQLAnswer<unknown>['errors']>): ApiError {
  const [first] = errors;
  return new ApiError(first?.message ?? 'The service answered with an error', first?.extensions?.code ?? 'INTERNAL');
}

const GRAPHQL_URL = new URL('/graphql', location.href).href;

export async function graphql<T>(token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The service cannot be reached', 'UNREACHABLE');
  }
  const answer = (await response.json().catch(() => ({}))) as GraphQLAnswer<T>;
  if (answer.errors?.length) throw failureOf(answer.errors);
  if (!answer.data) throw new ApiError(`The service answered HTTP ${response.status} without data`, 'INTERNAL');
  return answer.data;
}

/** What a mutation's result union answers: the object, or a domain error turned into an ApiError. */
export function outcome<T extends { __typename: string }>(result: T | { __typename: string; code: string; message: string }): T {
  if ('code' in result && 'message' in result && result.__typename.endsWith('Error')) throw new ApiError(result.message, result.code);
  return result as T;
}

/** `idle`: no view follows anything, so the socket is closed on purpose. */
export type Connection = 'idle' | 'connecting' | 'live' | 'reconnecting';

/**
 * One WebSocket per signed-in console. It does not retry by itself: each `follow` resubscribes on
 * its own, with variables that say where it left off, which graphql-ws's own retries (replaying
 * the first payload) cannot.
 */
export class Live {
  readonly client: Client;
  private readonly watchers = new Set<(state: Connection) => void>();
  private following = 0;
  private connectedOnce = false;
  state: Connection = 'idle';

  /** `refused` hears why the token cannot be used any more (expired, say), in words for the operator. */
  constructor(
    token: string,
    private readonly refused: (reason: string) => void,
  ) {
    this.client = createClient({
      url: GRAPHQL_URL.replace(/^http/, 'ws'),
      connectionParams: { Authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
      on: {
        connecting: () => this.set(this.connectedOnce ? 'reconnecting' : 'connecting'),
        connected: () => {
          this.connectedOnce = true;
          this.set('live');
        },
        // Being lazy, the client also closes the socket once the last view stops following.
        closed: () => this.set(this.following > 0 ? 'reconnecting' : 'idle'),
      },
    });
  }

  private set(state: Connection) {
    this.state = state;
    for (const watcher of this.watchers) watcher(state);
  }

  watch(watcher: (state: Connection) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /**
   * Runs a subscription until `next` says it saw the last event or `stop` is called, starting it
   * again after a dropped connection (or a stream cut short) with the variables `variables()`
   * answers then. `resumed` runs on every start after the first, for views that must catch up on
   * what the gap hid.
   */
  follow<T>(
    query: string,
    variables: () => Record<string, unknown>,
    handlers: { next(data: T): boolean | void; resumed?(): void; failed?(error: ApiError): void },
  ): () => void {
    let stopped = false;
    let release: (() => void) | undefined;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.following += 1;
    // Once over, it no longer counts: a socket closing after the last stream ended is no drop.
    const end = () => {
      if (stopped) return;
      stopped = true;
      this.following -= 1;
    };
    const retry = () => {
      if (stopped) return;
      attempt += 1;
      // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so a restarted service is not met by every console at once.
      const delay = Math.min(10_000, 500 * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2);
      timer = setTimeout(start, delay);
    };
    const fail = (error: ApiError) => {
      end();
      const refusal = refusalOf(error);
      if (refusal) this.refused(refusal);
      else handlers.failed?.(error);
    };
    const start = () => {
      if (stopped) return;
      if (attempt > 0) handlers.resumed?.();
      // Released after it ends too: graphql-ws counts a stream cut off by a closing socket as
      // still open until then, and would keep the next socket open for it for good.
      const unsubscribe = this.client.subscribe<T>(
        { query, variables: variables() },
        {
          next: (message) => {
            attempt = 0;
            if (message.errors?.length) fail(failureOf(message.errors as never));
            else if (message.data && handlers.next(message.data) === true) end();
          },
          // Also what a socket closed with 1000 ends in: the stream goes on unless it was over.
          complete: () => {
            unsubscribe();
            retry();
          },
          error: (error) => {
            unsubscribe();
            const closed = error as { code?: number; reason?: string };
            if (Array.isArray(error)) fail(failureOf(error as never));
            else if (closed.code === 4401 || closed.code === 4403) fail(new ApiError(closed.reason || 'Forbidden', 'UNAUTHENTICATED'));
            else retry();
          },
        },
      );
      release = unsubscribe;
    };
    start();
    return () => {
      end();
      clearTimeout(timer);
      release?.();
    };
  }

  dispose() {
    this.watchers.clear();
    void this.client.dispose();
  }
}
