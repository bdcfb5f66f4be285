// Fleet: simulated nodes (agent-sim, signing for real, in processes of their own) heartbeating
// every 5 s and 100 jobs in flight against one replica, at 1,000, 5,000 and 10,000 nodes: frames
// booked and reported per second, errors, the latency of heartbeats and frame reports as the
// service's own histograms measured it beside what the simulator saw, the simulator's event-loop
// lag, the service's CPU and memory, and whether any node was declared Offline while its agent ran.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FleetStats, NodeKey } from '../agent-sim/fleet.ts';
import { deriveAgentKey } from '../src/adapters/auth/agent-signature.ts';
import { cpuSeconds } from './lib/cpu.ts';
import type { FleetWindow } from './lib/fleet-child.ts';
import { FleetStartTimeout, startFleetProcesses } from './lib/fleet-process.ts';
import { httpClient } from './lib/load.ts';
import { type Row, report } from './lib/report.ts';
import { AGENT_ROUTES, between, countOf, quantileMs, scrape } from './lib/server-metrics.ts';
import { BENCH_SECRETS, benchToken, createBenchDatabase, REDIS_URL, startService, withClient } from './lib/service.ts';
import { summarize } from './lib/stats.ts';

/** The scales of the table; BENCH_FLEET_SCALES=5000 runs one. */
const SCALES = (process.env.BENCH_FLEET_SCALES ?? '1000,5000,10000').split(',').map(Number);
/** The scale the goals are set at, and the one that must never lose a node. */
const GOAL_SCALE = 5_000;
const NO_LOSS_SCALE = 10_000;
/** Nodes one simulator process runs. */
const NODES_PER_PROCESS = 5_000;
const JOBS_IN_FLIGHT = 100;
const HEARTBEAT_SECONDS = 5;
/** Short renders keep the service, not the simulated After Effects, the bottleneck. */
const FRAME_MS = 1;
/** Nodes coming online at the same time while the fleet starts. */
const STARTUP_CONCURRENCY = 128;
const WARMUP_MS = 30_000;
const WINDOW_MS = Number(process.env.BENCH_FLEET_WINDOW_MS ?? 30_000);
/** Free renders: 10 s at 30 fps, 300 frames each. */
const JOB = { quality: 'Low', resolution: 'HD', price_type: 'Free', duration_sec: 10, frame_rate: 30 };
const FRAMES_GOAL = 2_000;
const P99_GOAL_MS = 50;

/**
 * Registers the nodes straight in the database, as one statement: registering 10,000 nodes over
 * REST would take most of the time budget, and registration is not what is measured. Each node
 * then comes online over the signed protocol, as agents do.
 */
async function insertNodes(databaseUrl: string, count: number): Promise<NodeKey[]> {
  const { rows } = await withClient(databaseUrl, (db) =>
    db.query<{ id: string }>(
      `INSERT INTO render_nodes (id, name, region, node_ip, worker_port, current_ae_version, available_ae_versions, ram_gb, cpu_cores, updated_at)
       SELECT gen_random_uuid(), 'fleet-' || n, 'bench', '10.0.0.1', 8181, '24.1', ARRAY['24.1'], 64, 16, now()
       FROM generate_series(1, $1::int) AS n
       RETURNING id`,
      [count],
    ),
  );
  return rows.map(({ id }) => ({ id, agentKey: deriveAgentKey(BENCH_SECRETS.NODE_HMAC_SECRET, id) }));
}

/** A fleet that is not online by then is reported as such, and its scale measures nothing else. */
const STARTUP_DEADLINE_MS = 240_000;

class FleetNotOnline extends Error {
  constructor(
    readonly nodes: number,
    readonly online: number,
    readonly seconds: number,
  ) {
    super(`${online} of ${nodes} nodes online after ${Math.round(seconds)} s`);
  }
}

async function onlineCount(databaseUrl: string): Promise<number> {
  const { rows } = await withClient(databaseUrl, (db) =>
    db.query<{ online: number }>(`SELECT count(*)::int AS online FROM render_nodes WHERE status <> 'Registered'`),
  );
  return rows[0]?.online ?? 0;
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
const errorCount = (stats: readonly FleetStats[]) => sum(stats.map((one) => sum(Object.values(one.errors))));
const fmt = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : 'n/a');
const routeList = (result: ScaleResult) => result.routes.map(({ route, p99, count }) => `${route} ${fmt(p99)} ms (${count})`).join(', ');

interface ScaleResult {
  nodes: number;
  seconds: number;
  booked: number;
  reported: number;
  errors: number;
  errorKinds: string;
  heartbeats: number;
  serverHeartbeatP99: number;
  serverFrameP99: number;
  serverHeartbeatP50: number;
  serverFrameP50: number;
  simHeartbeat: { median: number; p99: number };
  simLagP99: number;
  simLagMax: number;
  cpuCores: number;
  simCpuCores: number;
  peakRssMiB: number;
  nodesLost: number;
  serviceLoopLagP99Ms: number;
  poolWaiting: number;
  /** Every agent route's server-side p99 and count over the window. */
  routes: Array<{ route: string; p99: number; count: number }>;
}

async function runScale(nodes: number): Promise<ScaleResult> {
  const client = httpClient(16);
  const database = await createBenchDatabase();
  const stoppers: Array<() => Promise<void>> = [];
  try {
    // BENCH_PROFILE=1 writes the service's CPU profile into BENCH_PROFILE_DIR, or the working directory.
    const service = await startService({ databaseUrl: database.url, redisUrl: REDIS_URL, nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_DIR ?? '.'] : [] });
    stoppers.push(() => service.stop());
    const user = await benchToken(randomUUID());
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

    const startedAt = performance.now();
    const processes = Math.ceil(nodes / NODES_PER_PROCESS);
    const fleet = await startFleetProcesses({
      processes,
      deadlineMs: STARTUP_DEADLINE_MS,
      keys: await insertNodes(database.url, nodes),
      fleet: {
        url: service.url,
        frameMs: FRAME_MS,
        heartbeatSeconds: HEARTBEAT_SECONDS,
        // A connection per node, as real agents have: a pool shared by the fleet queues a node's
        // heartbeat behind other nodes' requests, in the simulator, and can get it declared Offline.
        connections: Math.ceil(nodes / processes),
        startupConcurrency: STARTUP_CONCURRENCY,
        seed: 8,
      },
      onEncoded: submit,
    }).catch(async (error: unknown) => {
      if (!(error instanceof FleetStartTimeout)) throw error;
      throw new FleetNotOnline(nodes, await onlineCount(database.url), (performance.now() - startedAt) / 1000);
    });
    stoppers.unshift(() => fleet.stop());
    process.stdout.write(`${nodes} nodes online in ${((performance.now() - startedAt) / 1000).toFixed(0)} s\n`);
    for (let job = 0; job < JOBS_IN_FLIGHT; job++) submit();

    // Measure once frames flow, so the window holds the steady state rather than the first jobs'
    // preparation (or after WARMUP_MS at most, so a service that cannot get going still yields figures).
    const warmupEnds = performance.now() + WARMUP_MS;
    for (;;) {
      const probe = await fleet.windowStart();
      if (sum(probe.map((one) => one.framesAccepted)) > 0 || performance.now() > warmupEnds) break;
      await fleet.windowEnd();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await fleet.windowEnd();
    const before = await fleet.windowStart();
    const metricsBefore = await scrape(service.url);
    const cpuBefore = cpuSeconds(service.pid);
    const simCpuBefore = sum(fleet.pids.map(cpuSeconds));
    let peakRss = service.rss();
    const rssProbe = setInterval(() => {
      peakRss = Math.max(peakRss, service.rss());
    }, 500);
    // The service's own view each second: its event loop's lag (prom-client resets it at every
    // scrape) and the queries waiting for a pool connection.
    const seen = { loopLagP99Ms: 0, poolWaiting: 0 };
    const serviceProbe = setInterval(() => {
      void scrape(service.url).then(({ counters }) => {
        seen.loopLagP99Ms = Math.max(seen.loopLagP99Ms, (counters.get('nodejs_eventloop_lag_p99_seconds') ?? 0) * 1000);
        seen.poolWaiting = Math.max(seen.poolWaiting, counters.get('db_pool_waiting_clients') ?? 0);
      }, () => undefined);
    }, 1_000);
    const windowStart = performance.now();
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
    const windows: FleetWindow[] = await fleet.windowEnd();
    const seconds = (performance.now() - windowStart) / 1000;
    clearInterval(rssProbe);
    clearInterval(serviceProbe);
    const cpuCores = (cpuSeconds(service.pid) - cpuBefore) / seconds;
    const simCpuCores = (sum(fleet.pids.map(cpuSeconds)) - simCpuBefore) / seconds;
    const metricsAfter = await scrape(service.url);
    const after = windows.map((window) => window.stats);

    const heartbeats = between(metricsBefore, metricsAfter, AGENT_ROUTES.heartbeat);
    const frames = between(metricsBefore, metricsAfter, AGENT_ROUTES.frame);
    const simHeartbeat = summarize(windows.flatMap((window) => window.heartbeatMs));
    const reported = (sum(after.map((one) => one.framesAccepted)) - sum(before.map((one) => one.framesAccepted))) / seconds;
    const errors = errorCount(after) - errorCount(before) + submitErrors.length;
    const errorKinds = JSON.stringify(Object.assign({}, ...after.map((one) => one.errors)));
    // Counted from the service's start: a node lost while coming online counts as much as one lost later.
    const nodesLost = metricsAfter.counters.get('render_nodes_lost_total') ?? 0;
    const result: ScaleResult = {
      nodes,
      seconds,
      booked: sum(windows.map((window) => window.booked)) / seconds,
      reported,
      errors,
      errorKinds,
      heartbeats: countOf(heartbeats),
      serverHeartbeatP50: quantileMs(heartbeats, 50),
      serverHeartbeatP99: quantileMs(heartbeats, 99),
      serverFrameP50: quantileMs(frames, 50),
      serverFrameP99: quantileMs(frames, 99),
      simHeartbeat,
      simLagP99: Math.max(...windows.map((window) => window.loopLag.p99)),
      simLagMax: Math.max(...windows.map((window) => window.loopLag.max)),
      cpuCores,
      simCpuCores,
      peakRssMiB: peakRss / 2 ** 20,
      nodesLost,
      serviceLoopLagP99Ms: seen.loopLagP99Ms,
      poolWaiting: seen.poolWaiting,
      routes: [...metricsAfter.httpRoutes.keys()]
        .filter((route) => route.includes('/v1/internal/'))
        .map((route) => ({ route, buckets: between(metricsBefore, metricsAfter, route) }))
        .filter(({ buckets }) => countOf(buckets) > 0)
        .map(({ route, buckets }) => ({ route: route.replace('POST /v1/internal', ''), p99: quantileMs(buckets, 99), count: countOf(buckets) })),
    };
    process.stdout.write(
      `${nodes} nodes, window ${seconds.toFixed(0)} s: ${Math.round(result.booked)} frames booked/s, ${Math.round(reported)} reported/s, ` +
        `${result.heartbeats} heartbeats; server p99 heartbeat ${fmt(result.serverHeartbeatP99)} ms, frame ${fmt(result.serverFrameP99)} ms; ` +
        `simulator heartbeat p50/p99 ${fmt(simHeartbeat.median)}/${fmt(simHeartbeat.p99)} ms, loop lag p99 ${fmt(result.simLagP99)} ms; ` +
        `service CPU ${cpuCores.toFixed(2)} cores, simulator ${simCpuCores.toFixed(2)}; service loop lag p99 up to ${fmt(result.serviceLoopLagP99Ms)} ms, ` +
        `pool waiters up to ${result.poolWaiting}; nodes lost ${nodesLost}; agent routes p99 (count): ${routeList(result)}; ` +
        `${submitted} jobs submitted; errors ${errorKinds}\n`,
    );
    if (submitErrors.length > 0) process.stderr.write(`job submissions failed: ${submitErrors[0]}\n`);
    // What the service logged as failed (level error, 50), so an error count comes with its cause.
    const failures = service.output().split('\n').filter((line) => line.includes('"level":50'));
    for (const line of failures.slice(0, 3)) process.stderr.write(`service error: ${line.slice(0, 2000)}\n`);
    return result;
  } finally {
    for (const stop of stoppers) await stop().catch(() => undefined);
    client.close();
    await database.drop();
  }
}

const rows: Row[] = [];
for (const nodes of SCALES) {
  const result = await runScale(nodes).catch((error: unknown) => {
    if (!(error instanceof FleetNotOnline)) throw error;
    return error;
  });
  if (result instanceof FleetNotOnline) {
    process.stdout.write(`${nodes} nodes: ${result.message}\n`);
    rows.push({
      benchmark: 'fleet',
      metric: `${nodes.toLocaleString('en-US')} nodes: nodes online at start`,
      value: result.online,
      goal: `${nodes.toLocaleString('en-US')}`,
      met: false,
      note: `${result.message}: the service, busy with the heartbeats of the nodes already online, had not brought the rest online (their online reports are Prisma transactions); nothing else measured at this scale`,
    });
    continue;
  }
  const scale = `${nodes.toLocaleString('en-US')} nodes`;
  const atGoal = nodes === GOAL_SCALE;
  const goal = <T extends Row>(row: T, text: string, met: boolean): T => (atGoal ? { ...row, goal: text, met } : row);
  rows.push(
    goal(
      {
        benchmark: 'fleet',
        metric: `${scale}: frames reported/s`,
        value: result.reported,
        note: `${Math.round(result.booked)} booked/s; ${JOBS_IN_FLIGHT} jobs in flight, ${HEARTBEAT_SECONDS} s heartbeats, ${FRAME_MS} ms per frame, ${Math.round(result.seconds)} s window, simulator in ${Math.ceil(nodes / NODES_PER_PROCESS)} process(es)`,
      },
      `≥ ${FRAMES_GOAL.toLocaleString('en-US')}/s`,
      result.reported >= FRAMES_GOAL,
    ),
    goal({ benchmark: 'fleet', metric: `${scale}: errors`, value: result.errors, note: result.errors > 0 ? result.errorKinds : undefined }, '0', result.errors === 0),
    goal(
      {
        benchmark: 'fleet',
        metric: `${scale}: heartbeat p99 ms (server)`,
        value: result.serverHeartbeatP99,
        note: `service's histogram, ${result.heartbeats} heartbeats, p50 ${fmt(result.serverHeartbeatP50)} ms; the simulator saw p50 ${fmt(result.simHeartbeat.median)} ms, p99 ${fmt(result.simHeartbeat.p99)} ms with its event loop lagging up to ${fmt(result.simLagP99)} ms (p99; max ${fmt(result.simLagMax)} ms)`,
      },
      `≤ ${P99_GOAL_MS} ms`,
      result.serverHeartbeatP99 <= P99_GOAL_MS,
    ),
    goal(
      { benchmark: 'fleet', metric: `${scale}: frame report p99 ms (server)`, value: result.serverFrameP99, note: `service's histogram, p50 ${fmt(result.serverFrameP50)} ms` },
      `≤ ${P99_GOAL_MS} ms`,
      result.serverFrameP99 <= P99_GOAL_MS,
    ),
    {
      benchmark: 'fleet',
      metric: `${scale}: service CPU (cores)`,
      value: result.cpuCores,
      note: `utime + stime over the window, of 2 cores; simulator ${result.simCpuCores.toFixed(2)} cores; service peak RSS ${Math.round(result.peakRssMiB)} MiB; service event-loop lag p99 up to ${fmt(result.serviceLoopLagP99Ms)} ms, queries waiting for a pool connection up to ${result.poolWaiting}`,
    },
    {
      benchmark: 'fleet',
      metric: `${scale}: slowest agent route p99 ms (server)`,
      value: Math.max(...result.routes.map((route) => route.p99)),
      note: `every agent route, p99 (requests in the window): ${routeList(result)}`,
    },
    {
      benchmark: 'fleet',
      metric: `${scale}: nodes declared Offline`,
      value: result.nodesLost,
      note: 'render_nodes_lost_total over the whole run, every agent running throughout',
      ...(nodes === NO_LOSS_SCALE ? { goal: '0', met: result.nodesLost === 0 } : {}),
    },
  );
}
report(rows);
