// One database handle for the whole service: Prisma for the domain and a raw SQL runner (for the
// migrator, advisory locks and health checks) over the same connections. PostgreSQL when a URL
// is configured, otherwise PGlite (PostgreSQL in WASM) in the data folder, so the service runs
// with no external database in development.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { Prisma, PrismaClient } from '../../generated/prisma/client.ts';
import type { Read, SqlDriver } from '../../domain/db.ts';

export interface SqlRunner {
  /** May contain several statements (a migration file). */
  exec(sql: string): Promise<void>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs fn on one dedicated connection (session-level advisory locks need that). */
  withSession<R>(fn: (session: SqlRunner) => Promise<R>): Promise<R>;
}

export interface PoolStats {
  /** Open connections, idle or in use. */
  total: number;
  idle: number;
  /** Queries waiting for a connection. */
  waiting: number;
}

export interface Database extends SqlDriver {
  prisma: PrismaClient;
  kind: 'postgres' | 'pglite';
  sql: SqlRunner;
  ping(): Promise<void>;
  /** The PostgreSQL pools' counts, together; null for PGlite, a single in-process connection. */
  poolStats(): PoolStats | null;
  read: Read;
  /** Calls listener with every SQL statement Prisma sends, and every read (query counting, N+1 checks); returns the unsubscribe. */
  onQuery(listener: (sql: string) => void): () => void;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL connection URL; without it the database is PGlite under dataDir. */
  databaseUrl?: string;
  dataDir: string;
  /** Most PostgreSQL connections of Prisma and the raw SQL runner; the agents' hot statements hold HOT_POOL_SIZE more. */
  poolSize?: number;
}

/** PostgreSQL connections one process holds unless told otherwise; benchmarks give their baselines the same. */
export const DEFAULT_POOL_SIZE = 10;

/**
 * Connections of the agents' group commits (SqlDriver), apart from Prisma's: two batches in
 * flight each for heartbeats, frame reports and command acknowledgements. On Prisma's pool, a
 * fleet's heartbeats queued behind interactive transactions waiting on row locks, long enough to
 * get healthy nodes declared Offline.
 */
export const HOT_POOL_SIZE = 6;

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  return options.databaseUrl
    ? openPostgres(options.databaseUrl, options.poolSize ?? DEFAULT_POOL_SIZE)
    : openPglite(join(options.dataDir, 'pglite'));
}

type Queryable = pg.Pool | pg.PoolClient;

/**
 * How long a query waits for a new connection before it fails as unavailable: long enough for a
 * busy server, short enough that callers hear about an outage instead of hanging with it.
 */
const CONNECT_TIMEOUT_MS = 5_000;

// SQLSTATE class 08 (connection exception), 57P01-57P03 (the server is shutting down, was
// restarted, or is starting up) and 53300 (too many connections): the database is away, not
// the request wrong, so the same request succeeds once it is back.
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53300)$/;
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
// Prisma's codes for an unreachable server, a connect timeout, a closed connection, a pool timeout.
const UNAVAILABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1017', 'P2024']);
const UNAVAILABLE_ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
// Prisma's code P2028 covers every failure of an interactive transaction, its misuse too; only
// this one means no connection came in time, as P2024 does for a single query.
const TRANSACTION_NOT_STARTED = 'Unable to start a transaction in the given time';
// pg reports a connection lost under a query or a transaction with these messages and no code.
const UNAVAILABLE_PG_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
];

/**
 * Whether an error means the database could not be reached or dropped the connection (a restart,
 * a failover, a network cut), as opposed to a failing statement. Callers answer 503 and clients
 * retry; the pool opens fresh connections by itself once the server is back.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { code, message, meta } = error as { code?: unknown; message?: unknown; meta?: { driverAdapterError?: { cause?: Record<string, unknown> } } };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_SOCKET_CODES.has(code) || UNAVAILABLE_PRISMA_CODES.has(code))) {
    return true;
  }
  if (code === 'P2028' && typeof message === 'string' && message.includes(TRANSACTION_NOT_STARTED)) return true;
  const cause = meta?.driverAdapterError?.cause;
  if (cause) {
    if (typeof cause.kind === 'string' && UNAVAILABLE_ADAPTER_KINDS.has(cause.kind)) return true;
    if (typeof cause.originalCode === 'string' && UNAVAILABLE_SQLSTATE.test(cause.originalCode)) return true;
  }
  return typeof message === 'string' && UNAVAILABLE_PG_MESSAGES.some((known) => message.startsWith(known));
}

/** A Prisma client whose statements can be observed by any number of listeners. */
function observedClient(adapter: PrismaPg | PrismaPGlite) {
  const prisma = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
  const listeners = new Set<(sql: string) => void>();
  const observe = (sql: string) => {
    for (const listener of listeners) listener(sql);
  };
  prisma.$on('query', (event) => observe(event.query));
  return {
    prisma,
    /** Reports a statement sent beside Prisma, through the driver. */
    observe,
    onQuery(listener: (sql: string) => void) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}

function pgRunner(client: Queryable, withSession: SqlRunner['withSession']): SqlRunner {
  return {
    async exec(sql) {
      // Without parameters pg uses the simple query protocol, which accepts several statements.
      await client.query(sql);
    },
    async query<T>(sql: string, params?: unknown[]) {
      const result = await client.query(sql, params);
      return result.rows as T[];
    },
    withSession,
  };
}

/**
 * A pooled connection held across awaits (a session, a transaction). One lost while held is
 * reported as an 'error' event on its client, which with no listener would end the process: here
 * it marks the connection broken (its next statement fails by itself), and a broken connection is
 * destroyed on release instead of pooled again.
 */
async function holdConnection(pool: pg.Pool): Promise<{ client: pg.PoolClient; breaks(): void; release(): void }> {
  const client = await pool.connect();
  let broken = false;
  const breaks = () => {
    broken = true;
  };
  client.on('error', breaks);
  return {
    client,
    breaks,
    release() {
      client.off('error', breaks);
      client.release(broken);
    },
  };
}

async function openPostgres(connectionString: string, max: number): Promise<Database> {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true });
  // An idle connection that the server closes (restart, pg_terminate_backend) is emitted as an
  // 'error' event, which would crash the process if nobody listened; pg already discards the
  // connection and the next query reports any lasting problem.
  pool.on('error', () => {});

  const withSession: SqlRunner['withSession'] = async (fn) => {
    const held = await holdConnection(pool);
    const session = pgRunner(held.client, (inner) => inner(session));
    try {
      return await fn(session);
    } catch (error) {
      // The connection may still hold session state (an aborted transaction, a lock): destroy
      // it instead of handing it to the next user.
      held.breaks();
      throw error;
    } finally {
      held.release();
    }
  };

  const sql = pgRunner(pool, withSession);
  const { prisma, onQuery, observe } = observedClient(new PrismaPg(pool));
  const hotPool = new pg.Pool({ connectionString, max: HOT_POOL_SIZE, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true });
  hotPool.on('error', () => {});
  return {
    prisma,
    onQuery,
    kind: 'postgres',
    sql,
    async read<T>(statement: Prisma.Sql) {
      observe(statement.text);
      const result = await pool.query(statement.text, statement.values);
      return result.rows as T[];
    },
    // Named, so each connection parses and plans the statement once; pg sends the text only the
    // first time a connection meets the name.
    async prepared<T>(name: string, statement: Prisma.Sql) {
      const result = await hotPool.query({ name, text: statement.text, values: statement.values });
      return result.rows as T[];
    },
    async transaction(work) {
      const held = await holdConnection(hotPool);
      const { client } = held;
      try {
        await client.query('BEGIN');
        const result = await work(async <T>(statement: Prisma.Sql, name?: string) => {
          const answer = await client.query({ name, text: statement.text, values: statement.values });
          return answer.rows as T[];
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        // A connection whose ROLLBACK failed is gone or unusable.
        await client.query('ROLLBACK').catch(() => held.breaks());
        throw error;
      } finally {
        held.release();
      }
    },
    async ping() {
      await sql.query('SELECT 1');
    },
    poolStats: () => ({
      total: pool.totalCount + hotPool.totalCount,
      idle: pool.idleCount + hotPool.idleCount,
      waiting: pool.waitingCount + hotPool.waitingCount,
    }),
    async close() {
      await prisma.$disconnect();
      await Promise.all([pool.end(), hotPool.end()]);
    },
  };
}

async function openPglite(directory: string): Promise<Database> {
  await mkdir(directory, { recursive: true });
  const pglite = new PGlite(directory);
  await pglite.waitReady;

  // PGlite is a single connection: a session is the whole database, so sessions take turns and
  // raw SQL from outside a session waits, instead of landing inside another session's
  // transaction. Prisma's own queries are not part of this queue.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <R>(fn: () => Promise<R>): Promise<R> => {
    const run = turn.then(fn);
    turn = run.catch(() => {});
    return run;
  };

  const direct: SqlRunner = {
    async exec(sql) {
      await pglite.exec(sql);
    },
    async query<T>(sql: string, params?: unknown[]) {
      const result = await pglite.query<T>(sql, params);
      return result.rows;
    },
    withSession: (fn) => fn(direct),
  };
  const sql: SqlRunner = {
    exec: (text) => exclusive(() => direct.exec(text)),
    query: <T>(text: string, params?: unknown[]) => exclusive(() => direct.query<T>(text, params)),
    withSession: (fn) => exclusive(() => fn(direct)),
  };

  const { prisma, onQuery } = observedClient(new PrismaPGlite(pglite));
  return {
    prisma,
    onQuery,
    kind: 'pglite',
    sql,
    // Through Prisma, as prepared below; Prisma reports it to onQuery's listeners itself.
    read: <T>(statement: Prisma.Sql) => prisma.$queryRaw<T[]>(statement),
    // Through Prisma, whose queue keeps a statement out of another caller's open transaction on
    // the one connection; speed is not what PGlite is for.
    prepared: <T>(_name: string, statement: Prisma.Sql) => prisma.$queryRaw<T[]>(statement),
    transaction: (work, options) => prisma.$transaction((tx) => work(<T>(statement: Prisma.Sql) => tx.$queryRaw<T[]>(statement)), options),
    async ping() {
      await sql.query('SELECT 1');
    },
    poolStats: () => null,
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}
