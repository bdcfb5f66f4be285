import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { type Database, openDatabase } from '../../src/adapters/db/database.ts';
import { applyMigrations, MIGRATIONS_DIR } from '../../src/adapters/db/migrator.ts';
import { createTestDatabase } from '../support/database.ts';
import { dumpSchema } from './schema-dump.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface MigrationRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
  applied_steps_count: number;
}

async function migrationNames(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

let target: Awaited<ReturnType<typeof createTestDatabase>>;
let database: Database;
let scratch: string;

beforeEach(async () => {
  target = await createTestDatabase({ fromTemplate: false });
  database = await openDatabase({ databaseUrl: target.url, dataDir: '' });
  scratch = await mkdtemp(join(tmpdir(), 'migrator-test-'));
});

afterEach(async () => {
  await database.close();
  await target.drop();
  await rm(scratch, { recursive: true, force: true });
});

const rows = () =>
  database.sql.query<MigrationRow>('SELECT * FROM "_prisma_migrations" ORDER BY started_at, migration_name');

/** A migrations folder the test may change: the real migrations plus `extra` new ones. */
async function migrationsCopy(extra: Record<string, string> = {}): Promise<string> {
  const dir = join(scratch, 'migrations');
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

test('applies every migration once, records it as Prisma does, and applies nothing the second time', async () => {
  const names = await migrationNames(MIGRATIONS_DIR);
  const first = await applyMigrations(database.sql, MIGRATIONS_DIR);
  expect(first.applied).toEqual(names);
  const schemaAfterFirst = await dumpSchema(target.url);

  const second = await applyMigrations(database.sql, MIGRATIONS_DIR);
  expect(second.applied).toEqual([]);
  expect(await dumpSchema(target.url)).toBe(schemaAfterFirst);

  const recorded = await rows();
  expect(recorded.map((row) => row.migration_name)).toEqual(names);
  for (const row of recorded) {
    const file = await readFile(join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
    expect(row.checksum).toBe(createHash('sha256').update(file).digest('hex'));
    expect(row.id).toHaveLength(36);
    expect(row.finished_at).toBeInstanceOf(Date);
    expect(row.rolled_back_at).toBeNull();
    expect(row.applied_steps_count).toBe(1);
  }
});

describe('refuses to continue', () => {
  test('when an applied migration was modified', async () => {
    const dir = await migrationsCopy();
    const [name] = await migrationNames(dir);
    await applyMigrations(database.sql, dir);
    await writeFile(join(dir, name!, 'migration.sql'), '\n-- an afterthought\n', { flag: 'a' });

    await expect(applyMigrations(database.sql, dir)).rejects.toThrow(
      `Migration ${name} was modified after it was applied`,
    );
  });

  test('but accepts the same migration checked out with Windows line endings, as Prisma does', async () => {
    const dir = await migrationsCopy();
    const [name] = await migrationNames(dir);
    await applyMigrations(database.sql, dir);
    const file = join(dir, name!, 'migration.sql');
    await writeFile(file, (await readFile(file, 'utf8')).replaceAll('\n', '\r\n'));

    await expect(applyMigrations(database.sql, dir)).resolves.toEqual({ applied: [] });
  });

  test('after a failed migration, until it is marked rolled back', async () => {
    const broken = '29991231000000_broken';
    const dir = await migrationsCopy({
      [broken]: 'CREATE TABLE "half_done" ("id" INTEGER);\nSELECT * FROM "no_such_table";\n',
    });

    await expect(applyMigrations(database.sql, dir)).rejects.toThrow(`Migration ${broken} failed and was rolled back`);
    const failed = (await rows()).find((row) => row.migration_name === broken);
    expect(failed).toMatchObject({ finished_at: null, rolled_back_at: null, applied_steps_count: 0 });
    expect(failed?.logs).toContain('no_such_table');
    expect(await database.sql.query(`SELECT to_regclass('half_done') AS t`)).toEqual([{ t: null }]);

    await expect(applyMigrations(database.sql, dir)).rejects.toThrow(`Migration ${broken} failed earlier`);

    await writeFile(join(dir, broken, 'migration.sql'), 'CREATE TABLE "half_done" ("id" INTEGER);\n');
    await database.sql.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, [
      broken,
    ]);
    await expect(applyMigrations(database.sql, dir)).resolves.toEqual({ applied: [broken] });
  });
});

// Each child boots Node with tsx before it reaches the database.
test('two processes starting at once both succeed, each migration applied once', { timeout: 60_000 }, async () => {
  const run = () =>
    new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
        cwd: REPO_ROOT,
        env: { ...process.env, NODE_ENV: 'test', DATABASE_URL: target.url },
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, output }));
    });

  const results = await Promise.all([run(), run()]);
  for (const result of results) expect(result.code, result.output).toBe(0);
  // The one that waited for the lock found nothing left to do.
  const outputs = results.map((result) => result.output);
  expect(outputs.filter((output) => output.includes('Applied migration'))).toHaveLength(1);
  expect(outputs.filter((output) => output.includes('All migrations were already applied'))).toHaveLength(1);

  const counts = await database.sql.query<{ migration_name: string; n: number }>(
    `SELECT migration_name, count(*)::int AS n FROM "_prisma_migrations"
      GROUP BY migration_name ORDER BY migration_name`,
  );
  expect(counts).toEqual((await migrationNames(MIGRATIONS_DIR)).map((name) => ({ migration_name: name, n: 1 })));
});
