// The soak's progress subscribers: for every job a user made, one graphql-ws subscription to
// renderProgress and one to the contract's legacy WebSocket (/ws/v1/render/{job_id}). Each
// follows its job to its terminal step through replica kills: when its connection drops it
// connects to another replica, the graphql-ws one resuming after the last seq it received, so
// that together its messages should be every seq once and in order. What each saw is kept as a
// few numbers (first and last seq, counts of duplicates, reorderings and gaps, the last step),
// enough for the audit at the end against the jobs as the database has them.
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { createRandom, streamSeed } from '../../agent-sim/random.ts';
import { canReach, isTerminal } from './steps.ts';
import { type RequestHistory, statusOfGraphQLError, type Violation } from './history.ts';

export interface SubscriberOptions {
  urls: readonly string[];
  history: RequestHistory;
  seed: number;
}

export interface Subscribers {
  /** Starts following a job: one graphql-ws subscriber (renderProgress) and one legacy WebSocket subscriber. */
  follow(jobId: string, token: string): void;
  /** Closes every subscriber; resolves once all are closed. */
  stop(): Promise<void>;
  stats(): { followed: number; reconnects: number; messages: number; open: number };
  /** Checks what every subscriber saw against the jobs as they ended (from the database). */
  audit(finals: ReadonlyMap<string, { lastSeq: number; step: string }>): Violation[];
}

export const GRAPHQL_WS_INVARIANT = 'subscriber saw every seq in order';
export const LEGACY_WS_INVARIANT = 'legacy progress socket saw the job to its end';

const MAX_EXAMPLES = 3;
/** Pings (graphql-ws keep-alive, WebSocket ping frames) this often... */
const PING_MS = 10_000;
/** ...and a connection that brought nothing (pongs included) for this long is given up. */
const SILENCE_MS = 35_000;
/** A connection not open this long after it was started is given up. */
const CONNECT_TIMEOUT_MS = 15_000;
const MAX_BACKOFF_MS = 5_000;
const STOP_WAIT_MS = 3_000;
/** The server completes a subscription right after the terminal step; one not completed this long after it is closed here. */
const COMPLETION_WAIT_MS = 10_000;

const SUBSCRIPTION = `subscription FollowRenderProgress($jobId: UUID!, $afterSeq: Int) {
  renderProgress(jobId: $jobId, afterSeq: $afterSeq) { jobId seq step progress }
}`;

/** What a graphql-ws subscriber saw. */
export interface GraphqlWsView {
  jobId: string;
  firstSeq: number | null;
  /** The highest seq received. */
  lastSeq: number | null;
  /** The step of the last message received. */
  lastStep: string | null;
  messages: number;
  /** A seq equal to the one before. */
  duplicated: number;
  /** A seq lower than one received before. */
  outOfOrder: number;
  /** Seqs skipped between two messages. */
  missing: number;
  /** Messages after a terminal step. */
  afterEnd: number;
  /** Times the server completed the subscription before a terminal step. */
  earlyCompletions: number;
  /** Times the server did not complete the subscription within COMPLETION_WAIT_MS of the terminal step. */
  uncompleted: number;
  /** Done: the terminal step came, and the server completed the subscription (or the connection went after it). */
  ended: boolean;
  /** A refusal it could not get past, e.g. `refused 404 NOT_FOUND`. */
  failure: string | null;
  /** stop() closed it before its end. */
  stopped: boolean;
  examples: string[];
}

/** What a legacy progress socket saw. */
export interface LegacyView {
  jobId: string;
  messages: number;
  lastStep: string | null;
  /** A step lower than one before (Queued < Preparing < Rendering < Encoding < terminal), or another terminal after a terminal. */
  backwards: number;
  /** Times the server closed with 1000 before a terminal step. */
  earlyCloses: number;
  /** The server closed with 1000 after the terminal step. */
  closedNormally: boolean;
  failure: string | null;
  stopped: boolean;
  examples: string[];
}

/** What a graphql-ws subscriber has seen before its first message. */
export const newGraphqlWsView = (jobId: string): GraphqlWsView => ({
  jobId,
  firstSeq: null,
  lastSeq: null,
  lastStep: null,
  messages: 0,
  duplicated: 0,
  outOfOrder: 0,
  missing: 0,
  afterEnd: 0,
  earlyCompletions: 0,
  uncompleted: 0,
  ended: false,
  failure: null,
  stopped: false,
  examples: [],
});

/** What a legacy socket subscriber has seen before its first message. */
export const newLegacyView = (jobId: string): LegacyView => ({
  jobId,
  messages: 0,
  lastStep: null,
  backwards: 0,
  earlyCloses: 0,
  closedNormally: false,
  failure: null,
  stopped: false,
  examples: [],
});

const note = (examples: string[], text: string) => {
  if (examples.length < MAX_EXAMPLES) examples.push(text);
};

/** The audit, pure: what each subscriber saw against each job's last seq and step from the database. */
export function auditViews(
  views: { graphqlWs: readonly GraphqlWsView[]; legacy: readonly LegacyView[] },
  finals: ReadonlyMap<string, { lastSeq: number; step: string }>,
): Violation[] {
  const violations: Violation[] = [];
  for (const view of views.graphqlWs) {
    const final = finals.get(view.jobId);
    // A job that never ended is reported by the checker itself.
    if (!final || !isTerminal(final.step)) continue;
    const problems: string[] = [];
    if (view.failure) problems.push(`gave up: ${view.failure}`);
    if (view.messages === 0 || view.lastSeq === null) {
      problems.push('received no message');
    } else {
      if (view.duplicated > 0) problems.push(`${view.duplicated} duplicated`);
      if (view.outOfOrder > 0) problems.push(`${view.outOfOrder} out of order`);
      if (view.missing > 0) problems.push(`${view.missing} missing between messages`);
      if (view.lastSeq < final.lastSeq) problems.push(`${final.lastSeq - view.lastSeq} missing at the end (last seq ${view.lastSeq}, job's ${final.lastSeq})`);
      if (view.lastSeq > final.lastSeq) problems.push(`seq ${view.lastSeq} beyond the job's last ${final.lastSeq}`);
      if (view.lastStep !== final.step) problems.push(`last step ${view.lastStep}, job ended ${final.step}`);
      if (view.afterEnd > 0) problems.push(`${view.afterEnd} messages after the terminal step`);
    }
    if (view.earlyCompletions > 0) problems.push(`completed ${view.earlyCompletions} times before the terminal step`);
    if (view.uncompleted > 0) problems.push(`not completed within ${COMPLETION_WAIT_MS / 1000} s of the terminal step`);
    if (!view.ended && !view.failure) problems.push(view.stopped ? 'closed by stop() before the job ended' : 'still open after the job ended');
    if (problems.length > 0) {
      const seen = view.firstSeq === null ? 'nothing' : `seqs ${view.firstSeq}..${view.lastSeq} in ${view.messages} messages`;
      const examples = view.examples.length > 0 ? `; e.g. ${view.examples.join(', ')}` : '';
      violations.push({ invariant: GRAPHQL_WS_INVARIANT, detail: `job ${view.jobId} (${final.step}, last seq ${final.lastSeq}): ${problems.join('; ')}; saw ${seen}${examples}` });
    }
  }
  for (const view of views.legacy) {
    const final = finals.get(view.jobId);
    if (!final || !isTerminal(final.step)) continue;
    const problems: string[] = [];
    if (view.failure) problems.push(`gave up: ${view.failure}`);
    if (view.messages === 0) problems.push('received no message');
    else if (view.lastStep !== final.step) problems.push(`last step ${view.lastStep}, job ended ${final.step}`);
    if (view.backwards > 0) problems.push(`steps went backwards ${view.backwards} times`);
    if (view.earlyCloses > 0) problems.push(`closed with 1000 ${view.earlyCloses} times before the terminal step`);
    if (!view.closedNormally && !view.failure) problems.push(view.stopped ? 'closed by stop() before the job ended' : 'not closed with 1000 after the job ended');
    if (problems.length > 0) {
      const examples = view.examples.length > 0 ? `; e.g. ${view.examples.join(', ')}` : '';
      violations.push({ invariant: LEGACY_WS_INVARIANT, detail: `job ${view.jobId} (${final.step}): ${problems.join('; ')}; ${view.messages} messages${examples}` });
    }
  }
  return violations;
}

/** The HTTP status a close code stands for: 4xxx mirrors an HTTP status (but the graphql-ws client's own 4499 and 4504), 1011 is internal, 1013 try again later; else 0. */
export function statusOfCloseCode(code: number): number {
  // 4499 is the client's own termination, 4504 its wait for the acknowledgement running out.
  if (code === 4499 || code === 4504) return 0;
  if (code >= 4400 && code <= 4599) return code - 4000;
  if (code === 1011) return 500;
  if (code === 1013) return 503;
  return 0;
}

/** The status of a failed handshake, from ws's "Unexpected server response: 503". */
function statusOfHandshakeError(error: unknown): number {
  const message = (error as { message?: unknown } | undefined)?.message ?? (error as { error?: { message?: unknown } } | undefined)?.error?.message;
  const match = typeof message === 'string' ? /Unexpected server response: (\d{3})/.exec(message) : null;
  return match ? Number(match[1]) : 0;
}

/** The most severe of the errors, as the history counts it, and its code. */
function statusOfGraphQLErrors(errors: readonly any[]): { status: number; code?: string } {
  let worst: { status: number; code?: string } = { status: 0 };
  for (const error of errors) {
    const status = statusOfGraphQLError(error);
    const code = error?.extensions?.code;
    if (status > worst.status) worst = { status, code: typeof code === 'string' ? code : undefined };
  }
  return worst.status === 0 ? { status: 400 } : worst;
}

/** Worth trying again (elsewhere): no answer, a server error or a rate limit. */
const transient = (status: number) => status === 0 || status >= 500 || status === 429 || status === 408;

interface Follower {
  kind: 'graphql-ws' | 'legacy-ws';
  jobId: string;
  token: string;
  replica: number;
  /** Attempts made (connections tried). */
  attempts: number;
  failures: number;
  /** When the current attempt started, and when it last heard anything. */
  startedAt: number;
  heardAt: number;
  pingedAt: number;
  connected: boolean;
  done: boolean;
  retryTimer?: NodeJS.Timeout;
  /** Ends the current connection at once (the close handlers then run). */
  kill?: () => void;
  /** Resolves once the current connection is closed. */
  closed?: Promise<void>;
}

interface GraphqlFollower extends Follower {
  kind: 'graphql-ws';
  view: GraphqlWsView;
  client?: Client;
}

interface LegacyFollower extends Follower {
  kind: 'legacy-ws';
  view: LegacyView;
  socket?: WebSocket;
}

export function startSubscribers(options: SubscriberOptions): Subscribers {
  const { urls, history } = options;
  if (urls.length === 0) throw new Error('startSubscribers: no replica urls');
  const random = createRandom(streamSeed(options.seed, 0, 83));
  const wsBase = (replica: number) => (urls[replica % urls.length] as string).replace(/^http/, 'ws');
  const graphqlFollowers = new Map<string, GraphqlFollower>();
  const legacyFollowers = new Map<string, LegacyFollower>();
  const open = new Set<Follower>();
  let followed = 0;
  let reconnects = 0;
  let messages = 0;
  let stopping = false;

  const record = (door: 'graphql-ws' | 'legacy-ws', route: string, replica: number, status: number) =>
    history.record({ door, route, replica: replica % urls.length, status, at: Date.now() });

  function finish(follower: Follower): void {
    follower.done = true;
    clearTimeout(follower.retryTimer);
    open.delete(follower);
  }

  /** Tries again on the next replica after a growing wait; `connect` is the kind's own. */
  function again(follower: Follower, connect: () => void): void {
    if (follower.done || stopping) return;
    follower.failures++;
    follower.replica = (follower.replica + 1) % urls.length;
    const wait = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(follower.failures - 1, 5)) + Math.floor(random() * 250);
    clearTimeout(follower.retryTimer);
    follower.retryTimer = setTimeout(() => {
      if (follower.done || stopping) return;
      reconnects++;
      connect();
    }, wait);
  }

  // ---- graphql-ws ------------------------------------------------------------------------------

  /** A new connection attempt of the follower: its clocks restart. */
  function beginAttempt(follower: Follower): void {
    const now = Date.now();
    follower.attempts++;
    follower.startedAt = now;
    follower.heardAt = now;
    follower.pingedAt = now;
    follower.connected = false;
  }

  function connectGraphql(follower: GraphqlFollower): void {
    const { view } = follower;
    const replica = follower.replica;
    beginAttempt(follower);
    let over = false;
    let completionTimer: NodeJS.Timeout | undefined;
    let closedResolve!: () => void;
    follower.closed = new Promise<void>((resolve) => (closedResolve = resolve));
    const heard = () => {
      follower.heardAt = Date.now();
    };
    const client = createClient({
      url: `${wsBase(replica)}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${follower.token}` },
      retryAttempts: 0,
      lazy: true,
      keepAlive: PING_MS,
      connectionAckWaitTimeout: CONNECT_TIMEOUT_MS,
      on: {
        connected: () => {
          follower.connected = true;
          heard();
          record('graphql-ws', 'connect /graphql', replica, 101);
        },
        message: heard,
        pong: heard,
        closed: (event) => {
          const code = (event as { code?: number } | undefined)?.code;
          if (follower.connected && typeof code === 'number') {
            // An answer the server gave by closing (an internal error, a refusal), beside drops.
            const status = statusOfCloseCode(code);
            if (status !== 0) record('graphql-ws', 'subscription renderProgress', replica, status);
          }
          closedResolve();
        },
      },
    });
    follower.client = client;
    follower.kill = () => client.terminate();
    /** The end of this attempt: `next` says whether and how to go on. */
    const end = (outcome: 'done' | 'again' | { failure: string }) => {
      if (over) return;
      clearTimeout(completionTimer);
      // The terminal step came and then the connection went before the server completed: nothing follows a terminal step.
      const next = outcome === 'again' && view.lastStep !== null && isTerminal(view.lastStep) ? 'done' : outcome;
      over = true;
      follower.connected = false;
      follower.kill = undefined;
      void Promise.resolve(client.dispose()).catch(() => undefined);
      if (follower.done) return;
      if (next === 'done') {
        view.ended = true;
        finish(follower);
        follower.client = undefined;
      } else if (typeof next === 'object') {
        view.failure = next.failure;
        finish(follower);
        follower.client = undefined;
      } else {
        again(follower, () => connectGraphql(follower));
      }
    };
    const refused = (status: number, code: string | undefined) => {
      record('graphql-ws', 'subscription renderProgress', replica, status);
      if (transient(status)) end('again');
      else end({ failure: `refused ${status}${code ? ` ${code}` : ''}` });
    };
    const variables = { jobId: follower.jobId, ...(view.lastSeq === null ? {} : { afterSeq: view.lastSeq }) };
    client.subscribe<{ renderProgress: { seq: number; step: string } }>(
      { query: SUBSCRIPTION, variables },
      {
        next: (result) => {
          if (over) return;
          heard();
          if (result.errors && result.errors.length > 0) {
            const { status, code } = statusOfGraphQLErrors(result.errors);
            return refused(status, code);
          }
          const progress = result.data?.renderProgress;
          if (!progress || typeof progress.seq !== 'number') return;
          messages++;
          follower.failures = 0;
          received(view, progress.seq, progress.step);
          if (isTerminal(progress.step) && completionTimer === undefined) {
            completionTimer = setTimeout(() => {
              if (over || follower.done) return;
              view.uncompleted++;
              note(view.examples, `no completion after seq ${view.lastSeq} ${view.lastStep}`);
              end('done');
            }, COMPLETION_WAIT_MS);
            completionTimer.unref();
          }
        },
        error: (error) => {
          if (over) return;
          if (Array.isArray(error)) {
            const { status, code } = statusOfGraphQLErrors(error);
            return refused(status, code);
          }
          if (!follower.connected) {
            // The connection was not made: refused, reset, timed out, or closed with a refusal.
            const code = (error as { code?: unknown } | undefined)?.code;
            const status = typeof code === 'number' ? statusOfCloseCode(code) : statusOfHandshakeError(error);
            record('graphql-ws', 'connect /graphql', replica, status);
            if (!transient(status) && status !== 0) return end({ failure: `connection refused ${status}` });
          }
          end('again');
        },
        complete: () => {
          if (over) return;
          if (view.lastStep !== null && isTerminal(view.lastStep)) return end('done');
          // Completed without the terminal step: follow on from the last seq.
          view.earlyCompletions++;
          note(view.examples, `completed after ${view.lastStep ?? 'nothing'}`);
          end('again');
        },
      },
    );
  }

  function received(view: GraphqlWsView, seq: number, step: string): void {
    view.messages++;
    if (view.lastStep !== null && isTerminal(view.lastStep)) {
      view.afterEnd++;
      note(view.examples, `seq ${seq} ${step} after ${view.lastStep}`);
    }
    if (view.lastSeq === null) {
      view.firstSeq = seq;
      view.lastSeq = seq;
    } else if (seq === view.lastSeq) {
      view.duplicated++;
      note(view.examples, `seq ${seq} twice`);
    } else if (seq < view.lastSeq) {
      view.outOfOrder++;
      note(view.examples, `seq ${seq} after ${view.lastSeq}`);
    } else {
      if (seq > view.lastSeq + 1) {
        view.missing += seq - view.lastSeq - 1;
        note(view.examples, `seq ${seq} after ${view.lastSeq}`);
      }
      view.lastSeq = seq;
    }
    view.lastStep = step;
  }

  // ---- legacy WebSocket ------------------------------------------------------------------------

  function connectLegacy(follower: LegacyFollower): void {
    const { view } = follower;
    const replica = follower.replica;
    beginAttempt(follower);
    const url = `${wsBase(replica)}/ws/v1/render/${encodeURIComponent(follower.jobId)}?token=${encodeURIComponent(follower.token)}`;
    const socket = new WebSocket(url, { handshakeTimeout: CONNECT_TIMEOUT_MS });
    follower.socket = socket;
    follower.kill = () => socket.terminate();
    let closedResolve!: () => void;
    follower.closed = new Promise<void>((resolve) => (closedResolve = resolve));
    let handshakeError: unknown;
    const heard = () => {
      follower.heardAt = Date.now();
    };
    socket.on('open', () => {
      follower.connected = true;
      heard();
      record('legacy-ws', 'connect /ws/v1/render/{id}', replica, 101);
    });
    socket.on('pong', heard);
    socket.on('error', (error) => {
      if (!follower.connected) handshakeError = error;
    });
    socket.on('message', (data) => {
      heard();
      let step: unknown;
      try {
        step = (JSON.parse(String(data)) as { step?: unknown }).step;
      } catch {
        step = undefined;
      }
      if (typeof step !== 'string') return;
      messages++;
      follower.failures = 0;
      view.messages++;
      const last = view.lastStep;
      if (last !== null) {
        if (!canReach(last, step) || (isTerminal(last) && step !== last)) {
          view.backwards++;
          note(view.examples, `${step} after ${last}`);
        }
      }
      view.lastStep = step;
    });
    socket.on('close', (code) => {
      const wasConnected = follower.connected;
      follower.connected = false;
      follower.kill = undefined;
      follower.socket = undefined;
      closedResolve();
      if (follower.done) return;
      if (!wasConnected) {
        const status = statusOfHandshakeError(handshakeError);
        record('legacy-ws', 'connect /ws/v1/render/{id}', replica, status);
        if (status !== 0 && !transient(status)) {
          view.failure = `connection refused ${status}`;
          return finish(follower);
        }
        return again(follower, () => connectLegacy(follower));
      }
      if (code === 1000) {
        if (view.lastStep !== null && isTerminal(view.lastStep)) {
          view.closedNormally = true;
          return finish(follower);
        }
        view.earlyCloses++;
        note(view.examples, `closed 1000 after ${view.lastStep ?? 'nothing'}`);
        return again(follower, () => connectLegacy(follower));
      }
      const status = statusOfCloseCode(code);
      if (status !== 0) record('legacy-ws', 'socket /ws/v1/render/{id}', replica, status);
      if (status !== 0 && !transient(status)) {
        view.failure = `closed ${code}`;
        return finish(follower);
      }
      again(follower, () => connectLegacy(follower));
    });
  }

  // ---- watchdog: silent connections are cut and tried again --------------------------------------

  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const follower of open) {
      if (!follower.kill) continue;
      if (!follower.connected) {
        if (now - follower.startedAt > CONNECT_TIMEOUT_MS + 5_000) follower.kill();
        continue;
      }
      if (now - follower.heardAt > SILENCE_MS) {
        follower.kill();
        continue;
      }
      if (follower.kind === 'legacy-ws' && now - follower.pingedAt >= PING_MS) {
        follower.pingedAt = now;
        try {
          (follower as LegacyFollower).socket?.ping();
        } catch {
          // Closing already: its close handler goes on.
        }
      }
    }
  }, 5_000);
  watchdog.unref();

  function base(kind: Follower['kind'], jobId: string, token: string): Follower {
    return {
      kind,
      jobId,
      token,
      replica: Math.floor(random() * urls.length),
      attempts: 0,
      failures: 0,
      startedAt: 0,
      heardAt: 0,
      pingedAt: 0,
      connected: false,
      done: false,
    };
  }

  let stopped: Promise<void> | undefined;
  return {
    follow(jobId, token) {
      if (stopping || graphqlFollowers.has(jobId)) return;
      followed++;
      const graphqlFollower: GraphqlFollower = {
        ...(base('graphql-ws', jobId, token) as Follower & { kind: 'graphql-ws' }),
        view: newGraphqlWsView(jobId),
      };
      graphqlFollowers.set(jobId, graphqlFollower);
      open.add(graphqlFollower);
      connectGraphql(graphqlFollower);
      const legacyFollower: LegacyFollower = {
        ...(base('legacy-ws', jobId, token) as Follower & { kind: 'legacy-ws' }),
        view: newLegacyView(jobId),
      };
      legacyFollowers.set(jobId, legacyFollower);
      open.add(legacyFollower);
      connectLegacy(legacyFollower);
    },

    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearInterval(watchdog);
        const closing: Promise<void>[] = [];
        for (const follower of [...open]) {
          clearTimeout(follower.retryTimer);
          if (follower.kind === 'graphql-ws') (follower as GraphqlFollower).view.stopped = true;
          else (follower as LegacyFollower).view.stopped = true;
          const closed = follower.closed;
          const live = follower.kill !== undefined;
          finish(follower);
          if (follower.kind === 'graphql-ws') {
            const client = (follower as GraphqlFollower).client;
            (follower as GraphqlFollower).client = undefined;
            if (client) closing.push(Promise.resolve(client.dispose()).catch(() => undefined));
          } else {
            const socket = (follower as LegacyFollower).socket;
            if (socket && socket.readyState !== WebSocket.CLOSED) {
              try {
                if (socket.readyState === WebSocket.OPEN) socket.close(1000, 'soak stopping');
                else socket.terminate();
              } catch {
                socket.terminate();
              }
            }
          }
          if (live && closed) closing.push(closed);
        }
        // Sockets that do not close in time are cut.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), STOP_WAIT_MS);
        });
        const outcome = await Promise.race([Promise.all(closing).then(() => 'closed' as const), late]);
        clearTimeout(timer);
        if (outcome === 'late') {
          for (const follower of legacyFollowers.values()) follower.socket?.terminate();
          for (const follower of graphqlFollowers.values()) follower.client?.terminate();
        }
      })();
      return stopped;
    },

    stats: () => ({ followed, reconnects, messages, open: open.size }),

    audit(finals) {
      return auditViews(
        {
          graphqlWs: [...graphqlFollowers.values()].map((follower) => follower.view),
          legacy: [...legacyFollowers.values()].map((follower) => follower.view),
        },
        finals,
      );
    },
  };
}
