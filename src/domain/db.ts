import { Prisma } from '../generated/prisma/client.ts';

/** A transaction's client: services write several rows that must land together or not at all. */
export type Tx = Prisma.TransactionClient;

/**
 * Runs one statement on its own (its own transaction) through the database driver, named so that
 * every connection prepares it once. The agents' hottest single statements (heartbeat batches,
 * command acknowledgements) go through here: Prisma's client costs more CPU per call than the
 * statement costs PostgreSQL. The statement's text must not change between calls of one name;
 * only its values may. Rows come back as the driver reads them: uuids and enums as text,
 * timestamps as Dates, json parsed.
 */
export type Prepared = <T>(name: string, statement: Prisma.Sql) => Promise<T[]>;

/**
 * Runs a read on its own through the database driver, on the pool Prisma's queries share. The
 * hottest listings read their widest levels this way (a page of jobs' chunks): Prisma's client
 * costs several times what the driver does per row. Rows come back as Prepared's do.
 */
export type Read = <T>(statement: Prisma.Sql) => Promise<T[]>;

/** Runs a statement in the transaction it was handed with; a name prepares it once per connection (see Prepared). */
export type Sql = <T>(statement: Prisma.Sql, name?: string) => Promise<T[]>;

/** Statements of a Prisma transaction, run the way Sql runs them. */
export function sqlOf(db: Tx | Sql): Sql {
  return typeof db === 'function' ? db : <T>(statement: Prisma.Sql) => db.$queryRaw<T[]>(statement);
}

export interface SqlTransactionOptions {
  /** How long to wait for a connection, and how long the transaction may run (embedded database only). */
  maxWait?: number;
  timeout?: number;
}

/** Runs work in one transaction through the database driver, for the hot batches that need no Prisma model. */
export type SqlTransaction = <R>(work: (sql: Sql) => Promise<R>, options?: SqlTransactionOptions) => Promise<R>;

/** The database as the hot agent paths reach it, beside Prisma. */
export interface SqlDriver {
  prepared: Prepared;
  transaction: SqlTransaction;
}

export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';
}

/**
 * A deadlock or serialization failure: PostgreSQL rolled the transaction back and running it
 * again is safe. Batched writes lock many rows at once and retry on this.
 */
/** A deadlock or a serialization failure, as PostgreSQL names them (SQLSTATE). */
const CONFLICT_SQLSTATES = new Set(['40P01', '40001']);

export function isRetryableConflict(error: unknown): boolean {
  // A statement run through the driver (Prepared) fails with PostgreSQL's own error.
  if (!(error instanceof Prisma.PrismaClientKnownRequestError)) {
    return error instanceof Error && CONFLICT_SQLSTATES.has(String((error as { code?: unknown }).code));
  }
  if (error.code === 'P2034') return true;
  const cause = (error.meta as { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } | undefined)
    ?.driverAdapterError?.cause;
  return cause?.kind === 'TransactionWriteConflict' || CONFLICT_SQLSTATES.has(cause?.originalCode ?? '');
}

/** Runs write again (a few times) when PostgreSQL refused it for a deadlock or serialization failure. */
export async function retryOnConflict<T>(write: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (attempt >= attempts || !isRetryableConflict(error)) throw error;
    }
  }
}
