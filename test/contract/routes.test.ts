// The project's copy of the contract and the routes served under /v1 match both ways: a route for
// every operation, with the contract's parameter names, and an operation for every route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listOperations, loadContract, type OpenApiDocument } from '../../rest-compat/contract.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
});
afterAll(() => t.close());

// The folder store's download route exists only without S3; test/config/embedded-defaults.test.ts covers it.
const ONLY_EMBEDDED = new Set(['GET /objects/{key}']);
// The contract itself and the page that renders it are served under /v1 beside the operations.
const CONTRACT_DOCUMENTS = new Set(['GET /docs', 'GET /docs/assets/{hash}/{name}', 'GET /openapi.yaml', 'GET /openapi.json']);

/**
 * Every method and full path the server routes, read from Fastify's route tree (printRoutes
 * writes each node's path relative to its parent, indented four characters per level).
 */
function servedRoutes(): { method: string; path: string }[] {
  const tree = t.app.http.app.printRoutes({ commonPrefix: false });
  const parents: string[] = [];
  const routes: { method: string; path: string }[] = [];
  for (const line of tree.split('\n')) {
    const node = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (!node) continue;
    const depth = (node[1] ?? '').length / 4;
    const path = `${depth > 0 ? parents[depth - 1] : ''}${node[2]}`;
    parents[depth] = path;
    const methods = (node[3] ?? '').split(', ').filter(Boolean);
    // Fastify answers HEAD for every GET route on its own.
    for (const method of methods.filter((m) => m !== 'HEAD' || !methods.includes('GET'))) routes.push({ method, path });
  }
  return routes;
}

describe('the REST contract', () => {
  it('has a route for every operation', () => {
    const operations = listOperations(loadContract()).filter((o) => !ONLY_EMBEDDED.has(`${o.method} ${o.path}`));
    expect(operations.length).toBeGreaterThanOrEqual(32);
    const missing = operations.filter(
      (operation) =>
        !t.app.http.app.hasRoute({
          method: operation.method as 'GET',
          url: `/v1${operation.path.replace(/\{([a-z_]+)\}/g, ':$1')}`,
        }),
    );
    expect(missing.map((operation) => `${operation.method} ${operation.path}`)).toEqual([]);
    // The check tells a served route from one that is not.
    expect(t.app.http.app.hasRoute({ method: 'DELETE', url: '/v1/renders/:job_id' })).toBe(false);
  });

  it('has an operation for every route served under /v1', () => {
    const documented = new Set(listOperations(loadContract()).map((o) => `${o.method} ${o.path}`));
    const served = servedRoutes()
      .filter((route) => route.path.startsWith('/v1/'))
      .map((route) => `${route.method} ${route.path.slice('/v1'.length).replace(/:([a-z_]+)/g, '{$1}')}`);
    // The tree was read: every operation but the embedded store's download is among the routes.
    expect(served.length).toBeGreaterThanOrEqual(documented.size - ONLY_EMBEDDED.size + CONTRACT_DOCUMENTS.size);
    expect(served).toContain('POST /internal/render/jobs/{job_id}/chunks/{frame_job_id}/complete');
    expect(served.filter((key) => !documented.has(key) && !CONTRACT_DOCUMENTS.has(key))).toEqual([]);
  });
});

describe('the contract the docs page loads', () => {
  const loaded = async (headers: Record<string, string>) => {
    const answer = await t.app.http.app.inject({ method: 'GET', url: '/v1/openapi.json', headers });
    expect(answer.statusCode).toBe(200);
    return answer.json<OpenApiDocument>();
  };

  it('is the one the page asks for', async () => {
    const page = await (await fetch(`${t.url}/v1/docs`)).text();
    const script = /src="(\/v1\/docs\/assets\/[^"]+\/docs\.js)"/.exec(page)?.[1];
    expect(await (await fetch(`${t.url}${script}`)).text()).toContain("'/v1/openapi.json'");
  });

  it('lists the address it was asked at first in servers, so that "Try it out" calls this instance', async () => {
    const served = (await (await fetch(`${t.url}/v1/openapi.json`)).json()) as OpenApiDocument;
    expect(served.servers?.[0]?.url).toBe(`${t.url}/v1`);
    expect(served.servers?.map((server) => server.url)).toEqual([`${t.url}/v1`, 'http://render-svc.internal/v1']);
    // Otherwise it is the contract itself.
    expect({ ...served, servers: undefined }).toEqual({ ...loadContract(), servers: undefined });

    const named = await loaded({ host: 'render.example.test:8443' });
    expect(named.servers?.map((server) => server.url)).toEqual([
      'http://render.example.test:8443/v1',
      `${t.app.services.config.publicBaseUrl}/v1`,
      'http://render-svc.internal/v1',
    ]);
    const behindAProxy = await loaded({ host: '10.0.0.5:4000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'render.example.test' });
    expect(behindAProxy.servers?.[0]?.url).toBe('https://render.example.test/v1');
  });

  it('does not repeat a Host header that is not a host; PUBLIC_BASE_URL comes first then', async () => {
    const served = await loaded({ host: 'evil.test/"><script>' });
    expect(served.servers?.map((server) => server.url)).toEqual([`${t.app.services.config.publicBaseUrl}/v1`, 'http://render-svc.internal/v1']);
  });
});
