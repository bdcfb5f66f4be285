// Fails when schema.prisma changed without a migration (or a migration without schema.prisma):
// the migrations and DDL generated from the schema must build the same database.
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { schemaDiffSql } from '../../scripts/schema-ddl.ts';
import { type Database, openDatabase } from '../../src/adapters/db/database.ts';
import { applyMigrations, MIGRATIONS_DIR } from '../../src/adapters/db/migrator.ts';
import { createTestDatabase } from '../support/database.ts';
import { dumpSchema } from './schema-dump.ts';

const SCHEMA_PATH = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));

async function withDatabase(url: string, fn: (database: Database) => Promise<unknown>) {
  const database = await openDatabase({ databaseUrl: url, dataDir: '' });
  try {
    await fn(database);
  } finally {
    await database.close();
  }
}

// Generating the DDL runs Prisma 6's CLI, which takes most of this time.
test('the migrations build exactly the schema that schema.prisma describes', { timeout: 120_000 }, async () => {
  const migrated = await createTestDatabase({ fromTemplate: false });
  const generated = await createTestDatabase({ fromTemplate: false });
  try {
    const [ddl] = await Promise.all([
      schemaDiffSql(SCHEMA_PATH),
      withDatabase(migrated.url, (database) => applyMigrations(database.sql, MIGRATIONS_DIR)),
    ]);
    await withDatabase(generated.url, (database) => database.sql.exec(ddl));

    const hint =
      'prisma/migrations differ from prisma/schema.prisma: write the missing migration with ' +
      '`npm run db:diff -- --from <previous schema.prisma>`';
    expect(await dumpSchema(migrated.url), hint).toBe(await dumpSchema(generated.url));
  } finally {
    await Promise.all([migrated.drop(), generated.drop()]);
  }
});
