// The soak's fault proxy does what its faults say: it adds the delay, holds everything during a
// partition and cuts what lived through one when it heals, and passes data untouched when healthy.
import { createServer, type Server, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRandom } from '../../agent-sim/random.ts';
import { type FaultProxy, HEALTHY, startFaultProxy } from '../../soak/lib/fault-proxy.ts';

let echo: Server;
let proxy: FaultProxy;

beforeAll(async () => {
  echo = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  proxy = await startFaultProxy('127.0.0.1', (echo.address() as { port: number }).port, createRandom(1));
});

afterAll(async () => {
  await proxy?.close();
  await new Promise((resolve) => echo?.close(resolve));
});

/** Sends a line through the proxy on a new connection; answers the echo and how long it took, or 'cut' or 'silent'. */
function roundTrip(line: string, waitMs = 2_000): Promise<{ echoed?: string; ms: number; outcome: 'echoed' | 'cut' | 'silent' }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (outcome: 'echoed' | 'cut' | 'silent', echoed?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome, ms: Date.now() - started, ...(echoed === undefined ? {} : { echoed }) });
    };
    const timer = setTimeout(() => done('silent'), waitMs);
    socket.once('data', (data) => done('echoed', data.toString('utf8')));
    socket.once('close', () => done('cut'));
    socket.on('error', () => undefined);
    socket.connect(proxy.port, '127.0.0.1', () => socket.write(line));
  });
}

describe('the soak fault proxy', () => {
  it('passes data untouched when healthy, and adds the delay each way when told', async () => {
    expect(await roundTrip('hello')).toMatchObject({ outcome: 'echoed', echoed: 'hello' });
    proxy.set({ ...HEALTHY, delayMs: 150 });
    const delayed = await roundTrip('slow');
    proxy.set(HEALTHY);
    expect(delayed).toMatchObject({ outcome: 'echoed', echoed: 'slow' });
    expect(delayed.ms).toBeGreaterThanOrEqual(290);
  });

  it('forwards nothing during a partition, and cuts the connections that lived through it when it heals', async () => {
    proxy.set({ ...HEALTHY, partitioned: true });
    const during = roundTrip('lost', 5_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    proxy.set(HEALTHY);
    expect(await during).toMatchObject({ outcome: 'cut' });
    expect(await roundTrip('after')).toMatchObject({ outcome: 'echoed', echoed: 'after' });
  });

  it('makes lost data late by a retransmission wait', async () => {
    proxy.set({ ...HEALTHY, lossRate: 1 });
    const answers = await Promise.all(Array.from({ length: 10 }, (_unused, index) => roundTrip(`lossy ${index}`)));
    proxy.set(HEALTHY);
    const echoed = answers.filter((answer) => answer.outcome === 'echoed');
    // A few connections are reset instead (5 % of lost pieces); the rest arrive twice 250 ms late.
    expect(echoed.length).toBeGreaterThan(0);
    for (const answer of echoed) expect(answer.ms).toBeGreaterThanOrEqual(450);
  });
});
