// The soak's fleet: groups of simulated agents, each a process (fleet-child.ts) on a test host of
// its own where there is one, and the soak's handle on them.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FleetOptions } from '../../agent-sim/fleet.ts';
import type { NetworkFault } from './fault-proxy.ts';
import type { FromGroup, LeaseSpan, NodeMoment, ToGroup } from './fleet-child.ts';
import type { TestNetwork } from './network.ts';

const childFile = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));
const START_DEADLINE_MS = 180_000;

type Collected = Extract<FromGroup, { type: 'collected' }>;

export class FleetGroup {
  nodes: string[] = [];
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(message: FromGroup): void; reject(error: Error): void }>();
  private started?: { resolve(): void; reject(error: Error): void };
  readonly exited: Promise<void>;

  constructor(
    readonly index: number,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const failAll = (error: Error) => {
      for (const waiting of this.waiting.values()) waiting.reject(error);
      this.waiting.clear();
      this.started?.reject(error);
    };
    child.once('exit', (code, signal) => failAll(new Error(`Agent group ${index} exited (${code ?? signal})`)));
    child.on('message', (message: FromGroup) => {
      if (message.type === 'failed') return failAll(new Error(`Agent group ${index} failed: ${message.message}`));
      if (message.type === 'started') {
        this.nodes = message.nodes;
        return this.started?.resolve();
      }
      const waiting = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      waiting?.resolve(message);
    });
  }

  start(message: Extract<ToGroup, { type: 'start' }>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.started = { resolve, reject };
      this.child.send(message);
    });
  }

  private ask(message: Record<string, unknown> & { type: Exclude<ToGroup['type'], 'start'> }): Promise<FromGroup> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ ...message, id });
    });
  }

  private async nodeIds(message: Parameters<FleetGroup['ask']>[0]): Promise<string[]> {
    const answer = await this.ask(message);
    return answer.type === 'done' ? (answer.nodeIds ?? []) : [];
  }

  /** Kills up to `count` nodes that have work in hand; answers which. */
  killWorking = (count: number) => this.nodeIds({ type: 'kill-working', count });
  /** Up to `count` of the group's nodes, drawn at random. */
  pick = (count: number) => this.nodeIds({ type: 'pick', count });
  revive = (nodeIds: string[]) => this.ask({ type: 'revive', nodeIds }).then(() => undefined);
  skew = (nodeIds: string[], seconds: number) => this.ask({ type: 'skew', nodeIds, seconds }).then(() => undefined);
  network = (fault: NetworkFault) => this.ask({ type: 'network', fault }).then(() => undefined);

  async collect(): Promise<Collected> {
    const answer = await this.ask({ type: 'collect' });
    if (answer.type !== 'collected') throw new Error(`Agent group ${this.index} answered ${answer.type} to collect`);
    return answer;
  }

  async stop(): Promise<void> {
    await this.ask({ type: 'stop' }).catch(() => undefined);
    await this.exited;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

export interface FleetGroups {
  groups: FleetGroup[];
  /** Which group a node is in. */
  groupOf: Map<string, number>;
  stop(): Promise<void>;
}

/**
 * Starts `groups` agent groups of `nodesPerGroup` nodes each: on the network's test hosts when it
 * has them, reaching the replicas at `ports` through each group's fault proxies. Resolves once
 * every node is online.
 */
export async function startFleetGroups(options: {
  network: TestNetwork;
  groups: number;
  nodesPerGroup: number;
  ports: number[];
  seed: number;
  fleet: Omit<FleetOptions, 'onEvent' | 'url' | 'seed' | 'nodes'>;
}): Promise<FleetGroups> {
  const groups = Array.from({ length: options.groups }, (_unused, index) => {
    const host = options.network.hosts[index];
    const node = [process.execPath, '--import', 'tsx', childFile];
    const [command, ...args] = host ? ['ip', 'netns', 'exec', host.namespace, ...node] : node;
    const child = spawn(command as string, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new FleetGroup(index, child);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(
        groups.map((group) =>
          group.start({
            type: 'start',
            group: group.index,
            host: options.network.hosts[group.index]?.hostAddress ?? '127.0.0.1',
            ports: options.ports,
            seed: options.seed + 1000 * (group.index + 1),
            fleet: { ...options.fleet, nodes: options.nodesPerGroup },
          }),
        ),
      ),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`the fleet was not online within ${START_DEADLINE_MS / 1000} s`)), START_DEADLINE_MS);
      }),
    ]);
  } catch (error) {
    for (const group of groups) group.kill();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const groupOf = new Map<string, number>();
  for (const group of groups) for (const node of group.nodes) groupOf.set(node, group.index);
  return {
    groups,
    groupOf,
    async stop() {
      await Promise.all(groups.map((group) => group.stop()));
    },
  };
}

export type { LeaseSpan, NodeMoment };
