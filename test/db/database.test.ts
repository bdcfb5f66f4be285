import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { isDatabaseUnavailable, openDatabase } from '../../src/adapters/db/database.ts';
import { Prisma } from '../../src/generated/prisma/client.ts';
import { applyMigrations, MIGRATIONS_DIR } from '../../src/adapters/db/migrator.ts';
import { createTestDatabase } from '../support/database.ts';

// Creating a PGlite data folder runs initdb in WASM: about ten seconds, more on a busy machine.
test('PGlite in the data folder: migrations, Prisma, the same data after reopening', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pglite-test-'));
  const userId = randomUUID();
  try {
    const first = await openDatabase({ dataDir });
    try {
      expect(first.kind).toBe('pglite');
      const { applied } = await applyMigrations(first.sql, MIGRATIONS_DIR);
      expect(applied.length).toBeGreaterThan(0);
      await first.prisma.wallet.create({ data: { userId, balanceMinor: 9_007_199_254_740_993n } });
      await first.ping();
    } finally {
      await first.close();
    }

    const second = await openDatabase({ dataDir });
    try {
      expect(await applyMigrations(second.sql, MIGRATIONS_DIR)).toEqual({ applied: [] });
      const wallet = await second.prisma.wallet.findUnique({ where: { userId } });
      expect(wallet).toMatchObject({ userId, balanceMinor: 9_007_199_254_740_993n, currency: 'USD' });
    } finally {
      await second.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('PostgreSQL: Prisma and raw SQL share the pool; ping; close', async () => {
  const target = await createTestDatabase();
  try {
    const database = await openDatabase({ databaseUrl: target.url, dataDir: '', poolSize: 2 });
    expect(database.kind).toBe('postgres');
    await database.ping();

    const userId = randomUUID();
    await database.prisma.wallet.create({ data: { userId, balanceMinor: 9_007_199_254_740_993n } });
    expect(await database.prisma.wallet.findUnique({ where: { userId } })).toMatchObject({
      userId,
      balanceMinor: 9_007_199_254_740_993n,
    });
    expect(
      await database.sql.query<{ balance: string }>(
        'SELECT balance_minor::text AS balance FROM wallets WHERE user_id = $1',
        [userId],
      ),
    ).toEqual([{ balance: '9007199254740993' }]);

    const backend = (session: typeof database.sql) =>
      session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid').then(([row]) => row?.pid);
    await database.sql.withSession(async (session) => {
      expect(await backend(session)).toBe(await backend(session));
    });

    await database.close();
    await expect(database.ping()).rejects.toThrow();
  } finally {
    await target.drop();
  }
});

test('PostgreSQL: a driver transaction whose connection is lost between statements fails as unavailable, and the next one gets a fresh connection', async () => {
  const target = await createTestDatabase();
  const database = await openDatabase({ databaseUrl: target.url, dataDir: '' });
  try {
    const pidOf = async (sql: Parameters<Parameters<typeof database.transaction>[0]>[0]) =>
      (await sql<{ pid: number }>(Prisma.sql`SELECT pg_backend_pid() AS pid`))[0]?.pid;
    let lost: number | undefined;
    const failed = await database
      .transaction(async (sql) => {
        lost = await pidOf(sql);
        // Ended from outside while the transaction waits between two statements, as a restart or a network cut does.
        await database.sql.query('SELECT pg_terminate_backend($1)', [lost]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        return sql(Prisma.sql`SELECT 1`);
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(isDatabaseUnavailable(failed)).toBe(true);
    const next = await database.transaction((sql) => pidOf(sql));
    expect(next).toBeDefined();
    expect(next).not.toBe(lost);
  } finally {
    await database.close();
    await target.drop();
  }
});
