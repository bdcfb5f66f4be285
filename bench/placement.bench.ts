// Placement: one pass of the placement rules over 10,000 pending chunks and 2,000 free nodes.
// The baseline is the simplest assignment that could work on the same input (queue order, first
// free node that runs the version and is not blocked, no preferences), so the ratio says what the
// preference rules cost.
import { performance } from 'node:perf_hooks';
import { type NodeCandidate, placeWork, type WorkItem } from '../src/domain/scheduling/placement.ts';
import { compared, report } from './lib/report.ts';
import { summarize } from './lib/stats.ts';

const CHUNKS = 10_000;
const NODES = 2_000;
const PASSES = 60;
const GOAL_MS = 100;

/** A small deterministic generator, so every run places the same fleet and queue. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return {
    next,
    int: (below: number) => Math.floor(next() * below),
    pick: <T>(values: readonly T[]) => values[Math.floor(next() * values.length)] as T,
  };
}

const REGIONS = ['eu-west', 'eu-central', 'us-east', 'us-west', 'ap-south', 'sa-east'];
const AE_VERSIONS = ['23.6', '24.1', '24.6', '25.0'];
const TEMPLATES = Array.from({ length: 400 }, (_, index) => `md5-${index.toString(16).padStart(8, '0')}`);

function generateFleet(seed = 1): NodeCandidate[] {
  const rng = random(seed);
  return Array.from({ length: NODES }, (_, index) => {
    const current = rng.pick(AE_VERSIONS);
    const versions = new Set([current]);
    // Some nodes have a second version installed.
    if (rng.next() < 0.3) versions.add(rng.pick(AE_VERSIONS));
    const templates = new Set<string>();
    const held = rng.int(12);
    for (let count = 0; count < held; count++) templates.add(rng.pick(TEMPLATES));
    return {
      id: `node-${index.toString().padStart(5, '0')}`,
      region: rng.pick(REGIONS),
      aeVersions: versions,
      templates,
      priority: rng.int(4),
      cpuPct: rng.int(100),
    };
  });
}

function generateQueue(nodes: readonly NodeCandidate[], seed = 2): WorkItem[] {
  const rng = random(seed);
  const items: WorkItem[] = [];
  let jobIndex = 0;
  while (items.length < CHUNKS) {
    const jobId = `job-${jobIndex++}`;
    const chunks = 5 + rng.int(40);
    const blocked = new Set<string>();
    // One job in ten has crashed on a few nodes.
    if (rng.next() < 0.1) for (let count = 1 + rng.int(5); count > 0; count--) blocked.add(rng.pick(nodes).id);
    const job = {
      jobId,
      queueRank: rng.pick([0, 1, 1, 1, 2]),
      queuedAt: 1_700_000_000_000 + rng.int(86_400_000),
      aeVersion: rng.next() < 0.2 ? null : rng.pick(AE_VERSIONS),
      templateMd5: rng.next() < 0.1 ? null : rng.pick(TEMPLATES),
      preferredRegion: rng.next() < 0.5 ? null : rng.pick(REGIONS),
      blockedNodeIds: blocked,
    };
    for (let order = 0; order < chunks && items.length < CHUNKS; order++) {
      items.push({ ...job, key: `${jobId}:${order}`, order });
    }
  }
  return items;
}

/** The baseline: queue order, first free node that can run the item, nothing else considered. */
function naiveGreedy(items: readonly WorkItem[], nodes: readonly NodeCandidate[]) {
  const queue = [...items].sort(
    (a, b) => a.queueRank - b.queueRank || a.queuedAt - b.queuedAt || a.order - b.order,
  );
  const free = [...nodes];
  const placements: Array<{ item: WorkItem; nodeId: string }> = [];
  for (const item of queue) {
    if (free.length === 0) break;
    const index = free.findIndex(
      (node) => !item.blockedNodeIds.has(node.id) && (item.aeVersion === null || node.aeVersions.has(item.aeVersion)),
    );
    if (index === -1) continue;
    placements.push({ item, nodeId: free[index]!.id });
    free.splice(index, 1);
  }
  return placements;
}

function timed(fn: () => unknown): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

const nodes = generateFleet();
const items = generateQueue(nodes);

// Warm both up so the JIT has compiled them before anything is timed.
for (let round = 0; round < 5; round++) {
  placeWork(items, nodes);
  naiveGreedy(items, nodes);
}
const placed = placeWork(items, nodes).length;
const naivePlaced = naiveGreedy(items, nodes).length;

// Interleaved, so a noisy neighbour slows both sides alike.
const rules: number[] = [];
const naive: number[] = [];
for (let pass = 0; pass < PASSES; pass++) {
  rules.push(timed(() => placeWork(items, nodes)));
  naive.push(timed(() => naiveGreedy(items, nodes)));
}
const ruleStats = summarize(rules);
const naiveStats = summarize(naive);
const input = `${CHUNKS.toLocaleString('en-US')} chunks, ${NODES.toLocaleString('en-US')} nodes`;

report([
  compared(
    {
      benchmark: 'placement',
      metric: 'pass median ms',
      value: ruleStats.median,
      baseline: naiveStats.median,
      goal: `≤ ${GOAL_MS} ms`,
      met: ruleStats.median <= GOAL_MS,
      note: `${input}; ${placed} placed (naive greedy: ${naivePlaced}); ${PASSES} passes`,
    },
    false,
  ),
  compared(
    {
      benchmark: 'placement',
      metric: 'pass p99 ms',
      value: ruleStats.p99,
      baseline: naiveStats.p99,
      goal: `≤ ${GOAL_MS} ms`,
      met: ruleStats.p99 <= GOAL_MS,
    },
    false,
  ),
]);
