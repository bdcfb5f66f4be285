// A TCP proxy between the service and one of its servers, for faults a clean stop cannot make: a
// server that takes connections and never answers, as one does behind a network partition or
// while it is overloaded, so that clients wait out their own timeouts instead of being refused.
import { createServer, type Server, Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Cuts every open connection; new ones are accepted and never answered until resume(). */
  stall(): void;
  /** Forwards new connections again; the ones held while stalled are cut, as a partition's end would find them. */
  resume(): void;
  close(): Promise<void>;
}

/** A proxy on a free loopback port to 127.0.0.1:targetPort. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let stalled = false;
  const server: Server = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    if (stalled) return;
    const upstream = new Socket();
    open.add(upstream);
    upstream.once('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    upstream.connect(targetPort, '127.0.0.1');
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the proxy has no TCP address');
  const cutAll = () => {
    for (const socket of open) socket.destroy();
  };
  return {
    port: address.port,
    stall() {
      stalled = true;
      cutAll();
    },
    resume() {
      stalled = false;
      cutAll();
    },
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
