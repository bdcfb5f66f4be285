// A node put aside while it works (a rollout moving it to Updating, an admin putting it into
// maintenance) stays aside when that work ends: finishing a chunk must not make it Online, or the
// scheduler would hand it new work in the middle of its update or maintenance.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndRenderNodeMaintenanceDocument, StartRenderNodeMaintenanceDocument } from '../generated/graphql.ts';
import { chunkOn, framesOf, placeOn, preparedOn, reportFrames } from '../support/agent.ts';
import { type AgentCommand, startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { submitRender } from '../support/jobs.ts';

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
    const { id: jobId } = await submitRender(t, user.token, { duration_sec: 2 });

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
    // Its other chunks would otherwise go to the next tests' nodes.
    expect((await t.rest('POST', `/v1/renders/${jobId}/cancel`, { token: user.token })).status).toBe(200);
  });
});

describe('a node an admin puts into maintenance while it renders', () => {
  it('finishes its chunk, stays in Maintenance whatever it reports, gets no new work, and takes work again once maintenance ends', async () => {
    const user = await t.user(10_000);
    const node = await t.onlineNode('maintained');
    const job = await submitRender(t, user.token, { duration_sec: 2, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    const chunk = await chunkOn(t, node);

    const started = await t.rest('POST', `/v1/nodes/${node.id}/maintenance`, { token: admin, body: { reason: 'new GPU' } });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(started.body).toMatchObject({ id: node.id, status: 'Maintenance', last_maintenance_at: expect.any(String) });
    // Asking again changes nothing.
    const again = await t.rest('POST', `/v1/nodes/${node.id}/maintenance`, { token: admin });
    expect(again.body).toMatchObject({ status: 'Maintenance', last_maintenance_at: started.body.last_maintenance_at });

    await reportFrames(t, node, job.id, chunk, framesOf(chunk));
    const complete = await t.signed(node, 'POST', `/v1/internal/render/jobs/${job.id}/chunks/${chunk.frame_job_id}/complete`, { lease: chunk.lease });
    expect(complete.status).toBe(204);
    expect(await statusOf(node)).toBe('Maintenance');
    await t.takeCommands(node, { status: 'Online' });
    expect(await statusOf(node)).toBe('Maintenance');
    expect((await placeOn(t, node)).map((command) => command.type)).not.toContain('render_chunk');

    const ended = await t.rest('DELETE', `/v1/nodes/${node.id}/maintenance`, { token: admin });
    expect(ended.status, JSON.stringify(ended.body)).toBe(200);
    expect(ended.body.status).toBe('Online');
    clock.advance(1000);
    await t.takeCommands(node);
    expect((await placeOn(t, node)).map((command) => command.type)).toContain('render_chunk');
  });

  it('is started and ended over GraphQL too, with typed errors for what the state does not allow', async () => {
    const node = await t.onlineNode('maintained-gql');
    const notIn = await t.gql(EndRenderNodeMaintenanceDocument, { id: node.id }, admin);
    expect(notIn.data?.endRenderNodeMaintenance).toMatchObject({ __typename: 'InvalidStateError', code: 'INVALID_STATE' });
    const started = await t.gql(StartRenderNodeMaintenanceDocument, { id: node.id, reason: 'disk swap' }, admin);
    expect(started.data?.startRenderNodeMaintenance).toMatchObject({ __typename: 'RenderNode', status: 'Maintenance', maintenanceReason: 'disk swap' });
    const ended = await t.gql(EndRenderNodeMaintenanceDocument, { id: node.id }, admin);
    expect(ended.data?.endRenderNodeMaintenance).toMatchObject({ __typename: 'RenderNode', status: 'Online' });
  });

  it('is refused to non-admins, for unknown nodes, for bad input and for a node being updated, changing nothing', async () => {
    const user = await t.user();
    const node = await t.onlineNode('maintenance-refusals', { agentVersion: '1.0.0' });
    expect((await t.rest('POST', `/v1/nodes/${node.id}/maintenance`, {})).status).toBe(401);
    expect((await t.rest('POST', `/v1/nodes/${node.id}/maintenance`, { token: user.token })).status).toBe(403);
    expect((await t.rest('DELETE', `/v1/nodes/${node.id}/maintenance`, { token: user.token })).status).toBe(403);
    expect((await t.rest('POST', `/v1/nodes/${randomUUID()}/maintenance`, { token: admin })).status).toBe(404);
    const long = await t.rest('POST', `/v1/nodes/${node.id}/maintenance`, { token: admin, body: { reason: 'x'.repeat(501) } });
    expect(long.status).toBe(400);
    expect(long.body.error.code).toBe('VALIDATION_FAILED');
    expect((await t.rest('POST', `/v1/nodes/${node.id}/maintenance`, { token: admin, body: { until: 'tomorrow' } })).status).toBe(400);
    const notIn = await t.rest('DELETE', `/v1/nodes/${node.id}/maintenance`, { token: admin });
    expect(notIn.status).toBe(409);
    expect(notIn.body.error.code).toBe('INVALID_STATE');
    expect(await statusOf(node)).toBe('Online');

    const update = await t.rest('POST', '/v1/node-updates', {
      token: admin,
      body: { update_file_name: 'agent-2.msi', update_number: 701, target_ae_version: '24.1', download_key: 'updates/agent-2.msi', sha256: 'ef'.repeat(32) },
    });
    expect(update.status, JSON.stringify(update.body)).toBe(201);
    expect((await t.rest('POST', `/v1/node-updates/${update.body.id}/rollout`, { token: admin, body: { node_ids: [node.id] } })).status).toBe(202);
    const updating = await t.rest('POST', `/v1/nodes/${node.id}/maintenance`, { token: admin });
    expect(updating.status).toBe(409);
    expect(updating.body.error.code).toBe('INVALID_STATE');
    expect(await statusOf(node)).toBe('Updating');
  });
});
