import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startTestApp } from '../support/app.ts';

let taken: Server;
let port: number;
const admin = createClient({ url: inject('redisUrl') });

beforeAll(async () => {
  await admin.connect();
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  port = (taken.address() as { port: number }).port;
});
afterAll(async () => {
  admin.destroy();
  await new Promise((resolve) => taken.close(resolve));
});

async function connectionsNamed(prefix: string): Promise<string[]> {
  const clients = await admin.clientList();
  return clients.map((client) => client.name).filter((name) => name.startsWith(prefix));
}

describe('a start-up that fails', () => {
  it("on a port already taken closes the Redis connections it had opened, the rate limiter's too", async () => {
    const redisPrefix = `test:${randomUUID()}:`;
    const name = `render-orchestrator:${redisPrefix}`;
    await expect(startTestApp({ env: { PORT: String(port), REDIS_PREFIX: redisPrefix } })).rejects.toThrow(/EADDRINUSE/);
    // Redis notes a closed connection when it reads the close; give it a moment.
    await expect.poll(() => connectionsNamed(name), { timeout: 2_000 }).toEqual([]);
  });

  it("names the rate limiter's connection, so that the check above can see it", async () => {
    const redisPrefix = `test:${randomUUID()}:`;
    const t = await startTestApp({ env: { REDIS_PREFIX: redisPrefix } });
    try {
      expect((await connectionsNamed(`render-orchestrator:${redisPrefix}`)).sort()).toEqual(
        [`render-orchestrator:${redisPrefix}:pub`, `render-orchestrator:${redisPrefix}:rate-limit`, `render-orchestrator:${redisPrefix}:sub`],
      );
    } finally {
      await t.close();
    }
  });
});
