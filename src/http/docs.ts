// The REST contract as a file (/v1/openapi.yaml), as the document of the instance serving it
// (/v1/openapi.json) and as a page (/v1/docs) rendered by Swagger UI, served from this service
// like the playground. Swagger UI rather than Scalar: its bundle is a plain script that, once its
// validator badge is off, asks no other host for anything, while Scalar's fetches its default
// fonts from Scalar's CDN.
import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CONTRACT_FILE, type OpenApiDocument, type OpenApiServer, parseContract } from '../../rest-compat/contract.ts';
import { ADMIN_PAGE_POLICY, assetOf, packageAsset, sendAsset, serveAssets } from './static-assets.ts';

// Runs in the browser, over the global of swagger-ui-bundle.js.
const DOCS_SCRIPT = `"use strict";
SwaggerUIBundle({
  url: new URL('/v1/openapi.json', location.href).href,
  dom_id: '#docs',
  deepLinking: true,
  // The default sends the contract to a public validator for a badge.
  validatorUrl: null,
});
`;

const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The servers of the contract as this instance serves it: the address the caller reached it at
 * first (so that "Try it out" calls this instance), then its PUBLIC_BASE_URL, then the
 * contract's own. Behind a proxy that address is in X-Forwarded-Proto and X-Forwarded-Host;
 * trusting them decides nothing but where the docs page sends its tries. A host header that is
 * not a host is not repeated back.
 */
function serversFor(request: FastifyRequest, publicBaseUrl: string, contract: OpenApiDocument): OpenApiServer[] {
  const forwarded = (name: string) => {
    const value = request.headers[name];
    return typeof value === 'string' ? value.split(',')[0]?.trim() : undefined;
  };
  const proto = forwarded('x-forwarded-proto');
  const protocol = proto === 'http' || proto === 'https' ? proto : request.protocol;
  const host = forwarded('x-forwarded-host') ?? request.headers.host;
  const own: OpenApiServer[] = [
    ...(host && HOST.test(host) ? [{ url: `${protocol}://${host}/v1`, description: 'This instance, at the address this document was asked from' }] : []),
    { url: `${publicBaseUrl}/v1`, description: 'This instance, at its public address (PUBLIC_BASE_URL)' },
  ];
  const servers = [...own, ...(contract.servers ?? [])];
  return servers.filter((server, index) => servers.findIndex((other) => other.url === server.url) === index);
}

export async function registerDocsRoutes(app: FastifyInstance, options: { publicBaseUrl: string }): Promise<void> {
  const text = await readFile(CONTRACT_FILE);
  const contract = assetOf('openapi.yaml', text);
  const document = parseContract(text.toString('utf8'), CONTRACT_FILE);
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
  app.get('/v1/openapi.json', (request, reply) =>
    reply
      .header('cache-control', 'no-cache')
      .header('vary', 'host')
      .send({ ...document, servers: serversFor(request, options.publicBaseUrl, document) }),
  );
  app.get('/v1/docs', (request, reply) =>
    sendAsset(request, reply.header('content-security-policy', ADMIN_PAGE_POLICY), page, 'no-cache'),
  );
}
