// The service as benchmarks run it: real processes (`tsx src/main.ts`) on a PostgreSQL database
// of their own and the machine's Redis, measured from outside like production traffic would be.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';

const rootDir = fileURLToPath(new URL('../..', import.meta.url));

export const BENCH_SECRETS = {
  JWT_SECRET: 'bench-jwt-secret-0123456789abcdef0123456789',
  NODE_HMAC_SECRET: 'bench-node-hmac-secret-0123456789abcdef',
  SERVICE_TOKENS: 'bench-service-token',
};

/** Where benchmarks find PostgreSQL and Redis; the same variables the tests read. */
export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function adminQuery(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database; the first service started on it applies the migrations. */
export async function createBenchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `orch_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

export interface ServiceProcess {
  url: string;
  pid: number;
  /** Resident set size of the process, in bytes, read from /proc. */
  rss(): number;
  /** Graceful stop (SIGTERM: drains connections). */
  stop(): Promise<void>;
  /** Dies at once (SIGKILL): requests under way get no answer, transactions roll back. */
  kill(): Promise<void>;
  /** What the process wrote to stdout (its log) and stderr so far, the last MAX_OUTPUT characters. */
  output(): string;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

/** Starts one replica and resolves once /readyz answers 200. */
export async function startService(options: {
  databaseUrl: string;
  redisUrl?: string;
  env?: Record<string, string>;
  /** Extra Node.js flags, e.g. --cpu-prof for a profile of the service under load. */
  nodeArgs?: string[];
  /** The port of a process that was stopped, to come back where its callers expect it. */
  port?: number;
}): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-service-'));
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', 'src/main.ts'], {
    cwd: rootDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      DATABASE_URL: options.databaseUrl,
      ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
      LOG_LEVEL: 'warn',
      ...BENCH_SECRETS,
      ...options.env,
    },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Kept for tests that check what the service logged; stderr still shows, as it always did.
  let output = '';
  const record = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-MAX_OUTPUT);
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', (chunk: Buffer) => {
    record(chunk);
    process.stderr.write(chunk);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`The service exited with ${child.exitCode} before it was ready`);
    const ready = await fetch(`${url}/readyz`).then((answer) => answer.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('The service was not ready within 60 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    pid: child.pid ?? 0,
    rss() {
      const pages = Number(readFileSync(`/proc/${child.pid}/statm`, 'utf8').split(' ')[1]);
      return pages * 4096;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
    output: () => output,
  };
}

/** A token for the started services (they share BENCH_SECRETS.JWT_SECRET). */
export function benchToken(userId: string, options: { admin?: boolean } = {}): Promise<string> {
  return signDevelopmentToken(BENCH_SECRETS.JWT_SECRET, { sub: userId, admin: options.admin ?? false });
}
