// The soak's test hosts: a group's namespace reaches the host over its link, and a partition takes
// the link down until it heals. Making namespaces needs root (CI runs as root).
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestNetwork, type TestNetwork } from '../../soak/lib/network.ts';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

describe.skipIf(!asRoot)('the soak test network', () => {
  let network: TestNetwork;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    network = await makeTestNetwork(1);
    server = createServer((socket) => socket.end('hello from the host'));
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await network?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  /** What a program on the group's host hears from the host's server, within a second. */
  const fromInside = async () => {
    const [host] = network.hosts;
    const script = `const s = require('net').connect(${port}, '${host?.hostAddress}'); s.setTimeout(1000, () => { console.log('timeout'); process.exit(0); });
      s.on('data', (d) => { console.log(String(d)); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
    const { stdout } = await run('ip', ['netns', 'exec', host?.namespace ?? '', process.execPath, '-e', script]);
    return stdout.trim();
  };

  it('reaches the host from the namespace, not during a partition, and again once it heals', async () => {
    expect(network.kind).toBe('namespaces');
    expect(await fromInside()).toBe('hello from the host');
    await network.partition(0, true);
    expect(await fromInside()).not.toBe('hello from the host');
    await network.partition(0, false);
    expect(await fromInside()).toBe('hello from the host');
  });

  it('leaves no namespace behind when closed', async () => {
    const other = await makeTestNetwork(2);
    const names = other.hosts.map((host) => host.namespace);
    await other.close();
    const { stdout } = await run('ip', ['netns', 'list']);
    for (const name of names) expect(stdout).not.toContain(name);
  });
});
