// Agent ingest: signed heartbeats per second on one replica, against a bare node:http + pg
// endpoint doing one single-row UPDATE per request, with the same load generator in the same run.
// Rounds alternate between the two (service, baseline, service, baseline, ...) and the medians
// over rounds are reported, because the machine is shared and noisy.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { signAgentRequest } from '../src/adapters/auth/agent-signature.ts';
import { startBaseline } from './lib/baseline-process.ts';
import { describeShares, topOfProfiles } from './lib/cpu-profile.ts';
import { closedLoop, httpClient, type LoadResult, openLoop } from './lib/load.ts';
import { compared, type Row, report } from './lib/report.ts';
import { benchToken, createBenchDatabase, REDIS_URL, startService } from './lib/service.ts';
import { median, summarize } from './lib/stats.ts';

const NODES = 1_000;
const CONCURRENCY = 64;
const ROUNDS = 3;
const CLOSED_MS = 4_000;
const OPEN_MS = 4_000;
/** 5,000 nodes heartbeating every 5 s. */
const FLEET_RATE = 1_000;

interface Node {
  id: string;
  agentKey: string;
}

const client = httpClient(CONCURRENCY * 2);
const database = await createBenchDatabase();
// BENCH_PROFILE=1 profiles even when every goal is met; BENCH_PROFILE_DIR keeps the profile.
const profileDir = process.env.BENCH_PROFILE_DIR ?? mkdtempSync(join(tmpdir(), 'bench-ingest-prof-'));
const stoppers: Array<() => Promise<void>> = [];

async function registerNodes(url: string, count: number): Promise<Node[]> {
  const admin = await benchToken(randomUUID(), { admin: true });
  const nodes: Node[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const index = next++;
        const created = await client.expectOk(`${url}/v1/nodes`, {
          method: 'POST',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            name: `ingest-${index}`,
            region: 'bench',
            node_ip: `10.0.${index >> 8}.${index & 255}`,
            worker_port: 8181,
            current_ae_version: '24.1',
          }),
        });
        const body = JSON.parse(created.body) as { id: string; agent_key: string };
        const node = { id: body.id, agentKey: body.agent_key };
        await send(url, node, `/v1/internal/nodes/${node.id}/online`, { available_ae_versions: ['24.1'] });
        nodes[index] = node;
      }
    }),
  );
  return nodes;
}

/** A signed agent request; the baseline ignores the signature, but pays the same client cost. */
function send(base: string, node: Node, path: string, body: unknown, target = path) {
  const payload = JSON.stringify(body);
  const headers = signAgentRequest({ nodeId: node.id, agentKey: node.agentKey, method: 'POST', path, body: payload });
  return client.expectOk(`${base}${target}`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: payload,
  });
}

let beat = 0;
const started = Date.now();
/** A heartbeat as the agents send it; every one differs (recorded_at), so none is a replay. */
function heartbeat(base: string, nodes: Node[], bare: boolean) {
  const sequence = beat++;
  const node = nodes[sequence % nodes.length] as Node;
  const path = `/v1/internal/nodes/${node.id}/heartbeat`;
  const body = {
    recorded_at: new Date(started + sequence).toISOString(),
    status: 'Online',
    cpu_pct: sequence % 100,
    ram_available_mb: 16_000 + (sequence % 1000),
    ae_running: false,
    current_job_id: null,
    current_frame: null,
    cache_used_gb: 3,
  };
  return send(base, node, path, body, bare ? `/heartbeat/${node.id}` : path).then(() => undefined);
}

function checked(result: LoadResult, what: string): LoadResult {
  if (result.errors > 0) process.stderr.write(`${what}: ${result.errors} errors, first: ${result.firstError}\n`);
  return result;
}

try {
  const service = await startService({ databaseUrl: database.url, redisUrl: REDIS_URL });
  stoppers.push(() => service.stop());
  const nodes = await registerNodes(service.url, NODES);
  const baseline = await startBaseline({ databaseUrl: database.url });
  stoppers.push(() => baseline.stop());

  const targets = [
    { name: 'service', url: service.url, bare: false },
    { name: 'baseline', url: baseline.url, bare: true },
  ] as const;
  const throughput = { service: [] as number[], baseline: [] as number[] };
  const errors = { service: 0, baseline: 0 };
  // Warm-up: JIT, connection pools and keep-alive sockets of both sides.
  for (const target of targets) {
    await closedLoop({ concurrency: CONCURRENCY, durationMs: 1_000, send: () => heartbeat(target.url, nodes, target.bare) });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      const result = checked(
        await closedLoop({ concurrency: CONCURRENCY, durationMs: CLOSED_MS, send: () => heartbeat(target.url, nodes, target.bare) }),
        `${target.name} closed loop`,
      );
      throughput[target.name].push(result.throughput);
      errors[target.name] += result.errors;
      process.stdout.write(`round ${round + 1} ${target.name}: ${Math.round(result.throughput)} heartbeats/s\n`);
    }
  }
  // The open loop runs at the fleet's rate unless that is beyond what either side sustains.
  const rate = Math.min(FLEET_RATE, Math.floor(0.7 * Math.min(median(throughput.service), median(throughput.baseline))));
  const latency = { service: [] as number[], baseline: [] as number[] };
  const p50 = { service: [] as number[], baseline: [] as number[] };
  const p99 = { service: [] as number[], baseline: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      const result = checked(
        await openLoop({ ratePerSecond: rate, durationMs: OPEN_MS, send: () => heartbeat(target.url, nodes, target.bare) }),
        `${target.name} open loop`,
      );
      const summary = summarize(result.latencies);
      latency[target.name].push(...result.latencies);
      p50[target.name].push(summary.median);
      p99[target.name].push(summary.p99);
      errors[target.name] += result.errors;
      process.stdout.write(`round ${round + 1} ${target.name} at ${rate}/s: p50 ${summary.median.toFixed(1)} ms, p99 ${summary.p99.toFixed(1)} ms\n`);
    }
  }

  const perSecond = compared(
    {
      benchmark: 'ingest',
      metric: 'heartbeats/s (closed loop)',
      value: median(throughput.service),
      baseline: median(throughput.baseline),
      goal: '≥ 1.0x',
      note: `${NODES} nodes, ${CONCURRENCY} callers, signed; baseline: bare node:http + pg single-row UPDATE`,
    },
    true,
  );
  perSecond.met = (perSecond.ratio ?? 0) >= 1;
  const servicePercentile99 = median(p99.service);
  const rows: Row[] = [
    perSecond,
    compared(
      { benchmark: 'ingest', metric: `p50 ms at ${rate}/s (open loop)`, value: median(p50.service), baseline: median(p50.baseline) },
      false,
    ),
    {
      ...compared(
        {
          benchmark: 'ingest',
          metric: `p99 ms at ${rate}/s (open loop)`,
          value: servicePercentile99,
          baseline: median(p99.baseline),
          goal: '< 20 ms',
        },
        false,
      ),
      met: servicePercentile99 < 20,
    },
    {
      benchmark: 'ingest',
      metric: 'errors',
      value: errors.service,
      baseline: errors.baseline,
      goal: '0',
      met: errors.service === 0,
    },
  ];

  if (rows.some((row) => row.met === false) || process.env.BENCH_PROFILE === '1') {
    // Missed: profile the service under the same load and say where its CPU goes.
    await service.stop();
    stoppers.shift();
    const profiled = await startService({
      databaseUrl: database.url,
      redisUrl: REDIS_URL,
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir],
    });
    stoppers.unshift(() => profiled.stop());
    await closedLoop({ concurrency: CONCURRENCY, durationMs: 1_000, send: () => heartbeat(profiled.url, nodes, false) });
    await closedLoop({ concurrency: CONCURRENCY, durationMs: CLOSED_MS, send: () => heartbeat(profiled.url, nodes, false) });
    const stopping = performance.now();
    await profiled.stop();
    stoppers.shift();
    const top = describeShares(topOfProfiles(profileDir, CLOSED_MS + (performance.now() - stopping)));
    for (const row of rows) if (row.met === false) row.note = `${row.note ? `${row.note}; ` : ''}service CPU (self): ${top}`;
  }
  report(rows);
} finally {
  for (const stop of stoppers) await stop().catch(() => undefined);
  client.close();
  await database.drop();
  if (!process.env.BENCH_PROFILE_DIR) rmSync(profileDir, { recursive: true, force: true });
}
