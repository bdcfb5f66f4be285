// How the service serves the console's build: the page without caching and under the admin pages'
// policy, its hashed files for a year, and a page that says how to build it when the install
// skipped the build.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerConsoleRoutes } from '../../src/http/console.ts';

let app: FastifyInstance | undefined;
let dir: string | undefined;

afterEach(async () => {
  await app?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  app = dir = undefined;
});

async function serve(files: Record<string, string>): Promise<FastifyInstance> {
  dir = await mkdtemp(join(tmpdir(), 'console-build-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  app = Fastify();
  await registerConsoleRoutes(app, dir);
  return app;
}

describe('the console route', () => {
  it('serves the built page and its hashed files', async () => {
    const server = await serve({
      'index.html': '<script type="module" src="/console/assets/index-abc.js"></script>',
      'assets/index-abc.js': 'console.log(1)',
    });
    const page = await server.inject('/console');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toContain('/console/assets/index-abc.js');

    const script = await server.inject('/console/assets/index-abc.js');
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(script.body).toBe('console.log(1)');

    expect((await server.inject('/console/assets/other.js')).statusCode).toBe(404);
    expect((await server.inject('/console/assets/..%2Findex.html')).statusCode).toBe(404);
    const slash = await server.inject('/console/');
    expect([slash.statusCode, slash.headers.location]).toEqual([302, '/console']);
  });

  it('says how to build it when the install skipped the build', async () => {
    const server = await serve({});
    const page = await server.inject('/console');
    expect(page.statusCode).toBe(503);
    expect(page.body).toContain('npm run build:console');
    expect((await server.inject('/console/assets/index.js')).statusCode).toBe(404);
  });
});
