// Commands started as people start them (`npm start`, `npm run demo`), watched from outside: what
// they print, how they exit, and which processes they leave behind.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { expect } from 'vitest';
import { projectRoot } from './command.ts';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Command {
  pid: number;
  stdout(): string;
  stderr(): string;
  /** The first line of stdout that matches; fails once the command has exited without one, or after timeoutMs. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<Exit>;
  /** SIGKILL to the command and everything it started, for a test's clean-up. */
  kill(): void;
}

/** Runs `command` in the project in a process group of its own, its output kept. */
export function launch(command: string, args: string[], env: NodeJS.ProcessEnv): Command {
  const child = spawn(command, args, { cwd: projectRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const listener of listeners) listener();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({ code, signal });
      for (const listener of listeners) listener();
    });
  });
  const report = () => `--- stdout\n${stdout}\n--- stderr\n${stderr}`;
  return {
    pid: child.pid as number,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    line(pattern, timeoutMs = 90_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no line matched ${pattern} within ${timeoutMs} ms\n${report()}`)), timeoutMs);
        const done = (result: string | Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (typeof result === 'string') resolve(result);
          else reject(result);
        };
        const check = () => {
          const found = stdout.split('\n').find((line) => pattern.test(line));
          if (found !== undefined) done(found);
          else if (child.exitCode !== null || child.signalCode !== null) done(new Error(`exited before a line matched ${pattern}\n${report()}`));
        };
        listeners.add(check);
        check();
      });
    },
    kill() {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // Already gone, with everything it started.
      }
    },
  };
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may hold spaces; the fields after it do not.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((candidate) => statFields(candidate)?.[1] === String(pid));
}

export function commandLineOf(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
}

/** Running, not a zombie waiting for its parent. */
export function isRunning(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return existsSync(`/proc/${pid}`) && state !== undefined && state !== 'Z';
}

/** Whether something accepts connections on 127.0.0.1:port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A port taken by a listener of the test's own on 127.0.0.1, until released. */
export async function holdPort(): Promise<{ port: number; release(): Promise<void> }> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  return {
    port: (holder.address() as { port: number }).port,
    release: () => new Promise<void>((resolve) => holder.close(() => resolve())),
  };
}

/** A start refused because its port is taken: exit code 1 and one line on stderr, naming the port and the setting. */
export async function expectPortRefusal(command: Command, port: number): Promise<void> {
  const exit = await command.exited;
  const report = `--- stdout\n${command.stdout()}\n--- stderr\n${command.stderr()}`;
  expect(exit.code, report).toBe(1);
  const lines = command.stderr().trim().split('\n');
  expect(lines, report).toHaveLength(1);
  expect(lines[0]).toContain(`Port ${port}`);
  expect(lines[0]).toContain('PORT');
}
