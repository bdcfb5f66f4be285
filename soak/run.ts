// `npm run soak`: a busy farm under mixed faults drawn from a seed, then a check of what everyone
// saw against the invariants a render farm must keep. See SOAK.md.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { signDevelopmentToken } from '../src/adapters/auth/jwt.ts';
import { TERMINAL_STEPS } from '../src/domain/jobs/state-machine.ts';
import { numberOption, parseCommandLine } from '../scripts/lib/command-line.ts';
import { BENCH_SECRETS, withClient } from '../bench/lib/service.ts';
import { type Check, checkDatabase, checkLeases, checkLiveness, checkMemory, checkServerErrors, finalJobs, memoryGrowth, unreachableWindows } from './lib/checker.ts';
import { type Cluster, startCluster } from './lib/cluster.ts';
import { HEALTHY } from './lib/fault-proxy.ts';
import { type FaultRecord, type PlannedFault, planFaults } from './lib/faults.ts';
import { type FleetGroups, type LeaseSpan, type NodeMoment, startFleetGroups } from './lib/fleet-groups.ts';
import { RequestHistory } from './lib/history.ts';
import { makeTestNetwork, type TestNetwork } from './lib/network.ts';
import { renderReport } from './lib/report.ts';
import { GRAPHQL_WS_INVARIANT, LEGACY_WS_INVARIANT, startSubscribers } from './lib/subscribers.ts';
import { startUsers } from './lib/users.ts';

const USAGE = `Usage: npm run soak -- [options]

  --duration S      seconds of load under faults, at least 30 (default 300); the farm then drains
  --seed N          seed of the fault schedule and of every simulated choice (default: drawn, printed)
  --nodes N         simulated render nodes, dealt over 3 agent groups (default 240)
  --users N         simulated users (default 12)
  --report FILE     where the Markdown report goes (default soak-report.md)
  --rss-limit-mb N  the RSS a replica must stay under (default 1024)

Exits 0 when every invariant held, 1 when one was violated, 2 on a bad argument.
`;

const parsed = parseCommandLine(USAGE, {
  duration: { type: 'string' },
  seed: { type: 'string' },
  nodes: { type: 'string' },
  users: { type: 'string' },
  report: { type: 'string', default: 'soak-report.md' },
  'rss-limit-mb': { type: 'string' },
});
const positiveInteger = (n: number) => Number.isInteger(n) && n > 0;
const durationSec = numberOption(USAGE, 'duration', parsed.duration, (n) => n >= 30) ?? 300;
const seed = numberOption(USAGE, 'seed', parsed.seed, (n) => Number.isInteger(n) && n >= 0) ?? randomBytes(4).readUInt32LE();
const groupCount = 3;
const nodes = numberOption(USAGE, 'nodes', parsed.nodes, (n) => positiveInteger(n) && n >= groupCount) ?? 240;
const users = numberOption(USAGE, 'users', parsed.users, positiveInteger) ?? 12;
const rssLimitBytes = (numberOption(USAGE, 'rss-limit-mb', parsed['rss-limit-mb'], positiveInteger) ?? 1024) * 2 ** 20;
const REPLICAS = 3;
const REPLICA_INDEXES = Array.from({ length: REPLICAS }, (_unused, index) => index);
/** How long the farm gets after the load to bring every job to its end. */
const DRAIN_MS = Math.max(60_000, durationSec * 100);
const LIFT_ATTEMPTS = 10;
/** How often the monitor looks for Offline nodes and reads the replicas' memory. */
const LOOK_MS = 2_000;

const say = (line: string) => process.stdout.write(`soak: ${line}\n`);
const rootDir = fileURLToPath(new URL('..', import.meta.url));
const commit = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: rootDir, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

say(`seed ${seed}, ${durationSec} s of load, ${nodes} nodes, ${users} users (repeat with --seed ${seed} --duration ${durationSec})`);
const startedAt = new Date();
const history = new RequestHistory();
const faults: FaultRecord[] = [];
const leases = new Map<number, LeaseSpan[]>();
const moments: NodeMoment[] = [];
const sightings: Array<{ nodeId: string; at: number }> = [];
/** Replicas that exited without the soak killing them. */
const crashes: Array<{ replica: number; at: number }> = [];
const rssSamples: Array<{ at: number; replica: number; bytes: number }> = [];
let looks = 0;

let network: TestNetwork | undefined;
let cluster: Cluster | undefined;
let fleet: FleetGroups | undefined;
const cleanUp = async () => {
  await fleet?.stop().catch(() => undefined);
  await cluster?.close().catch(() => undefined);
  await network?.close().catch(() => undefined);
};
process.once('SIGINT', () => {
  say('interrupted; stopping what was started');
  void cleanUp().then(() => process.exit(130));
});

async function main(): Promise<number> {
  network = await makeTestNetwork(groupCount);
  say(network.kind === 'namespaces' ? `agents on ${groupCount} test hosts in network namespaces of their own` : `no network namespaces (${network.reason}); the fault proxies partition the agents`);
  cluster = await startCluster({ replicas: REPLICAS });
  const running = cluster;
  say(`${REPLICAS} replicas ready: ${running.urls.join(' ')}`);
  const adminToken = await signDevelopmentToken(BENCH_SECRETS.JWT_SECRET, { sub: randomUUID(), admin: true });
  fleet = await startFleetGroups({
    network,
    groups: groupCount,
    nodesPerGroup: Math.ceil(nodes / groupCount),
    ports: running.ports,
    seed,
    fleet: { adminToken, frameMs: 150, failureRate: 0.02, crashRate: 0.02, region: ['eu', 'us'], aeVersion: '24.1', connections: 64 },
  });
  const groups = fleet.groups;
  say(`${fleet.groupOf.size} nodes online`);

  const subscribers = startSubscribers({ urls: running.urls, history, seed });
  const workload = await startUsers({
    urls: running.urls,
    users,
    seed,
    jwtSecret: BENCH_SECRETS.JWT_SECRET,
    history,
    onJob: ({ id, token }) => subscribers.follow(id, token),
  });

  // ------------------------------------------------------------------ watching
  const down = new Set<number>();
  const collect = async () => {
    for (const group of groups) {
      const collected = await group.collect();
      history.merge(collected.history);
      moments.push(...collected.moments);
      leases.set(group.index, collected.leases);
    }
  };
  const look = async () => {
    const at = Date.now();
    for (const index of running.exited()) {
      if (down.has(index)) continue;
      crashes.push({ replica: index, at });
      say(`replica ${index} exited on its own; starting it again`);
      down.add(index);
      try {
        await running.killReplica(index);
        await running.startReplica(index);
        down.delete(index);
      } catch (error) {
        say(`replica ${index} did not start again: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    running.rss().forEach((bytes, replica) => {
      if (bytes !== undefined) rssSamples.push({ at, replica, bytes });
    });
    const replica = REPLICA_INDEXES.find((index) => !down.has(index)) ?? 0;
    try {
      const answer = await fetch(`${running.urls[replica]}/v1/nodes?status=Offline`, { headers: { authorization: `Bearer ${adminToken}` }, signal: AbortSignal.timeout(5_000) });
      history.record({ door: 'rest', route: 'GET /v1/nodes', replica, status: answer.status, at: Date.now() });
      if (answer.ok) {
        looks++;
        const body = (await answer.json()) as { data: Array<{ id: string }> };
        for (const node of body.data) if (fleet?.groupOf.has(node.id)) sightings.push({ nodeId: node.id, at });
      }
    } catch {
      history.record({ door: 'rest', route: 'GET /v1/nodes', replica, status: 0, at: Date.now() });
    }
  };
  let watching = true;
  const watcher = (async () => {
    let lastCollect = Date.now();
    while (watching) {
      await look();
      if (Date.now() - lastCollect > 10_000) {
        await collect();
        lastCollect = Date.now();
      }
      await sleep(LOOK_MS);
    }
  })();

  // ------------------------------------------------------------------ faults
  const plan = planFaults({ seed, durationMs: durationSec * 1000, replicas: REPLICAS, groups: groupCount });
  say(`${plan.length} faults planned`);
  const loadStart = Date.now();
  const lift: Array<Promise<void>> = [];
  const apply = async (fault: PlannedFault, record: FaultRecord): Promise<() => Promise<void>> => {
    const group = groups[fault.target ?? 0];
    switch (fault.kind) {
      case 'replica-kill': {
        const index = fault.target ?? 0;
        down.add(index);
        await running.killReplica(index);
        return async () => {
          await running.startReplica(index);
          down.delete(index);
        };
      }
      case 'postgres-restart':
        await running.postgres.stop();
        return () => running.postgres.start();
      case 'redis-restart':
        await running.redis.stop();
        return () => running.redis.start();
      case 'agent-kill': {
        const killed = await group!.killWorking(fault.nodes ?? 1);
        record.nodeIds = killed;
        return () => group!.revive(killed);
      }
      case 'clock-skew-within':
      case 'clock-skew-beyond': {
        const picked = await group!.pick(fault.nodes ?? 1);
        record.nodeIds = picked;
        await group!.skew(picked, fault.skewSec ?? 0);
        return () => group!.skew(picked, 0);
      }
      case 'network-partition':
        if (network?.kind === 'namespaces') {
          await network.partition(fault.target ?? 0, true);
          return () => (network as TestNetwork).partition(fault.target ?? 0, false);
        }
        await group!.network(fault.network ?? HEALTHY);
        return () => group!.network(HEALTHY);
      case 'network-delay':
      case 'network-loss':
        await group!.network(fault.network ?? HEALTHY);
        return () => group!.network(HEALTHY);
    }
  };
  const runFault = async (fault: PlannedFault) => {
    await sleep(loadStart + fault.at - Date.now());
    const record: FaultRecord = { ...fault, startedAt: Date.now() };
    faults.push(record);
    say(`${Math.round((record.startedAt - loadStart) / 1000)} s: ${fault.kind}${fault.target === undefined ? '' : ` on ${fault.kind === 'replica-kill' ? 'replica' : 'group'} ${fault.target}`} for ${(fault.forMs / 1000).toFixed(0)} s`);
    let undo: (() => Promise<void>) | undefined;
    try {
      undo = await apply(fault, record);
    } catch (error) {
      record.error = `apply: ${error instanceof Error ? error.message : String(error)}`;
    }
    await sleep(record.startedAt + fault.forMs - Date.now());
    // A lift that fails (a replica that cannot start while Redis is away) is tried again: the
    // farm must get its part back.
    for (let attempt = 1; undo && attempt <= LIFT_ATTEMPTS; attempt++) {
      try {
        await undo();
        break;
      } catch (error) {
        if (attempt === LIFT_ATTEMPTS) record.error = `lift: ${error instanceof Error ? error.message : String(error)}`;
        else record.liftRetries = attempt;
        await sleep(2_000);
      }
    }
    record.endedAt = Date.now();
  };
  for (const fault of plan) lift.push(runFault(fault));
  await Promise.all(lift);
  await sleep(Math.max(0, loadStart + durationSec * 1000 - Date.now()));
  say('load over, faults lifted; users stop submitting and the farm drains');

  // ------------------------------------------------------------------ drain
  await workload.stop();
  const drainStart = Date.now();
  const openJobs = () =>
    withClient(running.databaseUrl, async (client) => {
      const answer = await client.query<{ open: string }>(`SELECT count(*) AS open FROM render_jobs WHERE step::text <> ALL($1)`, [TERMINAL_STEPS]);
      return Number(answer.rows[0]?.open ?? 0);
    });
  while (Date.now() - drainStart < DRAIN_MS && (await openJobs()) > 0) await sleep(2_000);
  // Subscribers hear the last steps a moment after they commit.
  const settle = Date.now();
  while (Date.now() - settle < 15_000 && subscribers.stats().open > 0) await sleep(500);
  const drainSec = (Date.now() - drainStart) / 1000;
  watching = false;
  await watcher;
  await collect();
  const endOfRun = Date.now();
  const fleetStats = (await Promise.all(groups.map(async (group) => (await group.collect()).stats)));
  await subscribers.stop();

  // ------------------------------------------------------------------ checks
  const [databaseChecks, finals, jobCounts] = await withClient(running.databaseUrl, async (client) => [
    await checkDatabase(client),
    await finalJobs(client),
    Object.fromEntries((await client.query<{ step: string; count: string }>(`SELECT step::text, count(*) FROM render_jobs GROUP BY step ORDER BY step`)).rows.map((row) => [row.step, Number(row.count)])),
  ] as const);
  const subscriberViolations = subscribers.audit(finals);
  const windows = unreachableWindows(moments, faults, fleet.groupOf, endOfRun);
  const checks: Check[] = [
    ...databaseChecks,
    checkLeases([...leases.values()].flat()),
    ...[GRAPHQL_WS_INVARIANT, LEGACY_WS_INVARIANT].map((invariant) => ({
      invariant,
      checked: subscribers.stats().followed,
      violations: subscriberViolations.filter((violation) => violation.invariant === invariant),
    })),
    checkServerErrors(history.serverErrors, history.serverErrorCount, faults),
    {
      invariant: 'no replica exited but those the soak killed',
      checked: REPLICAS,
      violations: crashes.map(({ replica, at }) => ({ invariant: 'no replica exited but those the soak killed', detail: `replica ${replica} exited on its own at ${new Date(at).toISOString()}` })),
    },
    checkLiveness(sightings, windows, looks),
    checkMemory(rssSamples, rssLimitBytes),
  ];

  const sum = (pick: (stats: (typeof fleetStats)[number]) => number) => fleetStats.reduce((total, stats) => total + pick(stats), 0);
  const report = renderReport({
    seed,
    durationSec,
    commit,
    startedAt,
    wallSec: (Date.now() - startedAt.getTime()) / 1000,
    setup: { replicas: REPLICAS, nodes: fleet.groupOf.size, groups: groupCount, users, network: network.kind === 'namespaces' ? 'agent groups on test hosts of their own (network namespaces); partitions take a group\'s link down; delay and loss come from a fault proxy in each namespace' : `fault proxies only (${network.reason})` },
    faults,
    history,
    checks,
    workload: workload.stats(),
    fleet: {
      'frames accepted': sum((stats) => stats.framesAccepted),
      'chunks completed': sum((stats) => stats.chunksCompleted),
      'stale reports refused': sum((stats) => stats.staleReports),
      'crashes reported': sum((stats) => stats.crashesReported),
      'requests retried': sum((stats) => stats.retries),
    },
    subscribers: subscribers.stats(),
    jobs: jobCounts,
    rss: REPLICA_INDEXES.map((replica) => {
      const mine = rssSamples.filter((sample) => sample.replica === replica).map((sample) => sample.bytes / 2 ** 20);
      return { replica, maxMiB: Math.max(0, ...mine), lastMiB: mine.at(-1) ?? 0 };
    }),
    rssGrowth: memoryGrowth(rssSamples),
    drainSec,
  });
  writeFileSync(parsed.report, report);
  process.stdout.write(`\n${report}\n`);
  say(`report written to ${parsed.report}`);
  return checks.some((check) => check.violations.length > 0) ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  process.stderr.write(`soak: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
} finally {
  await cleanUp();
}
process.exit(code);
