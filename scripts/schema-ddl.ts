// Prints the PostgreSQL DDL that takes one Prisma datamodel to another, without a database or
// the network: Prisma 6's JavaScript schema engine diffs datamodels in-process (Prisma 7's CLI
// needs a downloaded engine). Used to write new migrations and by the drift test.
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseCommandLine, usageError } from './lib/command-line.ts';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// Prisma 6 wants the url in the datasource and knows neither this project's generators nor
// their options; the tables do not depend on them.
function asPrisma6Datamodel(schema: string): string {
  return schema
    .replace(/^generator \w+ \{[^}]*\}\s*/gm, '')
    .replace(/provider = "postgresql"/, 'provider = "postgresql"\n  url      = env("DATABASE_URL")');
}

export async function schemaDiffSql(toSchemaPath: string, fromSchemaPath?: string): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'schema-ddl-'));
  try {
    const pglite = pathToFileURL(require.resolve('@electric-sql/pglite')).href;
    const adapter = pathToFileURL(require.resolve('pglite-prisma-adapter-06')).href;
    await writeFile(
      join(work, 'prisma.config.mjs'),
      `import { PGlite } from '${pglite}';\nimport { PrismaPGlite } from '${adapter}';\n` +
        `export default { experimental: { adapter: true }, engine: 'js', adapter: async () => new PrismaPGlite(new PGlite()) };\n`,
    );
    await writeFile(join(work, 'to.prisma'), asPrisma6Datamodel(await readFile(toSchemaPath, 'utf8')));
    const from = fromSchemaPath ? ['--from-schema-datamodel', 'from.prisma'] : ['--from-empty'];
    if (fromSchemaPath) {
      await writeFile(join(work, 'from.prisma'), asPrisma6Datamodel(await readFile(fromSchemaPath, 'utf8')));
    }
    const node = process.execPath;
    const cli = join(dirname(require.resolve('prisma6/package.json')), 'build', 'index.js');
    const { stdout } = await promisify(execFile)(
      node,
      [cli, 'migrate', 'diff', '--config', 'prisma.config.mjs', ...from, '--to-schema-datamodel', 'to.prisma', '--script'],
      {
        cwd: work,
        maxBuffer: 64 * 1024 * 1024,
        env: {
          ...process.env,
          DATABASE_URL: 'postgresql://unused@localhost/unused',
          // Any existing file stops the CLI from downloading engines it will not run.
          PRISMA_QUERY_ENGINE_LIBRARY: node,
          PRISMA_SCHEMA_ENGINE_BINARY: node,
          PRISMA_HIDE_UPDATE_MESSAGE: '1',
        },
      },
    );
    return stdout;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const USAGE = `Usage: npm run db:diff [-- --from <schema.prisma>]

Prints the PostgreSQL DDL that takes the database of one Prisma schema to prisma/schema.prisma,
offline. Without --from, from an empty database.

To write a migration after editing prisma/schema.prisma:
  git show HEAD:prisma/schema.prisma > previous.prisma
  npm run -s db:diff -- --from previous.prisma > prisma/migrations/<timestamp>_<name>/migration.sql
`;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = parseCommandLine(USAGE, { from: { type: 'string' } });
  const from = args.from === undefined ? undefined : resolve(args.from);
  if (from !== undefined) {
    await access(from).catch(() => usageError(USAGE, `--from: no such file "${args.from}"`));
  }
  process.stdout.write(await schemaDiffSql(join(projectRoot, 'prisma', 'schema.prisma'), from));
}
