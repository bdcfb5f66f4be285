// Applies the SQL migrations in prisma/migrations the way `prisma migrate deploy` would, because
// the Prisma 7 CLI cannot run where its schema engine cannot be downloaded. The bookkeeping is
// Prisma's own (the `_prisma_migrations` table, its checksums and its advisory lock key), so the
// CLI agrees with this migrator wherever both are used on the same database.
//
// Each migration runs in one transaction together with its bookkeeping row: a crash mid-way
// leaves neither, and the next start retries it. A migration therefore cannot contain statements
// that refuse to run in a transaction (CREATE INDEX CONCURRENTLY and the like).
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlRunner } from './database.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));

// The key `prisma migrate` locks, so that this migrator and the CLI also exclude each other.
const MIGRATION_LOCK_KEY = 72707369;

const CREATE_MIGRATIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"            VARCHAR(64) NOT NULL,
    "finished_at"         TIMESTAMPTZ,
    "migration_name"      VARCHAR(255) NOT NULL,
    "logs"                TEXT,
    "rolled_back_at"      TIMESTAMPTZ,
    "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
  )`;

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
  /** Prisma also accepts the checksum of the file with its line endings converted (git may
   * convert them on checkout), so a Windows checkout does not look modified. */
  acceptedChecksums: Set<string>;
}

interface MigrationRow {
  checksum: string;
  migration_name: string;
  finished_at: Date | string | null;
  rolled_back_at: Date | string | null;
  logs: string | null;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

async function readMigrations(migrationsDir: string): Promise<MigrationFile[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Promise.all(
    names.map(async (name) => {
      const file = join(migrationsDir, name, 'migration.sql');
      const bytes = await readFile(file).catch((error: unknown) => {
        throw new Error(`Migration folder ${name} has no readable migration.sql`, { cause: error });
      });
      const sql = bytes.toString('utf8');
      const checksum = sha256(bytes);
      const acceptedChecksums = new Set([
        checksum,
        sha256(sql.replaceAll('\r\n', '\n')),
        sha256(sql.replaceAll('\n', '\r\n')),
      ]);
      return { name, sql, checksum, acceptedChecksums };
    }),
  );
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `Database error code: ${code}\n\n${error.message}` : error.message;
}

async function migrate(
  session: SqlRunner,
  migrations: MigrationFile[],
  migrationsDir: string,
  log: (msg: string) => void,
): Promise<string[]> {
  await session.exec(CREATE_MIGRATIONS_TABLE);
  const rows = await session.query<MigrationRow>(
    `SELECT checksum, migration_name, finished_at, rolled_back_at, logs
       FROM "_prisma_migrations" ORDER BY started_at`,
  );

  const failed = rows.find((row) => row.finished_at === null && row.rolled_back_at === null);
  if (failed) {
    throw new Error(
      `Migration ${failed.migration_name} failed earlier and is recorded as failed in _prisma_migrations; ` +
        `nothing more is applied until someone repairs the database and marks it rolled back ` +
        `(\`prisma migrate resolve --rolled-back ${failed.migration_name}\`, or set rolled_back_at on its row).` +
        (failed.logs ? `\nIts log:\n${failed.logs}` : ''),
    );
  }

  const files = new Map(migrations.map((migration) => [migration.name, migration]));
  const applied = new Set<string>();
  for (const row of rows) {
    if (row.finished_at === null || row.rolled_back_at !== null) continue;
    applied.add(row.migration_name);
    const file = files.get(row.migration_name);
    if (!file) {
      log(`Migration ${row.migration_name} is recorded in the database but absent from ${migrationsDir}`);
    } else if (!file.acceptedChecksums.has(row.checksum)) {
      throw new Error(
        `Migration ${row.migration_name} was modified after it was applied: the database recorded checksum ` +
          `${row.checksum}, the file now has ${file.checksum}. Restore the file and put the change in a new migration.`,
      );
    }
  }

  const newlyApplied: string[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.name)) continue;
    const id = randomUUID();
    await session.exec('BEGIN');
    try {
      await session.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())`,
        [id, migration.checksum, migration.name],
      );
      await session.exec(migration.sql);
      await session.query(
        `UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`,
        [id],
      );
      await session.exec('COMMIT');
    } catch (error) {
      await session.exec('ROLLBACK');
      await session.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, started_at)
         VALUES ($1, $2, $3, $4, now())`,
        [id, migration.checksum, migration.name, describeError(error)],
      );
      throw new Error(`Migration ${migration.name} failed and was rolled back: ${describeError(error)}`, {
        cause: error,
      });
    }
    log(`Applied migration ${migration.name}`);
    newlyApplied.push(migration.name);
  }
  return newlyApplied;
}

export async function applyMigrations(
  sql: SqlRunner,
  migrationsDir: string,
  log: (msg: string) => void = () => {},
): Promise<{ applied: string[] }> {
  const migrations = await readMigrations(migrationsDir);
  return sql.withSession(async (session) => {
    // Waits for any other process that is migrating the same database; it finds the migrations
    // already applied once it gets the lock.
    await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      return { applied: await migrate(session, migrations, migrationsDir, log) };
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}
