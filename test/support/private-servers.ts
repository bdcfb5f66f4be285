// Redis and PostgreSQL servers started from the installed binaries: for one test file that stops
// and starts them (fault injection) without touching the servers every other test uses, and for a
// whole run when no configured server answers (servers.ts).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../bench/lib/service.ts';

const run = promisify(execFile);

const START_TIMEOUT_MS = 20_000;

/** Whether something accepts TCP connections on the port. */
export function listens(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, host);
  });
}

/** Resolves once something accepts TCP connections on the port. */
async function waitForPort(port: number, what: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await listens(port)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on port ${port} within ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** Stops the server (SIGTERM) and waits until the process has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty: nothing is saved to disk. */
  start(): Promise<void>;
  /** Stops it for good; safe to call when it is already stopped. */
  close(): Promise<void>;
  /** Kills it without waiting, for a process that is exiting and cannot wait any more. */
  closeNow(): void;
}

/** A redis-server child process on a free loopback port, with persistence off. */
export async function startPrivateRedis(program = 'redis-server'): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async () => {
    const started = spawn(program, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    child = started;
    const exited = new Promise<never>((_, reject) =>
      started.once('exit', (code) => reject(new Error(`redis-server exited with ${code} while starting`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForPort(port, 'redis-server'), exited]);
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };

  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start, close: stop, closeNow: () => child?.kill('SIGKILL') };
}

export interface PrivatePostgres {
  /** The superuser's URL of the cluster's `postgres` database, over TCP on loopback. */
  url: string;
  port: number;
  /** The temporary folder with the cluster's data, socket and log. */
  dir: string;
  /** Stops the cluster in fast mode: open sessions are cut, as in a crash or failover. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the cluster and deletes its files. */
  close(): Promise<void>;
  /** Tells the cluster to quit at once (immediate mode) and deletes its files, without waiting. */
  closeNow(): void;
}

/** Where PostgreSQL's server programs (initdb, pg_ctl) are installed. */
export async function postgresBinDir(pgConfig = 'pg_config'): Promise<string> {
  const { stdout } = await run(pgConfig, ['--bindir']);
  return stdout.trim();
}

/**
 * A throw-away PostgreSQL cluster (initdb into a temporary folder, trust authentication) on a free
 * port. PostgreSQL refuses to run as root, so under root (CI containers) its programs run as the
 * `postgres` OS user, which owns the folder.
 */
export async function startPrivatePostgres(binDir?: string): Promise<PrivatePostgres> {
  const bin = binDir ?? (await postgresBinDir());
  const port = await freePort();
  const root = await mkdtemp(join(tmpdir(), 'orchestrator-pg-'));
  const dataDir = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: group } = await run('id', ['-g', 'postgres']);
    await chown(root, Number(stdout.trim()), Number(group.trim()));
  }
  const pgRun = (program: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, program), ...args]) : run(join(bin, program), args);
  const pgCtl = (args: string[]) => pgRun('pg_ctl', ['-D', dataDir, ...args]);

  const options = [
    `-p ${port}`,
    `-k ${root}`,
    "-c listen_addresses='127.0.0.1'",
    // Speed over durability: the cluster lives for one test file.
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
  ].join(' ');
  try {
    await pgRun('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
    await pgCtl(['-o', options, '-l', join(root, 'server.log'), '-w', '-t', String(START_TIMEOUT_MS / 1000), 'start']);
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  let running = true;
  const stop = async () => {
    if (!running) return;
    await pgCtl(['-m', 'fast', '-w', 'stop']);
    running = false;
  };
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir: root,
    stop,
    async start() {
      await pgCtl(['-o', options, '-l', join(root, 'server.log'), '-w', '-t', String(START_TIMEOUT_MS / 1000), 'start']);
      running = true;
    },
    async close() {
      await stop().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
    closeNow() {
      try {
        // The first line of postmaster.pid is the postmaster's process id; SIGQUIT is pg_ctl's
        // immediate mode, which writes nothing more to the folder.
        const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        process.kill(pid, 'SIGQUIT');
      } catch {
        // No pid file or no such process: the cluster is not running.
      }
      // Its processes may still be exiting while the files go.
      rmSync(root, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}
