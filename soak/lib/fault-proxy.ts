// A TCP proxy that misbehaves on demand, between a group of simulated agents and one replica:
// it delays every piece of data, loses some (as TCP shows loss to the programs above it: a
// retransmission's wait, now and then a reset connection) or, in a partition, forwards nothing.
// The soak puts one per replica inside each agent group's network namespace; where namespaces
// cannot be made it is also what partitions a group.
import { createServer, type Server, Socket } from 'node:net';
import type { Random } from '../../agent-sim/random.ts';

export interface NetworkFault {
  /** Added to every piece of data, each way. */
  delayMs: number;
  /** Per piece of data: the probability it is "lost" and arrives one retransmission timeout late. */
  lossRate: number;
  /** Nothing gets through; connections hang until the partition ends, then are cut. */
  partitioned: boolean;
}

export const HEALTHY: NetworkFault = { delayMs: 0, lossRate: 0, partitioned: false };

/** TCP's first retransmission timeout, at least 200 ms on Linux; a lost segment costs about this. */
const RETRANSMIT_MS = 250;
/** Of the lost pieces, this share takes the connection down with it (a reset). */
const RESET_SHARE = 0.05;

export interface FaultProxy {
  port: number;
  set(fault: NetworkFault): void;
  close(): Promise<void>;
}

/** A proxy on 127.0.0.1 (of the namespace it runs in) to host:port. */
export async function startFaultProxy(host: string, port: number, random: Random): Promise<FaultProxy> {
  let fault = HEALTHY;
  const open = new Set<Socket>();

  /** Forwards from one socket to the other, each piece of data after the fault's wait, in order. */
  const forward = (from: Socket, to: Socket) => {
    let last = 0;
    from.on('data', (data: Buffer) => {
      if (fault.partitioned) return;
      let wait = fault.delayMs;
      if (fault.lossRate > 0 && random() < fault.lossRate) {
        if (random() < RESET_SHARE) return void from.destroy();
        wait += RETRANSMIT_MS;
      }
      if (wait === 0 && last <= Date.now()) return void to.write(data);
      // A later piece never overtakes an earlier one: TCP delivers in order.
      const due = Math.max(Date.now() + wait, last);
      last = due;
      setTimeout(() => {
        if (!to.destroyed) to.write(data);
      }, due - Date.now());
    });
  };

  const server: Server = createServer((client) => {
    open.add(client);
    client.on('error', () => client.destroy());
    client.once('close', () => open.delete(client));
    // Accepted and never answered: the partition's end cuts it.
    if (fault.partitioned) return;
    const upstream = new Socket();
    open.add(upstream);
    upstream.on('error', () => upstream.destroy());
    upstream.once('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    client.once('close', () => upstream.destroy());
    upstream.connect(port, host);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the fault proxy has no TCP address');
  return {
    port: address.port,
    set(next) {
      const healing = fault.partitioned && !next.partitioned;
      fault = next;
      // Connections that lived through a partition find their peer's state gone when it heals.
      if (healing) for (const socket of open) socket.destroy();
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
