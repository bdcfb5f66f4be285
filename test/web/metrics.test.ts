// /metrics: every series exists from the start, and each one moves when its kind of work happens.
// Also the REST contract and the admin pages' files, with their content types and cache headers.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parse as parseYaml } from 'yaml';
import { JobStep, NodeStatus } from '../../src/generated/prisma/enums.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { FREE_RENDER, submitRender } from '../support/jobs.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

interface Scrape {
  types: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

function parseExposition(text: string): Scrape {
  const scrape: Scrape = { types: new Map(), samples: [] };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) scrape.types.set(type[1]!, type[2]!);
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) continue;
    const labels = Object.fromEntries(
      [...(sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((label) => [label[1]!, label[2]!]),
    );
    scrape.samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return scrape;
}

async function scrape(): Promise<Scrape> {
  const response = await fetch(`${t.url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await response.text());
}

/** The value of the series of `name` with exactly these labels; undefined when it is absent. */
function valueOf(scraped: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const matching = scraped.samples.filter(
    (sample) => sample.name === name && JSON.stringify(Object.entries(sample.labels).sort()) === wanted,
  );
  expect(matching.length).toBeLessThanOrEqual(1);
  return matching[0]?.value;
}

function labelValues(scraped: Scrape, name: string, label: string): string[] {
  return scraped.samples.filter((sample) => sample.name === name).map((sample) => sample.labels[label]!).sort();
}

describe('/metrics', () => {
  it('exposes every series from the start, those of work not done yet at zero', async () => {
    const scraped = await scrape();
    const types = Object.fromEntries(
      [
        'http_request_duration_seconds',
        'graphql_operation_duration_seconds',
        'graphql_ws_connections',
        'graphql_ws_subscriptions',
        'render_nodes',
        'render_job_queue_depth',
        'render_frames_reported_total',
        'render_scheduler_pass_duration_seconds',
        'render_nodes_lost_total',
        'db_pool_connections',
        'db_pool_idle_connections',
        'db_pool_waiting_clients',
        'process_cpu_seconds_total',
        'nodejs_eventloop_lag_seconds',
      ].map((name) => [name, scraped.types.get(name)]),
    );
    expect(types).toEqual({
      http_request_duration_seconds: 'histogram',
      graphql_operation_duration_seconds: 'histogram',
      graphql_ws_connections: 'gauge',
      graphql_ws_subscriptions: 'gauge',
      render_nodes: 'gauge',
      render_job_queue_depth: 'gauge',
      render_frames_reported_total: 'counter',
      render_scheduler_pass_duration_seconds: 'histogram',
      render_nodes_lost_total: 'counter',
      db_pool_connections: 'gauge',
      db_pool_idle_connections: 'gauge',
      db_pool_waiting_clients: 'gauge',
      process_cpu_seconds_total: 'counter',
      nodejs_eventloop_lag_seconds: 'gauge',
    });
    expect(labelValues(scraped, 'render_nodes', 'status')).toEqual(Object.values(NodeStatus).sort());
    expect(labelValues(scraped, 'render_job_queue_depth', 'step')).toEqual(
      [JobStep.Queued, JobStep.Preparing, JobStep.Rendering, JobStep.Encoding].sort(),
    );
    expect(valueOf(scraped, 'render_frames_reported_total')).toBe(0);
    expect(valueOf(scraped, 'render_scheduler_pass_duration_seconds_count')).toBe(0);
    expect(valueOf(scraped, 'graphql_ws_connections')).toBe(0);
    expect(valueOf(scraped, 'db_pool_connections')).toBeGreaterThan(0);
  });

  it('gives the rest of the app a counter of frames reported and a histogram of scheduler passes', async () => {
    const before = await scrape();
    t.app.http.metrics.framesReported.inc(25);
    t.app.http.metrics.schedulerPassSeconds.observe(0.2);
    const after = await scrape();
    expect(valueOf(after, 'render_frames_reported_total')).toBe(valueOf(before, 'render_frames_reported_total')! + 25);
    expect(valueOf(after, 'render_scheduler_pass_duration_seconds_count')).toBe(
      valueOf(before, 'render_scheduler_pass_duration_seconds_count')! + 1,
    );
  });

  it('counts render nodes by status and unfinished jobs by step from the database at each scrape', async () => {
    const admin = await t.token(randomUUID(), { admin: true });
    const before = await scrape();
    const registered = await t.rest('POST', '/v1/nodes', {
      token: admin,
      body: { name: `metrics-${randomUUID()}`, region: 'eu-west', node_ip: '10.0.0.9', worker_port: 8181, current_ae_version: '24.1' },
    });
    expect(registered.status).toBe(201);
    await submitRender(t, await t.token(randomUUID()), FREE_RENDER);

    const after = await scrape();
    expect(valueOf(after, 'render_nodes', { status: 'Registered' })).toBe(valueOf(before, 'render_nodes', { status: 'Registered' })! + 1);
    expect(valueOf(after, 'render_job_queue_depth', { step: 'Queued' })).toBe(
      valueOf(before, 'render_job_queue_depth', { step: 'Queued' })! + 1,
    );
  });

  it('times HTTP requests by route pattern, never by raw URL', async () => {
    const token = await t.token(randomUUID());
    const pattern = { method: 'GET', route: '/v1/renders/:job_id', status_code: '404' };
    const unmatched = { method: 'GET', route: 'unmatched', status_code: '404' };
    const before = await scrape();
    for (let i = 0; i < 3; i += 1) expect((await t.rest('GET', `/v1/renders/${randomUUID()}`, { token })).status).toBe(404);
    expect((await t.rest('GET', `/no-such-page/${randomUUID()}`)).status).toBe(404);

    const after = await scrape();
    expect(valueOf(after, 'http_request_duration_seconds_count', pattern)).toBe(
      (valueOf(before, 'http_request_duration_seconds_count', pattern) ?? 0) + 3,
    );
    expect(valueOf(after, 'http_request_duration_seconds_count', unmatched)).toBe(
      (valueOf(before, 'http_request_duration_seconds_count', unmatched) ?? 0) + 1,
    );
    const routes = labelValues(after, 'http_request_duration_seconds_count', 'route');
    expect(routes.filter((route) => /[0-9a-f]{8}-[0-9a-f]{4}-/.test(route))).toEqual([]);
  });

  it('times GraphQL operations by name and type', async () => {
    const token = await t.token(randomUUID());
    const post = (query: string) =>
      fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query }),
      });
    await post('query MetricsProbe { renderJobs(first: 1) { edges { cursor } } }');
    await post('query MetricsProbe { renderJobs(first: 2) { edges { cursor } } }');
    await post('{ __typename }');
    await post('{ noSuchField }');

    const scraped = await scrape();
    const count = (operation_name: string, operation_type: string) =>
      valueOf(scraped, 'graphql_operation_duration_seconds_count', { operation_name, operation_type });
    expect(count('MetricsProbe', 'query')).toBe(2);
    expect(count('anonymous', 'query')).toBe(1);
    expect(count('unknown', 'unknown')).toBe(1);
  });

  it('counts open graphql-ws connections and subscriptions, up while open and down once closed', async () => {
    const token = await t.token(randomUUID());
    const jobId = (await submitRender(t, token, FREE_RENDER)).id;
    const wsUrl = `${t.url.replace('http', 'ws')}/graphql`;
    const open = async () => {
      const scraped = await scrape();
      return [valueOf(scraped, 'graphql_ws_connections'), valueOf(scraped, 'graphql_ws_subscriptions')];
    };

    const refused = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { Authorization: 'Bearer nope' }, retryAttempts: 0, lazy: false });
    await new Promise((resolve) => refused.on('closed', resolve));
    await refused.dispose();
    expect(await open()).toEqual([0, 0]);

    const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { Authorization: `Bearer ${token}` }, retryAttempts: 0 });
    const events = client.iterate({ query: `subscription { renderProgress(jobId: "${jobId}") { step } }` });
    expect((await events.next()).value).toEqual({ data: { renderProgress: { step: 'Queued' } } });
    expect(await open()).toEqual([1, 1]);

    await events.return?.();
    await expect.poll(open).toEqual([0, 0]);
    await client.dispose();
  });

});

describe('render_nodes_lost_total', () => {
  it('counts each node the heartbeat sweep declares Offline, once, and not a node that heartbeats', async () => {
    const clock = new ManualClock();
    const app = await startTestApp({ clock, startLoops: false });
    try {
      const sweeper = app.loop('heartbeat-sweeper');
      const silent = await app.onlineNode('lost-silent');
      const beating = await app.onlineNode('lost-beating');
      const lost = async () => valueOf(parseExposition(await (await fetch(`${app.url}/metrics`)).text()), 'render_nodes_lost_total');
      expect(await lost()).toBe(0);
      clock.advance(10_000);
      await app.heartbeat(beating);
      clock.advance(10_000);
      // 20 s after its last word the silent node is past the 15 s timeout; the other spoke 10 s ago.
      expect(await sweeper.runOnce()).toEqual({ offline: [silent.id] });
      expect(await lost()).toBe(1);
      // Already Offline: a second sweep finds nothing new to count.
      await sweeper.runOnce();
      expect(await lost()).toBe(1);
    } finally {
      await app.close();
    }
  });
});

describe('the REST contract and the admin pages', () => {
  it('serves rest-compat/openapi.yaml as application/yaml', async () => {
    const response = await fetch(`${t.url}/v1/openapi.yaml`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/yaml');
    const text = await response.text();
    expect(text).toBe(await readFile(new URL('../../rest-compat/openapi.yaml', import.meta.url), 'utf8'));
    expect(parseYaml(text).paths['/renders']).toHaveProperty('post');
  });

  it.each(['/v1/docs', '/playground'])('serves %s as a small page whose files are cached for a year', async (path) => {
    const page = await fetch(`${t.url}${path}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    expect(html.length).toBeLessThan(2000);

    const files = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((match) => match[1]!);
    expect(files.some((file) => file.endsWith('.js'))).toBe(true);
    expect(files.some((file) => file.endsWith('.css'))).toBe(true);
    for (const file of files) {
      const asset = await fetch(`${t.url}${file}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toBe(
        file.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8',
      );
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(asset.headers.get('content-encoding')).toBe('gzip');
      const etag = asset.headers.get('etag')!;
      expect((await fetch(`${t.url}${file}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    }
    const stale = files[0]!.replace(/\/assets\/[0-9a-f]+\//, '/assets/0123456789abcdef/');
    expect((await fetch(`${t.url}${stale}`)).status).toBe(404);
  });
});
