// PostgreSQL and Redis for a test run: the configured ones when they answer, otherwise private ones
// started from the installed binaries for this run only. So `npm test` works where the packages
// are installed but their services are not running, and says at once what is missing where it
// cannot.
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { type PrivatePostgres, type PrivateRedis, postgresBinDir, startPrivatePostgres, startPrivateRedis } from './private-servers.ts';

export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** How long a configured server may take to answer before the run does without it. */
const PROBE_TIMEOUT_MS = 5_000;

export interface TestServers {
  /** A superuser's URL, for creating the tests' databases. */
  databaseUrl: string;
  redisUrl: string;
  /** The servers started for this run because the configured ones did not answer. */
  privatePostgres?: PrivatePostgres;
  privateRedis?: PrivateRedis;
  /** One line for each private server: why it was started and where it listens. */
  notes: string[];
  /** Stops the private servers and deletes their files. */
  stop(): Promise<void>;
}

/** Thrown when a server that does not answer cannot be replaced by a private one. */
export class TestServersUnavailable extends Error {
  override name = 'TestServersUnavailable';
}

type PrivateServer = PrivatePostgres | PrivateRedis;

interface Kind<T extends PrivateServer> {
  name: string;
  variable: string;
  defaultUrl: string;
  /** What a private server is called in messages. */
  privateName: string;
  /** Why the server at the URL is of no use, or undefined when it answers. */
  problem(url: string): Promise<string | undefined>;
  /** Starts a private server with the programs found on the search path, or says what is missing. */
  starter(searchPath: string): Promise<(() => Promise<T>) | { missing: string }>;
}

/** The message of an error, or of the errors inside it (a refused `localhost` fails on each address). */
function reason(error: unknown): string {
  const { message, errors, code } = error as { message?: string; errors?: unknown[]; code?: string };
  if (message) return message;
  if (errors?.length) return [...new Set(errors.map(reason))].join('; ');
  return code ?? String(error);
}

/** The URL with its password, if any, masked: it goes into logs. */
function shown(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

async function findProgram(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

const POSTGRES: Kind<PrivatePostgres> = {
  name: 'PostgreSQL',
  variable: 'TEST_DATABASE_URL',
  defaultUrl: DEFAULT_DATABASE_URL,
  privateName: 'a private PostgreSQL cluster',
  async problem(url) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
    try {
      await client.connect();
    } catch (error) {
      return reason(error);
    }
    try {
      await client.query('SELECT 1');
      return undefined;
    } catch (error) {
      return reason(error);
    } finally {
      await client.end();
    }
  },
  async starter(searchPath) {
    const pgConfig = await findProgram('pg_config', searchPath);
    if (pgConfig === undefined) return { missing: "pg_config is not on PATH (Debian's postgresql package installs it)" };
    const binDir = await postgresBinDir(pgConfig).catch(() => undefined);
    if (binDir === undefined) return { missing: `${pgConfig} --bindir failed (is the postgresql package installed?)` };
    for (const program of ['initdb', 'pg_ctl']) {
      if ((await findProgram(program, binDir)) === undefined) return { missing: `${program} is not in ${binDir} (pg_config --bindir)` };
    }
    return () => startPrivatePostgres(binDir);
  },
};

const REDIS: Kind<PrivateRedis> = {
  name: 'Redis',
  variable: 'TEST_REDIS_URL',
  defaultUrl: DEFAULT_REDIS_URL,
  privateName: 'a private Redis',
  async problem(url) {
    const client = createClient({ url, socket: { connectTimeout: PROBE_TIMEOUT_MS, reconnectStrategy: false } });
    // The failure is connect()'s rejection; the event would otherwise be an unhandled one.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      return reason(error);
    }
    try {
      await client.ping();
      return undefined;
    } catch (error) {
      return reason(error);
    } finally {
      client.destroy();
    }
  },
  async starter(searchPath) {
    const program = await findProgram('redis-server', searchPath);
    if (program === undefined) return { missing: "redis-server is not on PATH (Debian's redis-server package installs it)" };
    return () => startPrivateRedis(program);
  },
};

type Plan<T extends PrivateServer> =
  | { kind: Kind<T>; url: string }
  | { kind: Kind<T>; down: string; start: () => Promise<T> }
  | { kind: Kind<T>; down: string; missing: string };

async function plan<T extends PrivateServer>(kind: Kind<T>, env: NodeJS.ProcessEnv): Promise<Plan<T>> {
  const url = env[kind.variable] || kind.defaultUrl;
  const problem = await kind.problem(url);
  if (problem === undefined) return { kind, url };
  const down = `${kind.name} at ${shown(url)} (${kind.variable}) did not answer: ${problem}`;
  const starter = await kind.starter(env.PATH ?? '');
  return typeof starter === 'function' ? { kind, down, start: starter } : { kind, down, missing: starter.missing };
}

/** The one message for servers that neither answer nor can be started, naming what is missing. */
function missingPrograms(plans: Plan<PrivateServer>[]): TestServersUnavailable {
  const unavailable = plans.flatMap((resolved) => ('missing' in resolved ? [resolved] : []));
  const names = unavailable.map((resolved) => resolved.kind.name).join(' and ');
  const variables = unavailable.map((resolved) => resolved.kind.variable).join(' and ');
  const [running, privateOnes] = unavailable.length === 1 ? ['a server that runs', 'a private one'] : ['servers that run', 'private ones'];
  return new TestServersUnavailable(
    [
      `The tests need ${names}:`,
      ...unavailable.map((resolved) => `- ${resolved.down}, and no private one can be started: ${resolved.missing}.`),
      `Start ${names}, set ${variables} to ${running}, or install what is missing so that the tests start ${privateOnes}.`,
    ].join('\n'),
  );
}

async function provide<T extends PrivateServer>(resolved: Exclude<Plan<T>, { missing: string }>): Promise<{ url: string; started?: T; note?: string }> {
  if ('url' in resolved) return { url: resolved.url };
  const { kind, down } = resolved;
  let started: T;
  try {
    started = await resolved.start();
  } catch (error) {
    throw new TestServersUnavailable(
      `${down}, and ${kind.privateName} could not be started: ${reason(error)}\nStart ${kind.name} or set ${kind.variable} to one that runs.`,
    );
  }
  return { url: started.url, started, note: `${down}; this run uses ${kind.privateName} at ${started.url}.` };
}

/**
 * The servers the tests use, from TEST_DATABASE_URL and TEST_REDIS_URL (or their defaults) and,
 * for private servers, the programs on PATH, all read from `env`. Throws TestServersUnavailable,
 * having started nothing, when a server does not answer and its programs are missing.
 */
export async function ensureTestServers(env: NodeJS.ProcessEnv = process.env): Promise<TestServers> {
  const [postgresPlan, redisPlan] = await Promise.all([plan(POSTGRES, env), plan(REDIS, env)]);
  if ('missing' in postgresPlan || 'missing' in redisPlan) throw missingPrograms([postgresPlan, redisPlan]);

  const redis = await provide(redisPlan);
  const postgres = await provide(postgresPlan).catch(async (error: unknown) => {
    await redis.started?.close();
    throw error;
  });
  const started = [postgres.started, redis.started].filter((server) => server !== undefined);

  // Vitest exits without teardown on Ctrl-C (SIGINT) and SIGTERM; the servers must not outlive it.
  const closeNow = () => started.forEach((server) => server.closeNow());
  process.once('exit', closeNow);
  return {
    databaseUrl: postgres.url,
    redisUrl: redis.url,
    privatePostgres: postgres.started,
    privateRedis: redis.started,
    notes: [postgres.note, redis.note].filter((note) => note !== undefined),
    async stop() {
      process.off('exit', closeNow);
      await Promise.all(started.map((server) => server.close()));
    },
  };
}
