// `npm run agent-sim` as a child process against a real service.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { runScript } from '../support/command.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const agentSim = (args: string[], env: Record<string, string> = {}) =>
  runScript('agent-sim/cli.ts', args, { env, timeoutMs: 60_000 });

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

  it('takes the admin token from AGENT_SIM_ADMIN_TOKEN or a file, out of the command line', async () => {
    const admin = await t.token(randomUUID(), { admin: true });
    const fromVariable = await agentSim(['--url', t.url, '--nodes', '1', '--duration', '1', '--heartbeat-seconds', '0.5'], {
      AGENT_SIM_ADMIN_TOKEN: admin,
    });
    expect(fromVariable.stderr).toBe('');
    expect(fromVariable.code).toBe(0);
    expect(fromVariable.stdout).toContain('1/1 nodes online');

    const folder = await mkdtemp(join(tmpdir(), 'agent-sim-token-'));
    try {
      const file = join(folder, 'admin.jwt');
      await writeFile(file, `${admin}\n`);
      const fromFile = await agentSim([
        '--url', t.url, '--admin-token-file', file, '--nodes', '1', '--duration', '1', '--heartbeat-seconds', '0.5',
      ]);
      expect(fromFile.stderr).toBe('');
      expect(fromFile.code).toBe(0);
      expect(fromFile.stdout).toContain('1/1 nodes online');

      const missing = await agentSim(['--url', t.url, '--admin-token-file', join(folder, 'none.jwt')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^--admin-token-file \S+none\.jwt: ENOENT/);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('explains how to make an admin token when it has neither a token nor keys', async () => {
    const result = await agentSim(['--url', t.url, '--nodes', '2'], { AGENT_SIM_ADMIN_TOKEN: '' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('AGENT_SIM_ADMIN_TOKEN="$(npm run -s token -- --sub <uuid> --admin)" npm run agent-sim');
  });

  it('answers bad arguments with the usage and exit code 2', async () => {
    for (const args of [['--nodes', 'many'], ['--wings', '2'], ['--admin-token', 'a', '--admin-token-file', 'b']]) {
      const result = await agentSim(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('Usage: npm run agent-sim');
      expect(result.stderr).not.toMatch(/^\s+at /m);
    }
  });

  it('exits with the reason when the service refuses the registration', async () => {
    const user = await t.token(randomUUID());
    const result = await agentSim(['--url', t.url, '--admin-token', user, '--nodes', '1', '--duration', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/agent-sim: Registering node sim-\S+ failed \(FORBIDDEN\)/);
  });
});
