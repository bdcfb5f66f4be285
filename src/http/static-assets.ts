// Files served to browsers by the admin pages (playground, REST docs). They come from installed
// npm packages, never from a CDN, so the pages work where the service has no internet.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const require = createRequire(import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.yaml': 'application/yaml',
};

/**
 * The Content-Security-Policy of the admin pages (playground, REST docs, console): scripts and
 * connections only to this origin, since these are the pages where admins paste their tokens.
 * Inline styles stay allowed for the components that position things with them.
 */
export const ADMIN_PAGE_POLICY = [
  "default-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface Asset {
  contentType: string;
  body: Buffer;
  hash: string;
  etag: string;
  /** Made on the first request that accepts it: the bundles are megabytes of unminified text. */
  gzipped?: Buffer;
}

export function assetOf(name: string, body: Buffer | string): Asset {
  const contentType = CONTENT_TYPES[extname(name)];
  if (!contentType) throw new Error(`No content type for ${name}`);
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  // Weak: the gzipped and the plain bodies share it.
  return { contentType, body: bytes, hash, etag: `W/"${hash}"` };
}

// Per process, not per app: tests start many apps, and the files do not change while it runs.
const fromPackages = new Map<string, Promise<Asset>>();

/** A file of an installed package, found the way Node finds the package. */
export function packageAsset(packageName: string, file: string): Promise<Asset> {
  const path = join(dirname(require.resolve(`${packageName}/package.json`)), file);
  let asset = fromPackages.get(path);
  if (!asset) {
    asset = readFile(path).then((body) => assetOf(file, body));
    fromPackages.set(path, asset);
  }
  return asset;
}

export function sendAsset(request: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string) {
  reply
    .header('content-type', asset.contentType)
    .header('cache-control', cacheControl)
    .header('etag', asset.etag)
    .header('vary', 'accept-encoding')
    .header('x-content-type-options', 'nosniff');
  if (request.headers['if-none-match'] === asset.etag) return reply.status(304).send();
  if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
    asset.gzipped ??= gzipSync(asset.body);
    return reply.header('content-encoding', 'gzip').send(asset.gzipped);
  }
  return reply.send(asset.body);
}

/**
 * Serves each asset at `<prefix>/<content hash>/<name>` and answers its URL by name. The URL
 * changes with the content, so browsers may keep an asset for a year and still never run a
 * stale one after an upgrade.
 */
export async function serveAssets<Name extends string>(
  app: FastifyInstance,
  prefix: string,
  assets: Record<Name, Asset | Promise<Asset>>,
): Promise<Record<Name, string>> {
  const byPath = new Map<string, Asset>();
  const urls = {} as Record<Name, string>;
  for (const name of Object.keys(assets) as Name[]) {
    const asset = await assets[name];
    byPath.set(`${asset.hash}/${name}`, asset);
    urls[name] = `${prefix}/${asset.hash}/${name}`;
  }
  app.get(`${prefix}/:hash/:name`, (request, reply) => {
    const { hash, name } = request.params as { hash: string; name: string };
    const asset = byPath.get(`${hash}/${name}`);
    if (!asset) return reply.callNotFound();
    return sendAsset(request, reply, asset, 'public, max-age=31536000, immutable');
  });
  return urls;
}
