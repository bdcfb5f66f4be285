// `npm run demo` as a newcomer runs it, in its non-interactive form: it must start on its own
// defaults, print where to look, and take every sample job to Completed.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../bench/lib/service.ts';
import { expectPortRefusal, holdPort, launch } from '../support/process.ts';

const DEMO_TIMEOUT_MS = 120_000;
const SAMPLE_JOBS = 4;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

async function runDemo(port: number): Promise<Run> {
  const started = Date.now();
  const demo = launch('npm', ['run', 'demo', '--', '--exit-when-done'], { ...process.env, PORT: String(port) });
  // A demo past its time is stopped with everything it started.
  const timer = setTimeout(() => demo.kill(), DEMO_TIMEOUT_MS);
  const exit = await demo.exited.finally(() => clearTimeout(timer));
  return { ...exit, stdout: demo.stdout(), stderr: demo.stderr(), ms: Date.now() - started };
}

describe('npm run demo', () => {
  it('serves on PORT, prints the URLs and an admin token, and takes every sample job to Completed and a still to Cached', async () => {
    const port = await freePort();
    const run = await runDemo(port);
    const report = `exit ${run.code ?? run.signal} after ${run.ms} ms\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    expect(run.code, report).toBe(0);
    expect(run.ms).toBeLessThan(DEMO_TIMEOUT_MS);

    const base = `http://localhost:${port}`;
    for (const path of ['/console', '/playground', '/v1/docs', '/metrics', '/graphql']) expect(run.stdout).toContain(`${base}${path}`);
    expect(run.stdout).toMatch(/Admin token[^\n]*\n\s+eyJ[\w-]+\.[\w-]+\.[\w-]+\n/);

    const submitted = [...run.stdout.matchAll(/^Submitted .+ \(([0-9a-f-]{36})\): .+: Queued$/gm)].map((match) => match[1]);
    expect(submitted).toHaveLength(SAMPLE_JOBS);
    for (const id of submitted) {
      expect(run.stdout, report).toMatch(new RegExp(`^\\| ${id} \\|.*\\| Completed \\| \\d+\\.\\d s +\\|$`, 'm'));
    }
    expect(run.stdout).toMatch(/^Requested a still of scene "intro", frame 48 \([0-9a-f-]{36}\): Pending$/m);
    expect(run.stdout).toMatch(/^The still is Cached \(\d+×\d+\): http:\/\/localhost:\d+\/v1\/objects\/\S+$/m);
    expect(run.stdout).toContain('Every sample job is Completed');
  }, DEMO_TIMEOUT_MS + 10_000);

  it('refuses a port already in use with one line naming it and PORT, and leaves no data folder behind', async () => {
    const { port, release } = await holdPort();
    // The demo makes its data folder in TMPDIR; tsx keeps a compile cache there, which is not what is checked.
    const temporary = mkdtempSync(join(tmpdir(), 'demo-port-test-'));
    const demo = launch('npm', ['run', 'demo', '--', '--exit-when-done'], { ...process.env, PORT: String(port), TMPDIR: temporary, TSX_DISABLE_CACHE: '1' });
    try {
      await expectPortRefusal(demo, port);
      expect(readdirSync(temporary)).toEqual([]);
    } finally {
      demo.kill();
      await release();
      rmSync(temporary, { recursive: true, force: true });
    }
  }, 60_000);
});
