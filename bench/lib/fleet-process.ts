// Simulated fleets in processes of their own (fleet-child.ts), so the simulator's CPU and event
// loop are its own and a slow simulator can be told apart from a slow service.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FleetOptions, FleetStats, NodeKey } from '../../agent-sim/fleet.ts';
import type { FleetWindow, FromFleet, ToFleet } from './fleet-child.ts';

const childFile = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));

export interface FleetProcesses {
  pids: number[];
  /** Starts counting; resolves with each process's counters at the start. */
  windowStart(): Promise<FleetStats[]>;
  /** Stops counting; resolves with what each process saw over the window. */
  windowEnd(): Promise<FleetWindow[]>;
  stop(): Promise<void>;
}

interface Waiting {
  resolve(message: FromFleet): void;
  reject(error: Error): void;
}

class Child {
  private readonly waiting = new Map<FromFleet['type'], Waiting>();
  readonly exited: Promise<void>;

  constructor(
    readonly process: ChildProcess,
    onEncoded: () => void,
  ) {
    this.exited = new Promise((resolve) => process.once('exit', () => resolve()));
    const failAll = (error: Error) => {
      for (const waiting of this.waiting.values()) waiting.reject(error);
      this.waiting.clear();
    };
    process.once('exit', (code) => failAll(new Error(`A simulated fleet exited with ${code}`)));
    process.on('message', (message: FromFleet) => {
      if (message.type === 'encoded') return onEncoded();
      if (message.type === 'failed') return failAll(new Error(`A simulated fleet failed: ${message.message}`));
      const waiting = this.waiting.get(message.type);
      this.waiting.delete(message.type);
      waiting?.resolve(message);
    });
  }

  ask<T extends FromFleet['type']>(message: ToFleet, answer: T): Promise<Extract<FromFleet, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.waiting.set(answer, { resolve: (reply) => resolve(reply as Extract<FromFleet, { type: T }>), reject });
      this.process.send(message);
    });
  }
}

/**
 * Deals `keys` out over `processes` fleets, starts them all (every node comes online over the
 * signed protocol) and resolves once every node is online. `onEncoded` hears of every job a node
 * encoded, from whichever process.
 */
export class FleetStartTimeout extends Error {}

export async function startFleetProcesses(options: {
  processes: number;
  keys: NodeKey[];
  fleet: Omit<FleetOptions, 'onEvent' | 'nodes' | 'keys' | 'adminToken'>;
  onEncoded: () => void;
  /** Past this, the processes are killed and FleetStartTimeout thrown: a service that cannot bring the fleet online. */
  deadlineMs: number;
}): Promise<FleetProcesses> {
  const children = Array.from(
    { length: options.processes },
    () => new Child(fork(childFile, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), options.onEncoded),
  );
  const shares = children.map((_child, index) => options.keys.filter((_key, position) => position % children.length === index));
  const started = Promise.all(
    children.map((child, index) =>
      child.ask(
        {
          type: 'start',
          options: {
            ...options.fleet,
            nodes: shares[index]?.length ?? 0,
            keys: shares[index],
            // Each process draws its own choices, repeatably.
            seed: (options.fleet.seed ?? 1) + index,
          },
        },
        'started',
      ),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      started,
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new FleetStartTimeout(`the fleet was not online within ${options.deadlineMs / 1000} s`)), options.deadlineMs);
      }),
    ]);
  } catch (error) {
    // Killed processes reject what was asked of them; that is this error's doing, not news.
    started.catch(() => undefined);
    for (const child of children) child.process.kill('SIGKILL');
    await Promise.all(children.map((child) => child.exited));
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    pids: children.map((child) => child.process.pid ?? 0),
    windowStart: () => Promise.all(children.map((child) => child.ask({ type: 'window-start' }, 'window-started').then((reply) => reply.stats))),
    windowEnd: () =>
      Promise.all(
        children.map((child) =>
          child.ask({ type: 'window-end' }, 'window-ended').then(({ type: _type, ...window }) => window),
        ),
      ),
    async stop() {
      await Promise.all(children.map((child) => child.ask({ type: 'stop' }, 'stopped').catch(() => undefined)));
      await Promise.all(children.map((child) => child.exited));
    },
  };
}
