// The operator console at /console: a React app built by Vite into console/dist (on install, by
// `npm test` and by `npm run build`), served from memory. It talks to the service only through
// /graphql and its subscriptions, with the admin token pasted into it, so it can show nothing the
// API would refuse that token.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ADMIN_PAGE_POLICY, type Asset, assetOf, sendAsset } from './static-assets.ts';

// Beside this module's folder in the repository and in the compiled dist/ alike.
const BUILD_DIR = fileURLToPath(new URL('../../console/dist/', import.meta.url));

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Console not built</title></head>
<body><h1>The console is not built</h1>
<p>This install skipped its build (npm ci --ignore-scripts, or a production install without the
development dependencies). Build it with <code>npm run build:console</code> and restart the service.</p>
</body></html>
`;

type Build = { page: Asset; assets: Map<string, Asset> } | undefined;

// Per process, not per app, as the playground's files are: tests start many apps, and a build
// does not change while the process runs (a new one is served after a restart).
const builds = new Map<string, Promise<Build>>();

async function loadBuild(dir: string): Promise<Build> {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const assets = new Map<string, Asset>();
  const assetDir = join(dir, 'assets');
  for (const name of existsSync(assetDir) ? await readdir(assetDir) : []) {
    assets.set(name, assetOf(name, await readFile(join(assetDir, name))));
  }
  return { page: assetOf('index.html', await readFile(join(dir, 'index.html'))), assets };
}

export async function registerConsoleRoutes(app: FastifyInstance, buildDir = BUILD_DIR): Promise<void> {
  let loading = builds.get(buildDir);
  if (!loading) {
    loading = loadBuild(buildDir);
    builds.set(buildDir, loading);
  }
  const build = await loading;
  // The console routes by the URL's fragment, so every view is this one page.
  app.get('/console', (request, reply) => {
    reply.header('content-security-policy', ADMIN_PAGE_POLICY);
    if (!build) return reply.status(503).header('content-type', 'text/html; charset=utf-8').send(NOT_BUILT);
    return sendAsset(request, reply, build.page, 'no-cache');
  });
  app.get('/console/', (_request, reply) => reply.redirect('/console'));
  app.get('/console/assets/:name', (request, reply) => {
    const asset = build?.assets.get((request.params as { name: string }).name);
    if (!asset) return reply.callNotFound();
    // Vite names each file by its content, so a new build never meets a stale copy.
    return sendAsset(request, reply, asset, 'public, max-age=31536000, immutable');
  });
}
