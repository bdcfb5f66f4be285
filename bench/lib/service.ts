// The service as benchmarks run it: real processes of the compiled build under NODE_ENV=production
// (the Docker image's command: `node --max-semi-space-size=64 dist/src/main.js`) on a PostgreSQL
// database of their own, the machine's Redis and the S3 server `npm run bench` starts, measured
// from outside like production traffic would be. Tests start the same processes from the TypeScript sources instead.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';

const rootDir = fileURLToPath(new URL('../..', import.meta.url));
const BUILT_MAIN = join(rootDir, 'dist/src/main.js');

/**
 * Node's arguments as the Docker image runs the service (its CMD, after `node`), so that what is
 * measured is what is deployed, V8 flags included.
 */
export function dockerCommand(): string[] {
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(join(rootDir, 'Dockerfile'), 'utf8'));
  const args = cmd ? (JSON.parse(cmd[1]!) as string[]) : [];
  if (args[0] !== 'node' || !args.includes('dist/src/main.js')) throw new Error(`The Dockerfile's CMD does not run node dist/src/main.js: ${cmd?.[1]}`);
  return args.slice(1);
}
/** What `npm run build` turns into dist/: a change to any of them makes the build stale. */
const BUILD_INPUTS = ['src', 'rest-compat', 'prisma/migrations', 'scripts/build.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];

function newestInputMs(): number {
  return Math.max(
    ...BUILD_INPUTS.map((input) => join(rootDir, input)).flatMap((input) => [
      input,
      ...(statSync(input).isDirectory() ? readdirSync(input, { recursive: true, encoding: 'utf8' }).map((file) => join(input, file)) : []),
    ]).map((path) => statSync(path).mtimeMs),
  );
}

/** Runs `npm run build` unless dist/ is newer than every file it is built from. */
export function ensureBuilt(): void {
  if (existsSync(BUILT_MAIN) && statSync(BUILT_MAIN).mtimeMs >= newestInputMs()) return;
  process.stderr.write('Building the service: npm run build\n');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: rootDir, stdio: ['ignore', 2, 2] });
}

/**
 * `compiled`: `node dist/src/main.js` under NODE_ENV=production, built first when stale; production
 * takes S3 only, from `S3_*` in the environment (`npm run bench` sets them). `source`: the
 * TypeScript sources under tsx in development mode, no build needed.
 */
export type ServiceRuntime = 'compiled' | 'source';

/** The variables that point a service at an S3 server. */
export function s3Environment(s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string }) {
  return {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

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

/** Runs `work` on a connection of its own to the database at `url`, closed after. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function adminQuery(statement: string): Promise<void> {
  await withClient(ADMIN_DATABASE_URL, (client) => client.query(statement));
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

/**
 * Whether process `pid` holds a listening TCP socket on `port`: /proc/net/tcp{,6} name the
 * socket's inode, and the process's descriptors link to `socket:[inode]`.
 */
export function listensOn(pid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is the tenth field.
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return false;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        return target.startsWith('socket:[') && inodes.has(target.slice(8, -1));
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** A port picked free that another process took before the service could bind it. */
class PortTakenMeanwhile extends Error {}

/**
 * Starts one replica and resolves once /readyz answers 200 from it. On a port picked here that
 * another process takes first, it starts again on another: otherwise that process's answers (a
 * parallel test's replica) would pass for this one's readiness.
 */
export async function startService(options: Parameters<typeof startServiceOnce>[0]): Promise<ServiceProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServiceOnce(options);
    } catch (error) {
      if (!(error instanceof PortTakenMeanwhile) || options.port !== undefined || attempt === 3) throw error;
    }
  }
}

async function startServiceOnce(options: {
  databaseUrl: string;
  redisUrl?: string;
  env?: Record<string, string>;
  /** Extra Node.js flags, e.g. --cpu-prof for a profile of the service under load. */
  nodeArgs?: string[];
  /** The port of a process that was stopped, to come back where its callers expect it. */
  port?: number;
  /** Benchmarks measure what production runs; tests (under vitest) skip the build. */
  runtime?: ServiceRuntime;
}): Promise<ServiceProcess> {
  const runtime = options.runtime ?? (process.env.VITEST === undefined ? 'compiled' : 'source');
  if (runtime === 'compiled') ensureBuilt();
  const port = options.port ?? (await freePort());
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-service-'));
  // Relative to cwd, as in the image.
  const main = runtime === 'compiled' ? dockerCommand() : ['--import', 'tsx', 'src/main.ts'];
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), ...main], {
    cwd: rootDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_ENV: runtime === 'compiled' ? 'production' : 'development',
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
    if (child.exitCode !== null) {
      rmSync(dataDir, { recursive: true, force: true });
      if (/Port \d+ is already in use/.test(output)) throw new PortTakenMeanwhile(`Port ${port} was taken before the service bound it`);
      throw new Error(`The service exited with ${child.exitCode} before it was ready`);
    }
    const ready = await fetch(`${url}/readyz`).then((answer) => answer.ok, () => false);
    if (ready && listensOn(child.pid ?? 0, port)) break;
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
