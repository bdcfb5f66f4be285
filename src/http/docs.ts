// The REST contract as a file (/v1/openapi.yaml) and as a page (/v1/docs) rendered by Swagger UI,
// served from this service like the playground. Swagger UI rather than Scalar: its bundle is a
// plain script that, once its validator badge is off, asks no other host for anything, while
// Scalar's fetches its default fonts from Scalar's CDN.
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { assetOf, packageAsset, sendAsset, serveAssets } from './static-assets.ts';

const CONTRACT = new URL('../../rest-compat/openapi.yaml', import.meta.url);

// Runs in the browser, over the global of swagger-ui-bundle.js.
const DOCS_SCRIPT = `"use strict";
SwaggerUIBundle({
  url: new URL('/v1/openapi.yaml', location.href).href,
  dom_id: '#docs',
  deepLinking: true,
  // The default sends the contract to a public validator for a badge.
  validatorUrl: null,
  // The contract names the production host; "Try it out" on this page calls the instance serving it.
  requestInterceptor: (request) => {
    const url = new URL(request.url, location.href);
    if (url.origin !== location.origin && url.pathname.startsWith('/v1/')) {
      request.url = location.origin + url.pathname + url.search;
    }
    return request;
  },
});
`;

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function registerDocsRoutes(app: FastifyInstance): Promise<void> {
  const contract = assetOf('openapi.yaml', await readFile(CONTRACT));
  const urls = await serveAssets(app, '/v1/docs/assets', {
    'swagger-ui.js': packageAsset('swagger-ui-dist', 'swagger-ui-bundle.js'),
    'swagger-ui.css': packageAsset('swagger-ui-dist', 'swagger-ui.css'),
    'docs.js': assetOf('docs.js', DOCS_SCRIPT),
  });
  const page = assetOf(
    'docs.html',
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Render orchestrator REST API (v1)</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${urls['swagger-ui.css']}">
</head>
<body>
<div id="docs">Loading the API docs…</div>
<script src="${urls['swagger-ui.js']}"></script>
<script src="${urls['docs.js']}"></script>
</body>
</html>
`,
  );
  app.get('/v1/openapi.yaml', (request, reply) => sendAsset(request, reply, contract, 'no-cache'));
  app.get('/v1/docs', (request, reply) =>
    sendAsset(request, reply.header('content-security-policy', CONTENT_SECURITY_POLICY), page, 'no-cache'),
  );
}
