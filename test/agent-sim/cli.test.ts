// `npm run agent-sim` as a child process against a real service.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

async function agentSim(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('npx', ['tsx', 'agent-sim/cli.ts', ...args], {
      cwd: projectRoot,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

// Each case starts a TypeScript process, which takes seconds on a busy machine.
describe('npm run agent-sim', { timeout: 90_000 }, () => {
  it('registers the nodes, runs for the duration and exits with a summary', async () => {
    const admin = await t.token(randomUUID(), { admin: true });
    const result = await agentSim([
      '--url', t.url, '--admin-token', admin, '--nodes', '3', '--duration', '3', '--heartbeat-seconds', '0.5', '--seed', '5',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('3/3 nodes online (seed 5)');
    expect(result.stdout).toMatch(/\| nodes +\| 3 \(3 alive\) +\|/);
    expect(result.stdout).toMatch(/\| heartbeats +\| [1-9]\d* +\|/);
    expect(result.stdout).toMatch(/\| errors +\| none +\|/);

    const listed = await t.rest('GET', '/v1/nodes', { token: admin });
    const simulated = (listed.body.data as { name: string; status: string }[]).filter((node) => node.name.startsWith('sim-'));
    expect(simulated).toHaveLength(3);
    expect(simulated.every((node) => node.status === 'Online')).toBe(true);
  });

  it('explains how to make an admin token when it has neither a token nor keys', async () => {
    const result = await agentSim(['--url', t.url, '--nodes', '2']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('npm run -s token -- --sub <uuid> --admin');
  });

  it('exits with the reason when the service refuses the registration', async () => {
    const user = await t.token(randomUUID());
    const result = await agentSim(['--url', t.url, '--admin-token', user, '--nodes', '1', '--duration', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/agent-sim: Registering node sim-\S+ failed \(FORBIDDEN\)/);
  });
});
