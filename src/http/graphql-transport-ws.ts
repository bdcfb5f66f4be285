// The graphql-transport-ws protocol (graphql-ws's PROTOCOL.md) on `ws` sockets, answered as
// graphql-ws's own server answers it: the same messages, close codes and reasons, in the same
// order. Written for tens of thousands of idle subscribers: graphql-ws's server keeps per socket
// the upgrade request, an interval, a timeout and their closures, and per subscription a suspended
// async function holding its message, a dictionary of operations and nine closures (three its
// own, six graphql-js's subscribe's); here a connection is one object beside its socket, a
// subscription one entry in it and one pending read of its events, and one timer pings every socket.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  createSourceEventStream,
  type ExecutionArgs,
  type ExecutionResult,
  getOperationAST,
  GraphQLError,
  type GraphQLFormattedError,
} from 'graphql';
import {
  CloseCode,
  type FormattedExecutionResult,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  handleProtocols,
  type Message,
  MessageType,
  parseMessage,
  type SubscribePayload,
  stringifyMessage,
} from 'graphql-ws';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { Actor } from '../domain/actor.ts';
import { execute } from '../graphql/execute.ts';

/** Every socket is pinged this often; one that has not answered its previous ping by then is cut. */
const KEEP_ALIVE_MS = 12_000;
/** The sockets are pinged in this many rounds spread over KEEP_ALIVE_MS, not all in one burst. */
const KEEP_ALIVE_ROUNDS = 12;
/** How long a socket may stay open without a connection_init. */
const CONNECTION_INIT_WAIT_MS = 3_000;
/** The longest close reason a WebSocket close frame carries. */
const MAX_CLOSE_REASON_BYTES = 123;
/**
 * Subscriptions set up at once. Setting one up reads the database (may the caller see it, where
 * does it stand), and a read waiting for one of the pool's 10 connections holds its query's state
 * meanwhile: clients reconnecting by the thousand would each hold one for as long as the queue
 * takes, long enough to outlive the young generation and stay in the heap until a full collection.
 * Past this many, a setup waits its turn before it starts; a few more than the pool keep it busy.
 */
const CONCURRENT_SETUPS = 16;

/** What the service decides; the protocol is this module's. */
export interface GraphQLTransportHooks {
  /** A connection_init and its payload: true accepts the connection, false closes it with 4403. */
  connect(connection: Connection, params: Record<string, unknown> | undefined): Promise<boolean>;
  /** The operation a subscribe message asks for, with its context, or the errors to answer it with. */
  prepare(connection: Connection, payload: SubscribePayload): Promise<ExecutionArgs | readonly GraphQLError[]>;
  /** The payload of the `next` message of a result. */
  resultPayload(result: ExecutionResult): FormattedExecutionResult;
  /** The payload of an `error` message. */
  errorsPayload(connection: Connection, errors: readonly GraphQLError[]): GraphQLFormattedError[];
  /** Every socket once it has closed, its connection accepted or not. */
  closed(connection: Connection): void;
  /** A failure handling a client's message: the socket is closed with 4500 after. */
  failed(error: unknown): void;
  /** An error ws reported on a socket (it has closed the socket itself). */
  socketFailed(error: Error & { code?: string }): void;
}

export interface GraphQLTransportOptions {
  /** Largest message, in bytes; ws closes the socket with 1009 over it. */
  maxPayload: number;
  /** Close reasons of failures say no more than "Internal server error". */
  production: boolean;
}

export interface GraphQLTransport {
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every socket with 1001 and answers once all have closed. */
  close(): Promise<void>;
}

/** A subscription's events, and what executes each of them. */
class Subscription {
  constructor(
    readonly events: AsyncIterator<unknown>,
    readonly args: ExecutionArgs,
  ) {}

  /**
   * Stops the events after a failure, which stays the error to report if stopping fails too, or
   * once the socket has closed, when nobody is left to report to.
   */
  async stop(): Promise<void> {
    try {
      await this.events.return?.();
    } catch {
      // The first failure, or the close, is what is reported.
    }
  }
}

/** Runs work at most `limit` at a time; the rest wait their turn in order. */
class Turns {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) this.running += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}

interface Shared {
  hooks: GraphQLTransportHooks;
  production: boolean;
  setups: Turns;
}

/** One socket speaking graphql-transport-ws, from its upgrade to its close. */
export class Connection {
  /** Whether connection_init has come; the connection is acknowledged once it was accepted. */
  private initialised = false;
  acknowledged = false;
  /** Who the connection_init showed, once accepted. */
  actor: Actor | undefined;
  /** The operations by id: null while one is set up, then a subscription's events. None until the first. */
  private operations: Map<string, Subscription | null> | undefined;

  constructor(
    readonly socket: WebSocket,
    /** The upgrade request's Authorization header; the request itself is not kept. */
    readonly authorization: string | undefined,
    private readonly shared: Shared,
  ) {}

  /** Subscriptions streaming now. */
  get streaming(): number {
    let streaming = 0;
    for (const subscription of this.operations?.values() ?? []) if (subscription !== null) streaming += 1;
    return streaming;
  }

  /** Run once, CONNECTION_INIT_WAIT_MS after the socket opened, by a timer nothing keeps. */
  static closeUninitialised(connection: Connection): void {
    if (!connection.initialised) connection.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  /** Closes the socket after a failure of the service's handling of it. */
  fail(error: unknown): void {
    this.shared.hooks.failed(error);
    const message = error instanceof Error ? error.message : String(error);
    const reason = this.shared.production || Buffer.byteLength(message) > MAX_CLOSE_REASON_BYTES ? 'Internal server error' : message;
    this.close(CloseCode.InternalServerError, reason);
  }

  async receive(data: string): Promise<void> {
    let message: Message;
    try {
      message = parseMessage(data);
    } catch {
      return this.close(CloseCode.BadRequest, 'Invalid message received');
    }
    switch (message.type) {
      case MessageType.ConnectionInit:
        return this.initialise(message.payload ?? undefined);
      case MessageType.Ping:
        return this.send(message.payload ? { type: MessageType.Pong, payload: message.payload } : { type: MessageType.Pong });
      case MessageType.Pong:
        return;
      case MessageType.Subscribe:
        return this.subscribe(message.id, message.payload);
      case MessageType.Complete:
        return this.complete(message.id);
      default:
        throw new Error(`Unexpected message of type ${message.type} received`);
    }
  }

  /** Stops every subscription once the socket has closed. */
  async closed(): Promise<void> {
    const operations = this.operations;
    this.operations = undefined;
    const stopping: Array<Promise<void> | undefined> = [];
    // A subscription that fails to stop must not keep the others, or the close hook, from running.
    for (const subscription of operations?.values() ?? []) stopping.push(subscription?.stop());
    await Promise.all(stopping);
    this.shared.hooks.closed(this);
  }

  private holds(id: string): boolean {
    return this.operations?.has(id) ?? false;
  }

  private send(message: Message): Promise<void> {
    const data = stringifyMessage(message);
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => socket.send(data, (error) => (error ? reject(error) : resolve())));
  }

  private sendErrors(id: string, errors: readonly GraphQLError[]): Promise<void> {
    return this.send({ id, type: MessageType.Error, payload: this.shared.hooks.errorsPayload(this, errors) });
  }

  private async initialise(params: Record<string, unknown> | undefined): Promise<void> {
    if (this.initialised) return this.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
    this.initialised = true;
    if (!(await this.shared.hooks.connect(this, params))) return this.close(CloseCode.Forbidden, 'Forbidden');
    this.acknowledged = true;
    await this.send({ type: MessageType.ConnectionAck });
  }

  private async subscribe(id: string, payload: SubscribePayload): Promise<void> {
    if (!this.acknowledged) return this.close(CloseCode.Unauthorized, 'Unauthorized');
    const operations = (this.operations ??= new Map());
    if (operations.has(id)) return this.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`);
    operations.set(id, null);
    let streaming = false;
    try {
      const args = await this.shared.hooks.prepare(this, payload);
      if (!('document' in args)) return this.holds(id) ? await this.sendErrors(id, args) : undefined;
      const operation = getOperationAST(args.document, args.operationName);
      if (!operation) return this.holds(id) ? await this.sendErrors(id, [new GraphQLError('Unable to identify operation')]) : undefined;
      const result = operation.operation === 'subscription' ? await this.shared.setups.run(() => createSourceEventStream(args)) : await execute(args);
      if (Symbol.asyncIterator in result) {
        const events = result[Symbol.asyncIterator]();
        // Completed by the client while it was set up.
        if (!this.holds(id)) return void events.return?.();
        const subscription = new Subscription(events, args);
        this.operations?.set(id, subscription);
        streaming = true;
        this.pull(id, subscription);
        return;
      }
      if (this.holds(id)) await this.send({ id, type: MessageType.Next, payload: this.shared.hooks.resultPayload(result) });
      await this.completed(id);
    } finally {
      if (!streaming) this.operations?.delete(id);
    }
  }

  /** Waits for the subscription's next event without a suspended function of its own. */
  private pull(id: string, subscription: Subscription): void {
    subscription.events.next().then(
      (step) => this.step(id, subscription, step),
      (error: unknown) => this.broke(id, error),
    );
  }

  /** One event executed and sent, then the next one asked for; or the end of the events. */
  private async step(id: string, subscription: Subscription, step: IteratorResult<unknown>): Promise<void> {
    if (step.done) return this.completed(id).catch((error: unknown) => this.fail(error));
    let result: ExecutionResult;
    try {
      result = await execute({ ...subscription.args, rootValue: step.value });
      await this.send({ id, type: MessageType.Next, payload: this.shared.hooks.resultPayload(result) });
    } catch (error) {
      await subscription.stop();
      return this.broke(id, error);
    }
    this.pull(id, subscription);
  }

  /** The subscription failed: its client gets the error and no complete after it. */
  private async broke(id: string, error: unknown): Promise<void> {
    const cause = error instanceof Error ? error : new Error(String(error));
    try {
      await this.sendErrors(id, [new GraphQLError(cause.message, { originalError: cause })]);
    } catch (failure) {
      this.fail(failure);
    } finally {
      this.operations?.delete(id);
    }
  }

  /** A `complete` for an operation the client has not completed itself. */
  private async completed(id: string): Promise<void> {
    try {
      if (this.holds(id)) await this.send({ id, type: MessageType.Complete });
    } finally {
      this.operations?.delete(id);
    }
  }

  private async complete(id: string): Promise<void> {
    const subscription = this.operations?.get(id);
    this.operations?.delete(id);
    await subscription?.events.return?.();
  }
}

export function createGraphQLTransport(hooks: GraphQLTransportHooks, options: GraphQLTransportOptions): GraphQLTransport {
  const shared: Shared = { hooks, production: options.production, setups: new Turns(CONCURRENT_SETUPS) };
  // ws keeps no set of clients: the keep-alive rounds hold every open socket.
  const wsServer = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload, handleProtocols, clientTracking: false });

  // One timer for every socket instead of an interval, a timeout and a listener each: a socket
  // joins one of the rounds, is pinged when its round comes, and is cut when its round comes
  // again without a pong.
  const rounds = Array.from({ length: KEEP_ALIVE_ROUNDS }, () => new Set<WebSocket>());
  const unanswered = new Set<WebSocket>();
  let joining = 0;
  let round = 0;
  const keepAlive = setInterval(() => {
    round = (round + 1) % KEEP_ALIVE_ROUNDS;
    for (const socket of rounds[round] ?? []) {
      if (socket.readyState !== WebSocket.OPEN) continue;
      if (unanswered.has(socket)) {
        socket.terminate();
      } else {
        unanswered.add(socket);
        socket.ping();
      }
    }
  }, KEEP_ALIVE_MS / KEEP_ALIVE_ROUNDS);
  keepAlive.unref();
  function onPong(this: WebSocket) {
    unanswered.delete(this);
  }
  function onError(error: Error) {
    hooks.socketFailed(error);
  }
  let drained: (() => void) | undefined;
  const open = () => rounds.some((sockets) => sockets.size > 0);

  const accept = (socket: WebSocket, request: IncomingMessage) => {
    const connection = new Connection(socket, request.headers.authorization, shared);
    const keptAlive = rounds[joining++ % KEEP_ALIVE_ROUNDS] as Set<WebSocket>;
    keptAlive.add(socket);
    socket.on('error', onError);
    socket.on('pong', onPong);
    socket.once('close', () => {
      keptAlive.delete(socket);
      unanswered.delete(socket);
      void connection.closed();
      if (drained && !open()) drained();
    });
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) return connection.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
    setTimeout(Connection.closeUninitialised, CONNECTION_INIT_WAIT_MS, connection).unref();
    socket.on('message', (data: RawData) => void connection.receive(String(data)).catch((error: unknown) => connection.fail(error)));
  };

  return {
    upgrade(request, socket, head) {
      wsServer.handleUpgrade(request, socket, head, (client) => accept(client, request));
    },
    async close() {
      clearInterval(keepAlive);
      // Closed first, so that an upgrade arriving meanwhile is refused (503) instead of accepted.
      const refusing = new Promise<void>((resolve) => wsServer.close(() => resolve()));
      const drain = open() ? new Promise<void>((resolve) => (drained = resolve)) : Promise.resolve();
      for (const sockets of rounds) for (const socket of sockets) socket.close(1001, 'Going away');
      await Promise.all([refusing, drain]);
    },
  };
}
