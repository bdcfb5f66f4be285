// Applies pending migrations to the configured database (DATABASE_URL, or PGlite under DATA_DIR)
// and exits; safe to run from several replicas at once.
import { openDatabase } from '../src/adapters/db/database.ts';
import { applyMigrations, MIGRATIONS_DIR } from '../src/adapters/db/migrator.ts';
import { loadConfig } from '../src/config.ts';

try {
  const config = loadConfig();
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const { applied } = await applyMigrations(database.sql, MIGRATIONS_DIR, (msg) => console.log(msg));
    console.log(
      applied.length === 0
        ? `All migrations were already applied (${database.kind}).`
        : `Applied ${applied.length} migration(s) (${database.kind}).`,
    );
  } finally {
    await database.close();
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
