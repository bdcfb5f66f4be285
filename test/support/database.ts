// Real PostgreSQL for integration tests. The global setup migrates one template database; each
// test file clones it (CREATE DATABASE ... TEMPLATE copies files, far faster than migrating), so
// files run in parallel without sharing rows.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase } from '../../src/adapters/db/database.ts';
import { applyMigrations, MIGRATIONS_DIR } from '../../src/adapters/db/migrator.ts';

function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

async function admin(adminUrl: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

// FORCE terminates the connections still open on it (a test that forgot to close, a killed
// child process) instead of failing.
const dropStatement = (name: string) => `DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`;

/** Migrates a template database on the server of `adminUrl`, a superuser's URL. */
export async function prepareTemplateDatabase(adminUrl: string): Promise<{
  templateName: string;
  dropTemplate(): Promise<void>;
}> {
  const templateName = uniqueName('orch_tpl');
  await admin(adminUrl, [`CREATE DATABASE ${quote(templateName)}`]);
  const dropTemplate = () =>
    admin(adminUrl, [`ALTER DATABASE ${quote(templateName)} WITH IS_TEMPLATE false`, dropStatement(templateName)]);
  try {
    const database = await openDatabase({ databaseUrl: databaseUrl(adminUrl, templateName), dataDir: '', poolSize: 1 });
    try {
      await applyMigrations(database.sql, MIGRATIONS_DIR);
    } finally {
      // Cloning refuses while anyone is connected to the template.
      await database.close();
    }
    await admin(adminUrl, [`ALTER DATABASE ${quote(templateName)} WITH IS_TEMPLATE true`]);
  } catch (error) {
    await dropTemplate();
    throw error;
  }
  return { templateName, dropTemplate };
}

export async function createTestDatabase(
  options: { fromTemplate?: boolean } = {},
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = uniqueName('orch_test');
  const template = options.fromTemplate === false ? 'template0' : inject('templateDatabase');
  await admin(adminUrl, [`CREATE DATABASE ${quote(name)} TEMPLATE ${quote(template)}`]);
  return {
    url: databaseUrl(adminUrl, name),
    name,
    drop: () => admin(adminUrl, [dropStatement(name)]),
  };
}
