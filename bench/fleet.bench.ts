// Fleet: 5,000 simulated nodes (agent-sim, signing for real) heartbeating every 5 s and 100 jobs
// in flight against one replica, everything on this machine: frames booked and reported per
// second, errors, heartbeat latency, and the service's CPU and memory. The baseline is the bare
// node:http + pg endpoint doing one single-row INSERT per frame report, driven by the same client
// code at the fleet's connection count in the same run.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { type FleetEvent, type NodeKey, startFleet } from '../agent-sim/fleet.ts';
import { deriveAgentKey, signAgentRequest } from '../src/adapters/auth/agent-signature.ts';
import { startBaseline } from './lib/baseline-process.ts';
import { closedLoop, httpClient } from './lib/load.ts';
import { compared, type Row, report } from './lib/report.ts';
import { BENCH_SECRETS, benchToken, createBenchDatabase, REDIS_URL, startService } from './lib/service.ts';
import { median, summarize } from './lib/stats.ts';

const NODES = 5_000;
const JOBS_IN_FLIGHT = 100;
const HEARTBEAT_SECONDS = 5;
/** Short renders keep the service, not the simulated After Effects, the bottleneck. */
const FRAME_MS = 1;
const CONNECTIONS = 128;
const WARMUP_MS = 30_000;
const WINDOW_MS = 30_000;
const BASELINE_ROUNDS = 2;
const BASELINE_MS = 4_000;
/** Free renders: 10 s at 30 fps, 300 frames each. */
const JOB = { quality: 'Low', resolution: 'HD', price_type: 'Free', duration_sec: 10, frame_rate: 30 };

const TICKS_PER_SECOND = 100;
/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * Registers the nodes straight in the database, as one statement: registering 5,000 nodes over
 * REST would take most of the time budget, and registration is not what is measured. Each node
 * then comes online over the signed protocol, as agents do.
 */
async function insertNodes(databaseUrl: string, count: number): Promise<NodeKey[]> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO render_nodes (id, name, region, node_ip, worker_port, current_ae_version, available_ae_versions, ram_gb, cpu_cores, updated_at)
       SELECT gen_random_uuid(), 'fleet-' || n, 'bench', '10.0.0.1', 8181, '24.1', ARRAY['24.1'], 64, 16, now()
       FROM generate_series(1, $1::int) AS n
       RETURNING id`,
      [count],
    );
    return rows.map(({ id }) => ({ id, agentKey: deriveAgentKey(BENCH_SECRETS.NODE_HMAC_SECRET, id) }));
  } finally {
    await db.end();
  }
}

const client = httpClient(CONNECTIONS);
const database = await createBenchDatabase();
const stoppers: Array<() => Promise<void>> = [];

try {
  // BENCH_PROFILE=1 writes the service's CPU profile into the working directory, as the other benchmarks do.
  const service = await startService({ databaseUrl: database.url, redisUrl: REDIS_URL, nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof'] : [] });
  stoppers.push(() => service.stop());
  const baseline = await startBaseline({ databaseUrl: database.url });
  stoppers.push(() => baseline.stop());
  const user = await benchToken(randomUUID());

  let measuring = false;
  let booked = 0;
  const heartbeatMs: number[] = [];
  let submitted = 0;
  const submitErrors: string[] = [];
  const submit = () => {
    submitted++;
    client
      .expectOk(`${service.url}/v1/renders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...JOB, saved_project_id: randomUUID() }),
      })
      .catch((error: unknown) => submitErrors.push(String(error)));
  };
  const onEvent = (event: FleetEvent) => {
    if (event.type === 'encoded') submit();
    if (!measuring) return;
    if (event.type === 'heartbeat') heartbeatMs.push(event.ms);
    else if (event.type === 'command' && event.command.type === 'render_chunk') {
      booked += (event.command.end_frame as number) - (event.command.start_frame as number) + 1;
    }
  };

  const startedAt = performance.now();
  const fleet = await startFleet({
    url: service.url,
    nodes: NODES,
    keys: await insertNodes(database.url, NODES),
    frameMs: FRAME_MS,
    heartbeatSeconds: HEARTBEAT_SECONDS,
    connections: CONNECTIONS,
    startupConcurrency: CONNECTIONS,
    seed: 8,
    onEvent,
  });
  stoppers.unshift(() => fleet.stop());
  process.stdout.write(`${NODES} nodes online in ${((performance.now() - startedAt) / 1000).toFixed(0)} s\n`);
  for (let job = 0; job < JOBS_IN_FLIGHT; job++) submit();

  // Measure once frames flow, so the window holds the steady state rather than the first jobs' preparation.
  // (Or after WARMUP_MS at most, so a service that cannot get going still yields figures.)
  const warmupEnds = performance.now() + WARMUP_MS;
  while (fleet.stats().framesAccepted === 0 && performance.now() < warmupEnds) await new Promise((resolve) => setTimeout(resolve, 200));
  const before = fleet.stats();
  const cpuBefore = cpuSeconds(service.pid);
  let peakRss = service.rss();
  const rssProbe = setInterval(() => {
    peakRss = Math.max(peakRss, service.rss());
  }, 500);
  measuring = true;
  const windowStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  measuring = false;
  const seconds = (performance.now() - windowStart) / 1000;
  clearInterval(rssProbe);
  const cpu = (cpuSeconds(service.pid) - cpuBefore) / seconds;
  const after = fleet.stats();
  await fleet.stop();
  stoppers.shift();

  const reported = (after.framesAccepted - before.framesAccepted) / seconds;
  const errorCount = (stats: typeof after) => Object.values(stats.errors).reduce((sum, count) => sum + count, 0);
  const errors = errorCount(after) - errorCount(before) + submitErrors.length;
  process.stdout.write(
    `window ${seconds.toFixed(0)} s: ${Math.round(booked / seconds)} frames booked/s, ${Math.round(reported)} reported/s, ` +
      `${after.heartbeats - before.heartbeats} heartbeats, ${submitted} jobs submitted, errors ${JSON.stringify(after.errors)}\n`,
  );
  if (submitErrors.length > 0) process.stderr.write(`job submissions failed: ${submitErrors[0]}\n`);

  // The baseline: the same frame report body, signed, at the fleet's connection count.
  const node = { id: fleet.keys[0]?.id ?? '', agentKey: fleet.keys[0]?.agentKey ?? '' };
  const jobId = randomUUID();
  const chunkId = randomUUID();
  const baselineRates: number[] = [];
  for (let round = 0; round < BASELINE_ROUNDS; round++) {
    const result = await closedLoop({
      concurrency: CONNECTIONS,
      durationMs: BASELINE_MS,
      send: async (_caller, sequence) => {
        const path = `/v1/internal/render/jobs/${jobId}/frames`;
        const payload = JSON.stringify({
          frame_job_id: chunkId,
          frame_number: round * 10_000_000 + sequence,
          file_size_bytes: 2048,
          completed_at: new Date().toISOString(),
          lease: 'bench',
        });
        const headers = signAgentRequest({ nodeId: node.id, agentKey: node.agentKey, method: 'POST', path, body: payload });
        await client.expectOk(`${baseline.url}/frames/${jobId}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: payload,
        });
      },
    });
    baselineRates.push(result.throughput);
  }

  const heartbeat = summarize(heartbeatMs);
  const bookedPerSecond = booked / seconds;
  const rows: Row[] = [
    {
      benchmark: 'fleet',
      metric: 'frames booked/s',
      value: bookedPerSecond,
      goal: '≥ 2,000/s',
      met: bookedPerSecond >= 2000,
      note: `${NODES} nodes, ${HEARTBEAT_SECONDS} s heartbeats, ${JOBS_IN_FLIGHT} jobs in flight, ${FRAME_MS} ms per frame, ${Math.round(seconds)} s window`,
    },
    {
      ...compared(
        {
          benchmark: 'fleet',
          metric: 'frames reported/s',
          value: reported,
          baseline: median(baselineRates),
          goal: '≥ 2,000/s',
          note: `baseline: bare node:http + pg single-row INSERT per frame report, closed loop at ${CONNECTIONS} connections`,
        },
        true,
      ),
      met: reported >= 2000,
    },
    { benchmark: 'fleet', metric: 'errors', value: errors, goal: '0', met: errors === 0 },
    { benchmark: 'fleet', metric: 'heartbeat p50 ms', value: heartbeat.median },
    { benchmark: 'fleet', metric: 'heartbeat p99 ms', value: heartbeat.p99, note: `${heartbeat.count} heartbeats` },
    { benchmark: 'fleet', metric: 'service CPU (cores)', value: cpu, note: 'utime + stime over the window, of 2 cores' },
    { benchmark: 'fleet', metric: 'service peak RSS MiB', value: peakRss / 2 ** 20 },
  ];
  report(rows);
} finally {
  for (const stop of stoppers) await stop().catch(() => undefined);
  client.close();
  await database.drop();
}
