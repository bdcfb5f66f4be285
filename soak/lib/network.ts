// The soak's own test hosts: one network namespace per agent group, joined to the host by a veth
// pair, so that a partition is a link that goes down, as on a real network, rather than a program
// that pretends. Making namespaces needs root and iproute2; without them the groups run on the
// host and their fault proxies partition them instead (fault-proxy.ts).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface GroupHost {
  /** The namespace to run the group's process in. */
  namespace: string;
  /** The host's end of the link, where the replicas are reached from inside. */
  hostAddress: string;
}

export interface TestNetwork {
  /** `namespaces` when the groups have hosts of their own, `proxy` when they share the host's network. */
  kind: 'namespaces' | 'proxy';
  /** Why namespaces could not be made, when kind is proxy. */
  reason?: string;
  hosts: GroupHost[];
  /** Takes a group's link down (true) or up again. */
  partition(group: number, down: boolean): Promise<void>;
  close(): Promise<void>;
}

const ip = (...args: string[]) => run('ip', args);

/** Makes `groups` namespaces, or says why it cannot and falls back to the proxies. */
export async function makeTestNetwork(groups: number): Promise<TestNetwork> {
  // Names carry the soak's pid so that two soaks on one machine keep apart; a link name has at most 15 characters.
  const tag = process.pid % 100_000;
  const made: string[] = [];
  const hosts: GroupHost[] = [];
  const linkOf = (group: number) => `sk${tag}g${group}`;
  const close = async () => {
    // Deleting a namespace deletes the pair's end inside it, and with it the host's end.
    for (const namespace of made) await ip('netns', 'del', namespace).catch(() => undefined);
  };
  try {
    // Subnets no other link has (another soak's, or a test's), so that routes never collide.
    const { stdout: addresses } = await ip('-o', '-4', 'addr', 'show');
    const taken = new Set([...addresses.matchAll(/inet 10\.213\.(\d+)\./g)].map((match) => Number(match[1])));
    const free = Array.from({ length: 256 }, (_unused, index) => index).filter((index) => !taken.has(index));
    if (free.length < groups) throw new Error('no free 10.213.x.0/24 subnet for the test hosts');
    for (let group = 0; group < groups; group++) {
      const namespace = `soak-${tag}-g${group}`;
      const subnet = `10.213.${free[group]}`;
      await ip('netns', 'add', namespace);
      made.push(namespace);
      await ip('link', 'add', linkOf(group), 'type', 'veth', 'peer', 'name', `${linkOf(group)}n`);
      await ip('link', 'set', `${linkOf(group)}n`, 'netns', namespace);
      await ip('addr', 'add', `${subnet}.1/24`, 'dev', linkOf(group));
      await ip('link', 'set', linkOf(group), 'up');
      await ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up');
      await ip('netns', 'exec', namespace, 'ip', 'addr', 'add', `${subnet}.2/24`, 'dev', `${linkOf(group)}n`);
      await ip('netns', 'exec', namespace, 'ip', 'link', 'set', `${linkOf(group)}n`, 'up');
      hosts.push({ namespace, hostAddress: `${subnet}.1` });
    }
  } catch (error) {
    await close();
    const reason = error instanceof Error ? error.message.split('\n')[0] ?? error.message : String(error);
    return { kind: 'proxy', reason, hosts: [], partition: async () => undefined, close: async () => undefined };
  }
  return {
    kind: 'namespaces',
    hosts,
    async partition(group, down) {
      await ip('link', 'set', linkOf(group), down ? 'down' : 'up');
    },
    close,
  };
}
