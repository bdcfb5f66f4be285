// `npm run demo` as a newcomer runs it, in its non-interactive form: it must start on its own
// defaults, print where to look, and take every sample job to Completed.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO_TIMEOUT_MS = 120_000;
const SAMPLE_JOBS = 4;

async function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

async function runDemo(port: number): Promise<Run> {
  const started = Date.now();
  // Its own process group, so that a demo past its time is stopped with npx's and tsx's children.
  const child = spawn('npx', ['tsx', 'scripts/demo.ts', '--exit-when-done'], {
    cwd: projectRoot,
    env: { ...process.env, PORT: String(port) },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), DEMO_TIMEOUT_MS);
  return new Promise((done, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('npm run demo', () => {
  it('serves on PORT, prints the URLs and an admin token, and takes every sample job to Completed', async () => {
    const port = await freePort();
    const run = await runDemo(port);
    const report = `exit ${run.code ?? run.signal} after ${run.ms} ms\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    expect(run.code, report).toBe(0);
    expect(run.ms).toBeLessThan(DEMO_TIMEOUT_MS);

    const base = `http://localhost:${port}`;
    for (const path of ['/playground', '/v1/docs', '/metrics', '/graphql']) expect(run.stdout).toContain(`${base}${path}`);
    expect(run.stdout).toMatch(/Admin token[^\n]*\n\s+eyJ[\w-]+\.[\w-]+\.[\w-]+\n/);

    const submitted = [...run.stdout.matchAll(/^Submitted .+ \(([0-9a-f-]{36})\): .+: Queued$/gm)].map((match) => match[1]);
    expect(submitted).toHaveLength(SAMPLE_JOBS);
    for (const id of submitted) {
      expect(run.stdout, report).toMatch(new RegExp(`^\\| ${id} \\|.*\\| Completed \\| \\d+\\.\\d s +\\|$`, 'm'));
    }
    expect(run.stdout).toContain('Every sample job is Completed');
  }, DEMO_TIMEOUT_MS + 10_000);
});
