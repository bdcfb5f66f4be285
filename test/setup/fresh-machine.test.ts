// `vitest run` where PostgreSQL and Redis are installed but not running: the configured URLs point
// where nothing listens. With the servers' programs on PATH the tests pass on private servers,
// which are gone once vitest has exited, on Ctrl-C too; without them vitest stops at once with the
// setup's message and nothing else.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../bench/lib/service.ts';
import { projectRoot } from '../support/command.ts';
import { listensAt } from './probes.ts';

/** A small test file that needs both servers. */
const FIXTURE = 'test/setup/provided-servers.test.ts';
const RUN_TIMEOUT_MS = 90_000;

interface Run {
  code: number | null;
  output: string;
}

// The run's temporary folders (TMPDIR) go here, to see what it leaves behind.
let runTmp: string;
beforeEach(async () => {
  runTmp = await mkdtemp(join(tmpdir(), 'fresh-machine-'));
  // Under root the private cluster runs as the postgres user, who must reach its folder.
  await chmod(runTmp, 0o755);
});
afterEach(() => rm(runTmp, { recursive: true, force: true }));

/** Runs the fixture in a vitest of its own; `interruptOn` sends it SIGINT (Ctrl-C) once the output matches. */
async function runVitest(env: Record<string, string>, interruptOn?: RegExp): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST') && name !== 'FORCE_COLOR'));
  const dead = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, [join(projectRoot, 'node_modules/vitest/vitest.mjs'), 'run', FIXTURE], {
    cwd: projectRoot,
    env: {
      ...inherited,
      NO_COLOR: '1',
      TMPDIR: runTmp,
      TEST_DATABASE_URL: `postgresql://postgres@${dead}/postgres`,
      TEST_REDIS_URL: `redis://${dead}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const record = (chunk: Buffer) => {
    output += chunk.toString();
    if (interruptOn?.test(output) && child.signalCode === null) {
      interruptOn = undefined;
      child.kill('SIGINT');
    }
  };
  child.stdout.on('data', record);
  child.stderr.on('data', record);
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((done) => child.once('close', done));
  clearTimeout(timer);
  return { code, output };
}

/** The private servers' URLs the run announced. */
function privateUrls(output: string): string[] {
  return [...output.matchAll(/this run uses a private (?:PostgreSQL cluster|Redis) at (\S+)\.$/gm)].map((match) => match[1] as string);
}

async function expectGone(urls: string[]) {
  expect(urls).toHaveLength(2);
  for (const url of urls) await vi.waitFor(async () => expect(await listensAt(url)).toBe(false), { timeout: 10_000 });
  expect((await readdir(runTmp)).filter((name) => name.startsWith('orchestrator-'))).toEqual([]);
}

describe('vitest where nothing answers at TEST_DATABASE_URL and TEST_REDIS_URL', { timeout: RUN_TIMEOUT_MS + 30_000 }, () => {
  it('passes on private servers that are stopped and removed when it ends', async () => {
    const run = await runVitest({});
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/^Tests: 2 passed, 0 failed/m);
    await expectGone(privateUrls(run.output));
  });

  it('stops and removes the private servers on Ctrl-C', async () => {
    const run = await runVitest({}, /private Redis at/);
    expect(run.code, run.output).toBe(130);
    await expectGone(privateUrls(run.output));
  });

  it('stops at once with the setup message when the servers cannot be started', async () => {
    const started = Date.now();
    const run = await runVitest({ PATH: runTmp });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toContain('The tests need PostgreSQL and Redis:');
    expect(run.output).toContain('set TEST_DATABASE_URL and TEST_REDIS_URL to servers that run');
    expect(run.output).not.toMatch(/No test files found|Unhandled Error|✓|×/);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
