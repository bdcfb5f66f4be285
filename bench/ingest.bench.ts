// Agent ingest on one replica, against a bare node:http endpoint doing the essential work of the
// same route (read the body, check its HMAC-SHA256 signature, parse the JSON, one SQL statement
// through pg), with the same load generator in the same run:
// - heartbeats/s in a closed loop, and heartbeat latency at the fleet's rate in an open loop;
// - CPU per request of heartbeats, frame reports and command acknowledgements, from each
//   process's own CPU counters over the requests of an open loop at the same rate on both sides.
// Rounds alternate between the two (service, baseline, service, baseline, ...) and the medians
// over rounds are reported, because the machine is shared and noisy.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { deriveAgentKey, signAgentRequest } from '../src/adapters/auth/agent-signature.ts';
import { startBaseline } from './lib/baseline-process.ts';
import { cpuSeconds } from './lib/cpu.ts';
import { describeShares, topOfProfiles } from './lib/cpu-profile.ts';
import { closedLoop, httpClient, type LoadResult, openLoop } from './lib/load.ts';
import { compared, type Row, report } from './lib/report.ts';
import { AGENT_ROUTES, between, quantileMs, scrape } from './lib/server-metrics.ts';
import { seedJobs } from './lib/seed.ts';
import { BENCH_SECRETS, benchToken, createBenchDatabase, REDIS_URL, startService, withClient } from './lib/service.ts';
import { median, summarize } from './lib/stats.ts';

const NODES = 1_000;
const CONCURRENCY = 64;
const ROUNDS = 3;
const CLOSED_MS = 4_000;
const OPEN_MS = 4_000;
/** 5,000 nodes heartbeating every 5 s; frame reports and acknowledgements are timed at the same rate. */
const FLEET_RATE = 1_000;
/** CPU per request is at most this many times the bare endpoint's. */
const CPU_GOAL = 1.5;
/** Requests of one route that a side may send over the whole run (warm-up, rounds, a profile). */
const PER_SIDE = FLEET_RATE * (OPEN_MS / 1000) * (ROUNDS + 2) + 2_000;

interface Node {
  id: string;
  agentKey: string;
}

interface Frame {
  jobId: string;
  frameJobId: string;
  node: Node;
  frameNumber: number;
}

interface Command {
  id: string;
  node: Node;
}

type Side = 'service' | 'baseline';
type Kind = 'heartbeat' | 'frame' | 'ack';

const client = httpClient(CONCURRENCY * 2);
const database = await createBenchDatabase();
// BENCH_PROFILE=1 profiles even when every goal is met; BENCH_PROFILE_DIR keeps the profiles.
const profileRoot = process.env.BENCH_PROFILE_DIR ?? mkdtempSync(join(tmpdir(), 'bench-ingest-prof-'));
const stoppers: Array<() => Promise<void>> = [];

const keyOf = (id: string): Node => ({ id, agentKey: deriveAgentKey(BENCH_SECRETS.NODE_HMAC_SECRET, id) });

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

/**
 * Frames to report and commands to acknowledge, on nodes of their own that never heartbeat (so
 * no heartbeat delivers the commands) and jobs for an After Effects version no heartbeating node
 * runs (so the scheduler leaves them alone). Each side gets its own half: every request is a first
 * report or a first acknowledgement, the work the routes exist for.
 */
async function seedWork(url: string): Promise<{ frames: Record<Side, Frame[]>; commands: Record<Side, Command[]> }> {
  const seeded = await seedJobs(url, { jobs: Math.ceil((2 * PER_SIDE) / 120), chunksPerJob: 4, nodes: 200, frames: true, aeVersion: '0.0-bench' });
  const { rows } = await withClient(url, (db) =>
    db.query<{ id: string; node_id: string }>(
      `INSERT INTO node_commands (id, node_id, type, payload, delivered_at, delivery_count)
       SELECT gen_random_uuid(), (($1::uuid[]))[1 + n % cardinality($1::uuid[])], 'close_ae', '{}', now(), 1
       FROM generate_series(0, $2::int - 1) AS n
       RETURNING id, node_id`,
      [seeded.nodeIds, 2 * PER_SIDE],
    ),
  );
  const frames = seeded.rendering.flatMap((chunk) =>
    Array.from({ length: chunk.endFrame - chunk.startFrame + 1 }, (_unused, offset) => ({
      jobId: chunk.jobId,
      frameJobId: chunk.frameJobId,
      node: keyOf(chunk.nodeId),
      frameNumber: chunk.startFrame + offset,
    })),
  );
  // Interleaved, so that both halves spread over every job and node alike.
  const commands = rows.map((row) => ({ id: row.id, node: keyOf(row.node_id) }));
  const half = <T>(items: T[], side: 0 | 1) => items.filter((_item, index) => index % 2 === side);
  return {
    frames: { service: half(frames, 0), baseline: half(frames, 1) },
    commands: { service: half(commands, 0), baseline: half(commands, 1) },
  };
}

/**
 * A signed agent request. The baseline serves it at its own path and checks the signature over
 * the service's path (X-Signed-Path), so both sides verify the same bytes.
 */
function send(base: string, node: Node, path: string, body: unknown, target = path) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  const headers = signAgentRequest({ nodeId: node.id, agentKey: node.agentKey, method: 'POST', path, body: payload });
  return client.expectOk(`${base}${target}`, {
    method: 'POST',
    headers: { ...headers, 'x-signed-path': path, ...(payload ? { 'content-type': 'application/json' } : {}) },
    body: payload,
  });
}

let beat = 0;
const started = Date.now();

function take<T>(items: T[], what: string): T {
  const item = items.shift();
  if (!item) throw new Error(`The benchmark ran out of seeded ${what}`);
  return item;
}

/** One request of a route, to one side, as the agents send it; every one is new work. */
function requester(kind: Kind, side: Side, base: string, nodes: Node[], work: Awaited<ReturnType<typeof seedWork>>) {
  const bare = side === 'baseline';
  if (kind === 'heartbeat') {
    return () => {
      // Every heartbeat differs (recorded_at), so none is a replay.
      const sequence = beat++;
      const node = nodes[sequence % nodes.length] as Node;
      const path = `/v1/internal/nodes/${node.id}/heartbeat`;
      const body = {
        recorded_at: new Date(started + sequence).toISOString(),
        status: 'Online',
        cpu_pct: sequence % 100,
        ram_available_mb: 16_000 + (sequence % 1000),
        ae_running: false,
        ae_memory_mb: 0,
        current_job_id: null,
        current_frame: null,
        cache_used_gb: 3,
      };
      return send(base, node, path, body, bare ? `/heartbeat/${node.id}` : path).then(() => undefined);
    };
  }
  if (kind === 'frame') {
    return () => {
      const frame = take(work.frames[side], 'frames');
      const path = `/v1/internal/render/jobs/${frame.jobId}/frames`;
      const body = {
        frame_job_id: frame.frameJobId,
        frame_number: frame.frameNumber,
        file_size_bytes: 2048,
        completed_at: new Date().toISOString(),
      };
      return send(base, frame.node, path, body, bare ? `/frames/${frame.jobId}` : path).then(() => undefined);
    };
  }
  return () => {
    const command = take(work.commands[side], 'commands');
    const path = `/v1/internal/nodes/${command.node.id}/commands/${command.id}/ack`;
    return send(base, command.node, path, undefined, bare ? `/ack/${command.node.id}/${command.id}` : path).then(() => undefined);
  };
}

function checked(result: LoadResult, what: string): LoadResult {
  if (result.errors > 0) process.stderr.write(`${what}: ${result.errors} errors, first: ${result.firstError}\n`);
  return result;
}

const ROUTE_OF: Record<Kind, string> = { heartbeat: AGENT_ROUTES.heartbeat, frame: AGENT_ROUTES.frame, ack: AGENT_ROUTES.ack };
const NAME_OF: Record<Kind, string> = { heartbeat: 'heartbeat', frame: 'frame report', ack: 'command acknowledgement' };
const STATEMENT_OF: Record<Kind, string> = {
  heartbeat: 'single-row UPDATE',
  frame: 'single-row INSERT',
  ack: 'single-row UPDATE',
};

try {
  const service = await startService({ databaseUrl: database.url, redisUrl: REDIS_URL });
  stoppers.push(() => service.stop());
  const nodes = await registerNodes(service.url, NODES);
  const work = await seedWork(database.url);
  const baseline = await startBaseline({ databaseUrl: database.url });
  stoppers.push(() => baseline.stop());

  const targets = [
    { side: 'service' as const, url: service.url, pid: service.pid },
    { side: 'baseline' as const, url: baseline.url, pid: baseline.pid },
  ];
  const errors = { service: 0, baseline: 0 };
  // Warm-up: JIT, connection pools and keep-alive sockets of both sides, on every route.
  for (const kind of ['heartbeat', 'frame', 'ack'] as const) {
    for (const target of targets) {
      await openLoop({ ratePerSecond: FLEET_RATE, durationMs: 1_000, send: requester(kind, target.side, target.url, nodes, work) });
    }
  }

  const throughput = { service: [] as number[], baseline: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      const result = checked(
        await closedLoop({ concurrency: CONCURRENCY, durationMs: CLOSED_MS, send: requester('heartbeat', target.side, target.url, nodes, work) }),
        `${target.side} closed loop`,
      );
      throughput[target.side].push(result.throughput);
      errors[target.side] += result.errors;
      process.stdout.write(`round ${round + 1} ${target.side}: ${Math.round(result.throughput)} heartbeats/s\n`);
    }
  }

  // The open loop runs at the fleet's rate unless that is beyond what either side sustains.
  const rate = Math.min(FLEET_RATE, Math.floor(0.7 * Math.min(median(throughput.service), median(throughput.baseline))));
  const measured = {} as Record<Kind, { p50: Record<Side, number[]>; p99: Record<Side, number[]>; cpuMs: Record<Side, number[]>; serverP99: number[] }>;
  for (const kind of ['heartbeat', 'frame', 'ack'] as const) {
    const figures = {
      p50: { service: [] as number[], baseline: [] as number[] },
      p99: { service: [] as number[], baseline: [] as number[] },
      cpuMs: { service: [] as number[], baseline: [] as number[] },
      serverP99: [] as number[],
    };
    measured[kind] = figures;
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        const before = target.side === 'service' ? await scrape(target.url) : undefined;
        const cpuBefore = cpuSeconds(target.pid);
        const result = checked(
          await openLoop({ ratePerSecond: rate, durationMs: OPEN_MS, send: requester(kind, target.side, target.url, nodes, work) }),
          `${target.side} ${kind} open loop`,
        );
        const cpuMs = ((cpuSeconds(target.pid) - cpuBefore) * 1000) / Math.max(1, result.latencies.length);
        const summary = summarize(result.latencies);
        figures.p50[target.side].push(summary.median);
        figures.p99[target.side].push(summary.p99);
        figures.cpuMs[target.side].push(cpuMs);
        errors[target.side] += result.errors;
        if (before) figures.serverP99.push(quantileMs(between(before, await scrape(target.url), ROUTE_OF[kind]), 99));
        process.stdout.write(
          `round ${round + 1} ${target.side} ${kind} at ${rate}/s: p50 ${summary.median.toFixed(1)} ms, p99 ${summary.p99.toFixed(1)} ms, ` +
            `CPU ${cpuMs.toFixed(3)} ms/request\n`,
        );
      }
    }
  }

  const perSecond = compared(
    {
      benchmark: 'ingest',
      metric: 'heartbeats/s (closed loop)',
      value: median(throughput.service),
      baseline: median(throughput.baseline),
      goal: '≥ 1.0x',
      note: `${NODES} nodes, ${CONCURRENCY} callers, signed; baseline: bare node:http + HMAC check + pg single-row UPDATE`,
    },
    true,
  );
  perSecond.met = (perSecond.ratio ?? 0) >= 1;
  const heartbeatP99 = median(measured.heartbeat.p99.service);
  const rows: Row[] = [
    perSecond,
    compared(
      { benchmark: 'ingest', metric: `heartbeat p50 ms at ${rate}/s (open loop)`, value: median(measured.heartbeat.p50.service), baseline: median(measured.heartbeat.p50.baseline) },
      false,
    ),
    {
      ...compared(
        {
          benchmark: 'ingest',
          metric: `heartbeat p99 ms at ${rate}/s (open loop)`,
          value: heartbeatP99,
          baseline: median(measured.heartbeat.p99.baseline),
          goal: '< 20 ms',
          note: `as the client saw it; the service's own histogram: p99 ${median(measured.heartbeat.serverP99).toFixed(1)} ms`,
        },
        false,
      ),
      met: heartbeatP99 < 20,
    },
  ];
  const cpuRows = new Map<Kind, Row>();
  for (const kind of ['heartbeat', 'frame', 'ack'] as const) {
    const row = compared(
      {
        benchmark: 'ingest',
        metric: `CPU ms per ${NAME_OF[kind]}`,
        value: median(measured[kind].cpuMs.service),
        baseline: median(measured[kind].cpuMs.baseline),
        // The ratio reads as everywhere else (bare / service for a cost, so higher is better): at most
        // 1.5x the bare endpoint's CPU is a ratio of at least 1 / 1.5.
        ...(kind === 'ack' ? {} : { goal: `≤ ${CPU_GOAL}x bare (ratio ≥ ${(1 / CPU_GOAL).toFixed(2)}x)` }),
        note:
          `service process's utime + stime over ${rate}/s × ${OPEN_MS / 1000} s, median of ${ROUNDS} rounds; baseline: bare node:http + HMAC check + ` +
          `pg ${STATEMENT_OF[kind]}; service p99 ${median(measured[kind].p99.service).toFixed(1)} ms (bare ${median(measured[kind].p99.baseline).toFixed(1)} ms)`,
      },
      false,
    );
    if (kind !== 'ack') row.met = row.value <= CPU_GOAL * (row.baseline ?? 0);
    cpuRows.set(kind, row);
    rows.push(row);
  }
  rows.push({ benchmark: 'ingest', metric: 'errors', value: errors.service, baseline: errors.baseline, goal: '0', met: errors.service === 0 });

  // A missed goal (or BENCH_PROFILE=1): profile the service under the route's load and say where its CPU goes.
  const missed = (kind: Kind) => (kind === 'heartbeat' ? [perSecond, rows[2], cpuRows.get(kind)] : [cpuRows.get(kind)]).some((row) => row?.met === false);
  await service.stop();
  stoppers.shift();
  for (const kind of ['heartbeat', 'frame', 'ack'] as const) {
    if (!missed(kind) && process.env.BENCH_PROFILE !== '1') continue;
    const dir = join(profileRoot, kind);
    const profiled = await startService({ databaseUrl: database.url, redisUrl: REDIS_URL, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] });
    stoppers.unshift(() => profiled.stop());
    const load = requester(kind, 'service', profiled.url, nodes, work);
    await openLoop({ ratePerSecond: rate, durationMs: 1_000, send: load });
    await openLoop({ ratePerSecond: rate, durationMs: OPEN_MS, send: load });
    const stopping = performance.now();
    await profiled.stop();
    stoppers.shift();
    const top = `service CPU (self) under ${NAME_OF[kind]}s: ${describeShares(topOfProfiles(dir, OPEN_MS + (performance.now() - stopping)))}`;
    const row = cpuRows.get(kind);
    if (row) row.note = `${row.note}; ${top}`;
    process.stdout.write(`${top}\n`);
  }
  report(rows);
} finally {
  for (const stop of stoppers) await stop().catch(() => undefined);
  client.close();
  await database.drop();
  if (!process.env.BENCH_PROFILE_DIR) rmSync(profileRoot, { recursive: true, force: true });
}
