// How tests, benchmarks and the soak start the service (startService): it is ready when the
// process it started answers /readyz, not whatever else listens on its port. A CI run once went
// on against a replica that never ran: its port was taken between being picked and being bound,
// and the process that took it (another test's replica) answered the readiness poll.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listensOn, startService } from '../../bench/lib/service.ts';
import { createTestDatabase } from '../support/database.ts';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let impostor: Server;
let port: number;

beforeAll(async () => {
  database = await createTestDatabase();
  // Answers every readiness poll, as a replica of another test would.
  impostor = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}'));
  await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
  port = (impostor.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((resolve) => impostor?.close(resolve));
  await database?.drop();
});

describe('startService', () => {
  it('knows which process listens on a port', () => {
    expect(listensOn(process.pid, port)).toBe(true);
    expect(listensOn(process.pid, port + 1 === 65536 ? 1 : port + 1)).toBe(false);
  });

  it('is not fooled by another process answering on its port: the service refuses the port and the start fails', async () => {
    await expect(startService({ databaseUrl: database.url, redisUrl: inject('redisUrl'), port })).rejects.toThrow(/was taken before the service bound it/);
  });
});
