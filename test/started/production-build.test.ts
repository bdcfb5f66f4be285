// The compiled service as production runs it: `npm run build`, then the Docker image's command
// (`node --max-semi-space-size=64 dist/src/main.js`) under NODE_ENV=production with production's
// settings (PostgreSQL, Redis, S3, secrets, PUBLIC_BASE_URL). It must migrate a fresh database and
// serve health, GraphQL and the files it reads at run time from beside its modules.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { benchToken, s3Environment, type ServiceProcess, startService } from '../../bench/lib/service.ts';
import { projectRoot } from '../support/command.ts';
import { createTestDatabase } from '../support/database.ts';
import { commandLineOf } from '../support/process.ts';

// Measured at 14 to 25 s on a busy 2-core machine: the build emits without checking types.
const BUILD_WITHIN_MS = 180_000;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let service: ServiceProcess | undefined;

beforeAll(async () => {
  await promisify(execFile)('npm', ['run', 'build'], { cwd: projectRoot, timeout: BUILD_WITHIN_MS });
  // Empty, not cloned from the migrated template: the compiled migrator applies every migration.
  database = await createTestDatabase({ fromTemplate: false });
  service = await startService({
    runtime: 'compiled',
    databaseUrl: database.url,
    redisUrl: inject('redisUrl'),
    env: { ...s3Environment(inject('s3')), REDIS_PREFIX: `test:${randomUUID()}:`, LOG_LEVEL: 'info' },
  });
}, BUILD_WITHIN_MS + 90_000);

afterAll(async () => {
  await service?.stop();
  await database?.drop();
});

/** The log lines; output() also holds stderr, where Node's own warnings go. */
const logged = () =>
  service!
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string; applied?: string[] });

describe('the compiled service under NODE_ENV=production', () => {
  it("is node running dist/src/main.js with the Docker image's flags, no tsx, logging JSON lines without development defaults", () => {
    const command = commandLineOf(service!.pid);
    expect(command).toContain('dist/src/main.js');
    expect(command).toContain('--max-semi-space-size=64');
    expect(command).not.toContain('tsx');
    expect(logged().map((entry) => entry.msg)).not.toContainEqual(expect.stringContaining('DEVELOPMENT DEFAULTS'));
  });

  it('migrated the fresh database from the migrations copied into the build', () => {
    const migrations = readdirSync(join(projectRoot, 'prisma/migrations'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(logged().find((entry) => entry.msg === 'Applied database migrations')?.applied).toEqual(migrations);
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${service!.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${service!.url}/readyz`);
    expect(ready.status, await ready.clone().text()).toBe(200);
  });

  it('answers a GraphQL query', async () => {
    const response = await fetch(`${service!.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await benchToken(randomUUID())}` },
      body: JSON.stringify({ query: '{ renderJobs(first: 5) { edges { node { id } } } }' }),
    });
    expect(await response.json()).toEqual({ data: { renderJobs: { edges: [] } } });
  });

  it('serves the REST contract from the build, its docs, the playground and the console', async () => {
    const contract = await fetch(`${service!.url}/v1/openapi.yaml`);
    expect(contract.status).toBe(200);
    expect(await contract.text()).toBe(readFileSync(join(projectRoot, 'rest-compat/openapi.yaml'), 'utf8'));
    for (const path of ['/v1/docs', '/playground']) expect((await fetch(`${service!.url}${path}`)).status, path).toBe(200);
    // The console built into dist/ beside the compiled service, its page and every file it names.
    const page = await fetch(`${service!.url}/console`);
    expect(page.status).toBe(200);
    const files = [...(await page.text()).matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((match) => match[1]);
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const file of files) expect((await fetch(`${service!.url}${file}`)).status, file).toBe(200);
  });
});
