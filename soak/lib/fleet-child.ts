// One group of the soak's simulated agents, in a process of its own and, where the soak could make
// one, in a network namespace of its own: the fleet reaches each replica through a fault proxy
// in that namespace, over the namespace's link to the host. Driven by fleet-group.ts over IPC.
import { type Fleet, type FleetEvent, type FleetOptions, startFleet } from '../../agent-sim/fleet.ts';
import { createRandom } from '../../agent-sim/random.ts';
import { type FaultProxy, type NetworkFault, startFaultProxy } from './fault-proxy.ts';
import { type HistorySummary, RequestHistory } from './history.ts';

/** One lease's accepted frame reports: when the first answer came and when the last report went out. */
export interface LeaseSpan {
  chunkId: string;
  lease: string;
  nodeId: string;
  firstAnsweredAt: number;
  lastSentAt: number;
}

/** What a group tells the soak about a node's own doings: the checker excuses these from liveness. */
export interface NodeMoment {
  nodeId: string;
  kind: 'killed' | 'revived' | 'restarting' | 'online';
  at: number;
}

export type ToGroup =
  | {
      type: 'start';
      group: number;
      /** Where the replicas listen, as seen from this process's namespace. */
      host: string;
      ports: number[];
      seed: number;
      fleet: Omit<FleetOptions, 'onEvent' | 'url' | 'seed'>;
    }
  | { type: 'kill-working'; count: number; id: number }
  | { type: 'revive'; nodeIds: string[]; id: number }
  | { type: 'skew'; nodeIds: string[]; seconds: number; id: number }
  | { type: 'pick'; count: number; id: number }
  | { type: 'network'; fault: NetworkFault; id: number }
  | { type: 'collect'; id: number }
  | { type: 'stop'; id: number };

export type FromGroup =
  | { type: 'started'; nodes: string[] }
  | { type: 'done'; id: number; nodeIds?: string[] }
  | { type: 'collected'; id: number; history: HistorySummary; leases: LeaseSpan[]; moments: NodeMoment[]; stats: ReturnType<Fleet['stats']> }
  | { type: 'failed'; message: string };

const tell = (message: FromGroup) => process.send?.(message);

let fleet: Fleet | undefined;
let proxies: FaultProxy[] = [];
let group = 0;
let random = createRandom(1);
let history = new RequestHistory();
const leases = new Map<string, LeaseSpan>();
let moments: NodeMoment[] = [];

/** `/v1/nodes/<id>/jobs/<id>/frames` → `/v1/nodes/:id/jobs/:id/frames`: counts by route, not by node. */
const routeOf = (method: string, path: string) => `${method} ${path.replace(/[0-9a-f]{8}-[0-9a-f-]{27,}/gi, ':id')}`;

function onEvent(event: FleetEvent): void {
  const now = Date.now();
  switch (event.type) {
    case 'answer':
      history.record({ door: 'agent', route: routeOf(event.method, event.path), replica: event.endpoint, status: event.status, at: now }, [`group:${group}`]);
      break;
    case 'frame': {
      if (!event.accepted || event.lease === undefined) break;
      history.frameAccepted(now, [`group:${group}`]);
      const key = `${event.frameJobId} ${event.lease}`;
      const span = leases.get(key);
      const sentAt = event.sentAt ?? now;
      if (span) span.lastSentAt = Math.max(span.lastSentAt, sentAt);
      else leases.set(key, { chunkId: event.frameJobId, lease: event.lease, nodeId: event.nodeId, firstAnsweredAt: now, lastSentAt: sentAt });
      break;
    }
    case 'killed':
    case 'revived':
      moments.push({ nodeId: event.nodeId, kind: event.type, at: now });
      break;
    case 'offline':
      moments.push({ nodeId: event.nodeId, kind: 'restarting', at: now });
      break;
    case 'online':
      moments.push({ nodeId: event.nodeId, kind: 'online', at: now });
      break;
    default:
  }
}

/** Up to `count` distinct items, drawn with the group's seeded stream. */
function draw<T>(items: readonly T[], count: number): T[] {
  const pool = [...items];
  const chosen: T[] = [];
  while (chosen.length < count && pool.length > 0) chosen.push(pool.splice(Math.floor(random() * pool.length), 1)[0] as T);
  return chosen;
}

async function handle(message: ToGroup): Promise<void> {
  if (message.type === 'start') {
    group = message.group;
    random = createRandom(message.seed);
    proxies = await Promise.all(message.ports.map((port, index) => startFaultProxy(message.host, port, createRandom(message.seed + 1 + index))));
    fleet = await startFleet({ ...message.fleet, url: proxies.map((proxy) => `http://127.0.0.1:${proxy.port}`), seed: message.seed, onEvent });
    return void tell({ type: 'started', nodes: [...fleet.nodes] });
  }
  const running = fleet;
  if (!running) throw new Error(`"${message.type}" before the group started`);
  switch (message.type) {
    case 'kill-working': {
      const chosen = draw(running.nodes.filter((node) => running.working(node)), message.count);
      for (const node of chosen) running.kill(node);
      return void tell({ type: 'done', id: message.id, nodeIds: chosen });
    }
    case 'revive':
      // A node revived by an earlier fault's end, or never killed, is left as it is.
      await Promise.all(message.nodeIds.map((node) => running.revive(node).catch(() => undefined)));
      return void tell({ type: 'done', id: message.id });
    case 'pick':
      return void tell({ type: 'done', id: message.id, nodeIds: draw(running.nodes, message.count) });
    case 'skew':
      for (const node of message.nodeIds) running.skew(node, message.seconds);
      return void tell({ type: 'done', id: message.id });
    case 'network':
      for (const proxy of proxies) proxy.set(message.fault);
      return void tell({ type: 'done', id: message.id });
    case 'collect': {
      // History and moments since the last collection; lease spans whole, as they still grow.
      const collected = { history: history.summary(), leases: [...leases.values()], moments, stats: running.stats() };
      history = new RequestHistory();
      moments = [];
      return void tell({ type: 'collected', id: message.id, ...collected });
    }
    case 'stop':
      await running.stop();
      await Promise.all(proxies.map((proxy) => proxy.close()));
      tell({ type: 'done', id: message.id });
      return void process.disconnect();
  }
}

process.on('message', (message: ToGroup) => {
  handle(message).catch((error: unknown) => tell({ type: 'failed', message: error instanceof Error ? error.stack ?? error.message : String(error) }));
});
