// Schema dumps that compare equal when two databases have the same schema however it was built.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

// Lines that vary between dumps (comments name the server version, \restrict carries a random
// key) or only set up the restoring session.
const NOISE = /^(--|SET |SELECT pg_catalog\.set_config|\\restrict |\\unrestrict )/;

// A migration that adds a column appends it, while DDL written from scratch puts it where the
// model declares it; column order carries no meaning for Prisma, so it is ignored.
function sortColumns(statement: string): string {
  if (!statement.startsWith('CREATE TABLE ')) return statement;
  const lines = statement.split('\n');
  const columns = lines.slice(1, -1).map((line) => line.replace(/,$/, ''));
  return [lines[0], ...columns.sort(), lines.at(-1)].join('\n');
}

/** `pg_dump --schema-only` of a database without the migration bookkeeping, normalised. */
export async function dumpSchema(databaseUrl: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    'pg_dump',
    [
      '--schema-only',
      '--no-owner',
      '--no-privileges',
      '--exclude-table=public._prisma_migrations',
      `--dbname=${databaseUrl}`,
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const meaningful = stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !NOISE.test(line))
    .join('\n');
  return meaningful
    .split(/;\n/)
    .map((statement) => sortColumns(statement.trim()))
    .join(';\n');
}
