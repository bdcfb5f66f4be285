// A node put aside while it works (a rollout moving it to Updating) stays aside when that work
// ends: finishing a chunk must not make it Online, or the scheduler would hand it new work in the
// middle of its update.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentCommand, startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';

let t: TestApp;
const clock = new ManualClock();
let admin: string;

const statusOf = async (node: TestNode) => (await t.rest('GET', `/v1/nodes/${node.id}`, { token: admin })).body.status as string;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t.close());

describe('a node a rollout moves to Updating while it renders', () => {
  it('stays Updating when its chunk completes, gets no new work, and takes work again once the update is applied', async () => {
    const { scheduler } = t.app.services;
    const user = await t.user(10_000);
    const a = await t.onlineNode('aside-a', { agentVersion: '1.0.0' });
    const b = await t.onlineNode('aside-b', { agentVersion: '1.0.0' });
    const submitted = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: { saved_project_id: randomUUID(), quality: 'High', resolution: 'HD', duration_sec: 2, frame_rate: 30 },
    });
    expect(submitted.status).toBe(201);
    const jobId = submitted.body.id as string;

    await scheduler.assignWork();
    const fromA = await t.takeCommands(a);
    const fromB = await t.takeCommands(b);
    const prepare = [...fromA, ...fromB].find((command) => command.type === 'prepare_replica');
    expect(prepare).toBeDefined();
    const [preparer, other] = fromA.includes(prepare as AgentCommand) ? [a, b] : [b, a];
    const ready = await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/replica-ready`, {
      node_id: preparer.id,
      replica_path: 'D:/replicas/aside.aep',
      lease: prepare?.lease,
    });
    expect(ready.status).toBe(204);
    await scheduler.assignWork();
    const [chunk] = await t.takeCommands(preparer);
    expect(chunk).toMatchObject({ type: 'render_chunk' });
    expect((await t.takeCommands(other))[0]).toMatchObject({ type: 'render_chunk' });
    expect(await statusOf(preparer)).toBe('Busy');

    // The rollout reaches the node mid-chunk.
    const update = await t.rest('POST', '/v1/node-updates', {
      token: admin,
      body: {
        update_file_name: 'agent-setup.msi',
        update_number: 700,
        description: 'Mid-chunk update',
        target_ae_version: '24.1',
        download_url: 'https://downloads.example.com/agent-setup.msi',
        sha256: 'cd'.repeat(32),
      },
    });
    expect(update.status, JSON.stringify(update.body)).toBe(201);
    const rollout = await t.rest('POST', `/v1/node-updates/${update.body.id}/rollout`, { token: admin, body: { node_ids: [preparer.id] } });
    expect(rollout.status, JSON.stringify(rollout.body)).toBe(202);
    expect(await statusOf(preparer)).toBe('Updating');

    const { lease, frame_job_id: frameJobId, start_frame: start, end_frame: end } = chunk as AgentCommand;
    for (let n = Number(start); n <= Number(end); n++) {
      const report = { frame_job_id: frameJobId, frame_number: n, file_size_bytes: 1024, lease };
      expect((await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/frames`, report)).status).toBe(204);
    }
    const complete = await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${frameJobId}/complete`, { lease });
    expect(complete.status).toBe(204);
    expect(await statusOf(preparer)).toBe('Updating');

    // Chunks are waiting and the other node is busy: still nothing for the node being updated.
    await scheduler.assignWork();
    expect((await t.takeCommands(preparer)).map((command) => command.type)).not.toContain('render_chunk');
    expect(await statusOf(preparer)).toBe('Updating');

    clock.advance(1000);
    const applied = await t.signed(preparer, 'POST', `/v1/internal/nodes/${preparer.id}/updates/${update.body.id}/applied`, {
      node_agent_version: '2.0.0',
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(204);
    expect(await statusOf(preparer)).toBe('Online');
    await scheduler.assignWork();
    expect((await t.takeCommands(preparer)).map((command) => command.type)).toContain('render_chunk');
  });
});
