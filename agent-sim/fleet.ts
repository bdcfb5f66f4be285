// A fleet of simulated render nodes speaking the signed agent protocol (docs/agent-protocol.md)
// to a service over real HTTP. Tests, benchmarks, the demo and `npm run agent-sim` start one.
import { randomBytes } from 'node:crypto';
import { type FleetEvent, type FleetStats, Tally } from './events.ts';
import { Transport } from './http.ts';
import { type LateReport, type NodeBehaviour, SimNode } from './node.ts';
import { createRandom, streamSeed } from './random.ts';

export type { AgentCommand, FleetEvent, FleetStats } from './events.ts';
export type { LateReport } from './node.ts';

export interface NodeKey {
  id: string;
  agentKey: string;
  /** Known when the fleet registered the node itself. */
  name?: string;
}

export interface FleetOptions {
  /**
   * The service's base URL, without /v1 (e.g. http://localhost:4000); or its replicas' URLs:
   * nodes are dealt out over them, and a node that gets no answer moves to the next.
   */
  url: string | readonly string[];
  nodes: number;
  /** Registers `nodes` new nodes (POST /v1/nodes) with this admin JWT... */
  adminToken?: string;
  /** ...or runs already registered ones. */
  keys?: NodeKey[];
  /** Region of registered nodes; a list is dealt out round-robin. */
  region?: string | string[];
  aeVersion?: string;
  /** Template md5s every node holds in its cache at start. */
  templates?: string[];
  /** Render time of one frame. */
  frameMs?: number;
  /** Per chunk: probability of a fail report, a crash report, or going silent part-way. */
  failureRate?: number;
  crashRate?: number;
  hangRate?: number;
  /** Overrides the service's next_heartbeat_in_sec (tests). */
  heartbeatSeconds?: number;
  /** Same seed, same choices; without one a seed is drawn and shown in `fleet.seed`. */
  seed?: number;
  /** Keep-alive sockets shared by the whole fleet. */
  connections?: number;
  /** Nodes registering or coming online at the same time while the fleet starts (32). */
  startupConcurrency?: number;
  onEvent?: (event: FleetEvent) => void;
}

export interface Fleet {
  /** Node ids, in the order the nodes were registered or given. */
  readonly nodes: readonly string[];
  readonly keys: readonly NodeKey[];
  readonly seed: number;
  stats(): FleetStats;
  /** Stops the node abruptly mid-work: no more requests from it; its work in hand is abandoned. */
  kill(nodeId: string): void;
  /** A killed node comes back: it reports its old work once (answered with the returned outcome;
   * 409 STALE_LEASE when the work moved on), comes online again and heartbeats. */
  revive(nodeId: string): Promise<LateReport | undefined>;
  /** Sets how far the node's clock is off (seconds, + ahead); its next signatures carry it. */
  skew(nodeId: string, seconds: number): void;
  /** Whether the node is alive and has a piece of work in hand. */
  working(nodeId: string): boolean;
  /** Stops every node and closes the connections; resolves when no request is outstanding. */
  stop(): Promise<void>;
}

const MD5 = /^[0-9a-f]{32}$/i;
const STARTUP_CONCURRENCY = 32;

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`startFleet: ${message}`);
}

function rate(value: number | undefined, name: string): number {
  const chosen = value ?? 0;
  check(Number.isFinite(chosen) && chosen >= 0 && chosen <= 1, `${name} must be between 0 and 1`);
  return chosen;
}

async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      try {
        await work(items[index] as T, index);
      } catch (error) {
        // The first failure decides the outcome; the other workers take nothing more.
        next = items.length;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function register(
  transport: Transport,
  options: FleetOptions,
  emit: (event: FleetEvent) => void,
): Promise<NodeKey[]> {
  const regions = Array.isArray(options.region) ? options.region : [options.region ?? 'sim'];
  check(regions.length > 0, 'region must not be an empty list');
  // Node names are unique per service, so each run gets its own prefix whatever the seed.
  const runId = randomBytes(3).toString('hex');
  const keys: NodeKey[] = [];
  const indexes = Array.from({ length: options.nodes }, (_unused, index) => index);
  await eachLimited(indexes, options.startupConcurrency ?? STARTUP_CONCURRENCY, async (index) => {
    const name = `sim-${runId}-${index + 1}`;
    const answer = await transport.bearer(options.adminToken as string, 'POST', '/v1/nodes', {
      name,
      region: regions[index % regions.length],
      node_ip: `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`,
      worker_port: 8181,
      current_ae_version: options.aeVersion ?? '24.1',
      ram_gb: 64,
      cpu_cores: 16,
    });
    const body = answer.body as { id?: unknown; agent_key?: unknown; error?: { message?: string } } | undefined;
    if (answer.status !== 201 || typeof body?.id !== 'string' || typeof body.agent_key !== 'string') {
      const reason = answer.failure ?? body?.error?.message ?? `HTTP ${answer.status}`;
      throw new Error(`Registering node ${name} failed (${answer.code ?? answer.status}): ${reason}`);
    }
    keys[index] = { id: body.id, agentKey: body.agent_key, name };
    emit({ type: 'registered', nodeId: body.id, name });
  });
  return keys;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  check(Number.isInteger(options.nodes) && options.nodes > 0, 'nodes must be a positive integer');
  check(options.adminToken !== undefined || options.keys !== undefined, 'give adminToken (to register nodes) or keys');
  check(!options.keys || options.keys.length >= options.nodes, `keys holds fewer than ${options.nodes} nodes`);
  const frameMs = options.frameMs ?? 50;
  check(Number.isFinite(frameMs) && frameMs >= 0, 'frameMs must be 0 or more');
  const heartbeatSeconds = options.heartbeatSeconds;
  check(heartbeatSeconds === undefined || heartbeatSeconds > 0, 'heartbeatSeconds must be positive');
  const templates = (options.templates ?? []).map((md5) => md5.toLowerCase());
  check(templates.every((md5) => MD5.test(md5)), 'templates must be md5 hex digests');
  const behaviour: NodeBehaviour = {
    frameMs,
    failureRate: rate(options.failureRate, 'failureRate'),
    crashRate: rate(options.crashRate, 'crashRate'),
    hangRate: rate(options.hangRate, 'hangRate'),
    ...(heartbeatSeconds === undefined ? {} : { heartbeatSeconds }),
    aeVersion: options.aeVersion ?? '24.1',
    templates,
  };
  const seed = (options.seed ?? randomBytes(4).readUInt32LE()) >>> 0;
  const tally = new Tally();
  const listener = options.onEvent;
  const emit = listener ? (event: FleetEvent) => listener(event) : () => {};
  const transport = new Transport(options.url, { connections: options.connections ?? 64 });

  let keys: NodeKey[];
  try {
    keys = options.keys ? options.keys.slice(0, options.nodes) : await register(transport, options, emit);
  } catch (error) {
    transport.close();
    throw error;
  }
  const context = { transport, behaviour, tally, emit };
  const nodes = keys.map(
    (key, index) =>
      new SimNode(
        key.id.toLowerCase(),
        key.agentKey,
        context,
        createRandom(streamSeed(seed, index, 0)),
        createRandom(streamSeed(seed, index, 1)),
        index,
      ),
  );
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const nodeOf = (nodeId: string): SimNode => {
    const node = byId.get(nodeId.toLowerCase());
    if (!node) throw new Error(`No node ${nodeId} in this fleet`);
    return node;
  };
  await eachLimited(nodes, options.startupConcurrency ?? STARTUP_CONCURRENCY, (node) => node.start());

  let stopped: Promise<void> | undefined;
  return {
    nodes: nodes.map((node) => node.id),
    keys,
    seed,
    stats(): FleetStats {
      let alive = 0;
      let online = 0;
      for (const node of nodes) {
        if (node.alive) alive++;
        if (node.online) online++;
      }
      return {
        nodes: nodes.length,
        alive,
        online,
        heartbeats: tally.heartbeats,
        framesRendered: tally.framesRendered,
        framesAccepted: tally.framesAccepted,
        staleReports: tally.staleReports,
        crashesReported: tally.crashesReported,
        chunksCompleted: tally.chunksCompleted,
        chunksFailed: tally.chunksFailed,
        chunksHung: tally.chunksHung,
        replicasReady: tally.replicasReady,
        encodes: tally.encodes,
        snapshots: tally.snapshots,
        updatesApplied: tally.updatesApplied,
        lateReports: { sent: tally.lateSent, refusedStale: tally.lateRefusedStale },
        commands: { ...tally.commands },
        unsupportedCommands: { ...tally.unsupportedCommands },
        errors: { ...tally.errors },
        requests: tally.requests,
        retries: tally.retries,
      };
    },
    kill(nodeId) {
      nodeOf(nodeId).kill();
    },
    revive(nodeId) {
      return nodeOf(nodeId).revive();
    },
    skew(nodeId, seconds) {
      nodeOf(nodeId).clockSkewSec = seconds;
    },
    working(nodeId) {
      return nodeOf(nodeId).working;
    },
    stop() {
      stopped ??= Promise.all(nodes.map((node) => node.stop())).then(() => transport.close());
      return stopped;
    },
  };
}
