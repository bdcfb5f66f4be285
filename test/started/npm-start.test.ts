// `npm start` as people run it, watched from outside: where it says to go, how its log reads, how
// it stops (npm passing SIGTERM on, a Ctrl-C at a terminal, an impatient second signal), and that a
// port already in use stops it with one line before it creates anything.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/lib/service.ts';
import { createTestDatabase } from '../support/database.ts';
import { accepts, childrenOf, type Command, commandLineOf, expectPortRefusal, holdPort, isRunning, launch } from '../support/process.ts';

const STARTED_WITHIN_MS = 90_000;
// npm's own lines before the script's output: `> name@version start` and the command.
const isNpmHeader = (line: string) => line === '' || line.startsWith('> ');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'npm-start-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The environment of the test's process less what would choose for the service. */
function baseEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const { LOG_FORMAT: _format, LOG_LEVEL: _level, ...inherited } = process.env;
  return { ...inherited, HOST: '127.0.0.1', ...env };
}

interface Started {
  npm: Command;
  port: number;
  /** The service's process: npm's only child. */
  service: number;
  listening: string;
}

/** `npm start` (or another script that starts the service) on a cloned test database, until it says it listens. */
async function npmStart(env: Record<string, string> = {}, script = 'start'): Promise<Started> {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const port = await freePort();
  const npm = launch('npm', ['run', script], baseEnv({ PORT: String(port), DATABASE_URL: database.url, DATA_DIR: scratchDir(), ...env }));
  cleanups.push(() => npm.kill());
  const listening = await npm.line(/Render orchestrator listening/, STARTED_WITHIN_MS);
  const children = childrenOf(npm.pid);
  expect(children).toHaveLength(1);
  const service = children[0] as number;
  expect(commandLineOf(service)).toContain('src/main.ts');
  return { npm, port, service, listening };
}

const serviceLines = (npm: Command) =>
  npm
    .stdout()
    .split('\n')
    .filter((line) => !isNpmHeader(line));

describe('npm start', () => {
  it('says where to go in one readable line per event at LOG_FORMAT=pretty, and stops with npm on SIGTERM', async () => {
    const { npm, port, service, listening } = await npmStart({ LOG_FORMAT: 'pretty' });
    const base = `http://localhost:${port}`;
    for (const url of [`${base}/console`, `${base}/playground`, `${base}/v1/docs`, `${base}/metrics`, `${base}/graphql`, `ws://localhost:${port}/graphql`, `${base}/v1"`]) {
      expect(listening).toContain(url);
    }
    // Where to go is in the message itself, not only in the fields after it.
    const message = listening.slice(0, listening.indexOf('{'));
    for (const url of [`${base}/console`, `${base}/playground`, `${base}/v1/docs`, `${base}/metrics`]) expect(message).toContain(url);
    for (const line of serviceLines(npm)) expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): \S/);
    // The console the install built, served by what `npm start` runs.
    const page = await fetch(`${base}/console`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/console/assets/');

    process.kill(npm.pid, 'SIGTERM');
    expect(await npm.exited).toEqual({ code: 0, signal: null });
    expect(isRunning(service)).toBe(false);
    expect(await accepts(port)).toBe(false);
    expect(npm.stdout()).toMatch(/INFO: Stopped$/m);
  });

  it('logs JSON lines when its output is no terminal, and drains once on a Ctrl-C, which reaches it twice', async () => {
    const { npm, port, service, listening } = await npmStart();
    const logged = serviceLines(npm).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.every((entry) => typeof entry.level === 'number' && typeof entry.msg === 'string')).toBe(true);
    expect(JSON.parse(listening)).toMatchObject({
      console: `http://localhost:${port}/console`,
      playground: `http://localhost:${port}/playground`,
      docs: `http://localhost:${port}/v1/docs`,
      metrics: `http://localhost:${port}/metrics`,
      graphql: `http://localhost:${port}/graphql`,
      graphqlWs: `ws://localhost:${port}/graphql`,
      rest: `http://localhost:${port}/v1`,
    });

    // What a terminal does on Ctrl-C: the signal to the whole foreground group, npm and its child;
    // npm passes its copy on, so the service gets two.
    process.kill(-npm.pid, 'SIGINT');
    await npm.exited;
    expect(isRunning(service)).toBe(false);
    expect(await accepts(port)).toBe(false);
    const messages = serviceLines(npm).map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages.slice(-2)).toEqual(['Shutting down: draining connections', 'Stopped']);
  });

  it('stops at once, exit code 1, on a second signal while a request holds the drain up', async () => {
    const { npm, port, service } = await npmStart();
    // A request whose body never finishes: closing the server waits for it.
    const hanging = new Socket();
    cleanups.push(() => void hanging.destroy());
    await new Promise<void>((resolve) => hanging.connect(port, '127.0.0.1', resolve));
    hanging.write(`POST /v1/renders HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
    // Answered after the service has read the request above, which it then waits on.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    process.kill(npm.pid, 'SIGTERM');
    await npm.line(/Shutting down/);
    // Well after the first, so that it is not the same keypress delivered twice.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(npm.stdout()).not.toContain('"Stopped"');
    process.kill(npm.pid, 'SIGTERM');
    expect((await npm.exited).code).toBe(1);
    expect(npm.stdout()).toContain('Stopping now, without waiting for open connections');
    expect(isRunning(service)).toBe(false);
  });

  it('npm run dev stops with npm on SIGTERM too, the watcher and the service it restarts', async () => {
    const { npm, port, service: watcher } = await npmStart({}, 'dev');
    const [service] = childrenOf(watcher);
    expect(service).toBeDefined();
    process.kill(npm.pid, 'SIGTERM');
    await npm.exited;
    expect(isRunning(watcher)).toBe(false);
    expect(isRunning(service as number)).toBe(false);
    expect(await accepts(port)).toBe(false);
  });

  it('refuses a port already in use with one line naming it and PORT, before it creates anything', async () => {
    const { port, release } = await holdPort();
    cleanups.push(release);
    const scratch = scratchDir();
    const dataDir = join(scratch, 'data');
    const temporary = join(scratch, 'tmp');
    mkdirSync(temporary);

    const npm = launch(
      'npm',
      ['start'],
      // No DATABASE_URL: the embedded database would be created in DATA_DIR. tsx keeps a compile
      // cache in TMPDIR, which is not what is checked here.
      baseEnv({ PORT: String(port), DATA_DIR: dataDir, TMPDIR: temporary, TSX_DISABLE_CACHE: '1' }),
    );
    cleanups.push(() => npm.kill());
    await expectPortRefusal(npm, port);
    expect(npm.stdout().split('\n').filter((line) => !isNpmHeader(line))).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
    expect(readdirSync(temporary)).toEqual([]);
  });
});
