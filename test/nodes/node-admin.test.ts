import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CloseRenderNodeAeDocument,
  ReleaseRenderNodeDocument,
  RenderNodeCommandsDocument,
  RenderNodeCrashesDocument,
  RenderNodeDocument,
  RenderNodeHealthDocument,
  RenderNodeHealthHistoryDocument,
  RestartRenderNodeDocument,
  UpdateRenderNodeDocument,
} from '../generated/graphql.ts';
import { chunkOn, clearQueue, preparedOn, reportFrames } from '../support/agent.ts';
import { problemPaths, startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { type Callers, callers, expectAdminOnly, expectGraphQLAdminOnly } from '../support/callers.ts';
import { submitRender } from '../support/jobs.ts';
import { nodeCrash } from '../support/rows.ts';
import { createNodeUpdate, reportApplied, rolloutFleet, startRollout } from '../support/updates.ts';

let t: TestApp;
let who: Callers;
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  who = await callers(t);
});
afterAll(() => t.close());

/**
 * A 300-frame job (HD High, 30 fps, 10 s) rendering through the agent protocol: its replica
 * prepared by a node of its own, its first chunk taken by `node` (the render_chunk command
 * acknowledged), as the scheduler and the agents leave it. Earlier tests' jobs are cancelled first.
 */
async function runningChunk(node: TestNode) {
  const owner = await t.user(10_000);
  const preparer = await t.onlineNode();
  await clearQueue(t);
  const { id: jobId } = await submitRender(t, owner.token);
  await preparedOn(t, preparer, jobId);
  const command = await chunkOn(t, node);
  const chunk = await prisma().frameJob.findUniqueOrThrow({ where: { id: String(command.frame_job_id) } });
  return { jobId, chunk, command, lease: command.lease, commandId: command.command_id };
}

async function nodeRow(id: string) {
  return prisma().renderNode.findUniqueOrThrow({ where: { id } });
}

async function commandsOf(nodeId: string) {
  return prisma().nodeCommand.findMany({ where: { nodeId }, orderBy: { createdAt: 'asc' } });
}

describe('PATCH /nodes/{node_id} and updateRenderNode', () => {
  it('changes the settings, answers the node, and lets running work carry on', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const running = await runningChunk(node);
    const owner = randomUUID();
    const maintenance = new Date(Date.now() - 60_000).toISOString();
    const response = await t.rest('PATCH', `/v1/nodes/${node.id}`, {
      token: who.admin,
      body: {
        priority: 7,
        is_active: false,
        accepts_new_jobs: false,
        node_kind: 'Dedicated',
        owner_user_id: owner,
        next_maintenance_at: maintenance,
        maintenance_reason: 'new GPU',
      },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body).toMatchObject({
      id: node.id,
      priority: 7,
      is_active: false,
      accepts_new_jobs: false,
      node_kind: 'Dedicated',
      owner_user_id: owner,
      status: 'Busy',
      cached_template_count: 0,
    });
    const detail = await t.rest('GET', `/v1/nodes/${node.id}`, { token: who.admin });
    expect(detail.body.next_maintenance_at).toBe(maintenance);
    expect((await nodeRow(node.id)).maintenanceReason).toBe('new GPU');

    const chunk = await prisma().frameJob.findUniqueOrThrow({ where: { id: running.chunk.id } });
    expect(chunk).toMatchObject({ status: 'Assigned', nodeId: node.id, leaseToken: running.lease });
    expect((await commandsOf(node.id)).map((command) => [command.type, command.status])).toEqual([['render_chunk', 'Acknowledged']]);
  });

  it('clears the owner and the maintenance time with null, and answers the same through GraphQL', async () => {
    const node = await t.node(undefined, { registration: { owner_user_id: randomUUID() } });
    const set = await t.gql(
      UpdateRenderNodeDocument,
      { id: node.id, input: { nextMaintenanceAt: '2031-01-02T03:04:05.000Z', maintenanceReason: 'disk', priority: 3, acceptsNewJobs: false } },
      who.admin,
    );
    expect(set.errors).toBeUndefined();
    expect(set.data?.updateRenderNode).toMatchObject({
      __typename: 'RenderNode',
      priority: 3,
      acceptsNewJobs: false,
      maintenanceReason: 'disk',
      nextMaintenanceAt: '2031-01-02T03:04:05.000Z',
    });
    const cleared = await t.gql(
      UpdateRenderNodeDocument,
      { id: node.id, input: { ownerUserId: null, nextMaintenanceAt: null, maintenanceReason: null } },
      who.admin,
    );
    expect(cleared.data?.updateRenderNode).toMatchObject({
      __typename: 'RenderNode',
      ownerUserId: null,
      nextMaintenanceAt: null,
      maintenanceReason: null,
      priority: 3,
    });
    const rest = await t.rest('PATCH', `/v1/nodes/${node.id}`, { token: who.admin, body: { maintenance_reason: null, priority: -2 } });
    expect(rest.status).toBe(200);
    expect(rest.body.priority).toBe(-2);
  });

  it('refuses bad input with the error body and changes nothing', async () => {
    const node = await t.node();
    const before = await nodeRow(node.id);
    const bad = await t.rest('PATCH', `/v1/nodes/${node.id}`, {
      token: who.admin,
      body: { priority: 5000, node_kind: 'Castle', next_maintenance_at: 'tomorrow', owner_user_id: 'me', status: 'Online' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    expect(problemPaths(bad.body)).toEqual(['next_maintenance_at', 'node_kind', 'owner_user_id', 'priority', 'status']);
    const empty = await t.rest('PATCH', `/v1/nodes/${node.id}`, { token: who.admin, body: {} });
    expect(empty.status).toBe(400);
    const notObject = await t.rest('PATCH', `/v1/nodes/${node.id}`, { token: who.admin, body: ['priority'] });
    expect(notObject.status).toBe(400);
    const notUuid = await t.rest('PATCH', '/v1/nodes/abc', { token: who.admin, body: { priority: 1 } });
    expect(notUuid.status).toBe(400);
    const missing = await t.rest('PATCH', `/v1/nodes/${randomUUID()}`, { token: who.admin, body: { priority: 1 } });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');

    const gql = await t.gql(UpdateRenderNodeDocument, { id: node.id, input: { priority: 5000 } }, who.admin);
    expect(gql.data?.updateRenderNode).toMatchObject({ __typename: 'ValidationError', problems: [{ path: 'priority' }] });
    const gqlMissing = await t.gql(UpdateRenderNodeDocument, { id: randomUUID(), input: { priority: 1 } }, who.admin);
    expect(gqlMissing.data?.updateRenderNode).toMatchObject({ __typename: 'NotFoundError', entity: 'render node' });
    expect(await nodeRow(node.id)).toEqual(before);
  });

  it('is for admins only', async () => {
    const node = await t.node();
    const before = await nodeRow(node.id);
    await expectAdminOnly(t, who, 'PATCH', `/v1/nodes/${node.id}`, { priority: 9 });
    await expectGraphQLAdminOnly((token) => t.gql(UpdateRenderNodeDocument, { id: node.id, input: { priority: 9 } }, token), who);
    expect(await nodeRow(node.id)).toEqual(before);
  });
});

describe('restart', () => {
  it('queues a restart that the next signed heartbeat delivers, and moves the work off at once', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const running = await runningChunk(node);
    const response = await t.rest('POST', `/v1/nodes/${node.id}/restart`, { token: who.admin });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ command_id: expect.any(String), recut_chunks: 1 });

    const answer = await t.heartbeat(node, { status: 'Busy' });
    expect(answer).toEqual([
      { type: 'restart', command_id: response.body.command_id, requested_by: who.adminId },
    ]);
    const chunk = await prisma().frameJob.findUniqueOrThrow({ where: { id: running.chunk.id } });
    expect(chunk).toMatchObject({ status: 'Failed', leaseToken: null });
    const work = await prisma().nodeCommand.findUniqueOrThrow({ where: { id: running.commandId } });
    expect(work.status).toBe('Superseded');
  });

  it('replaces a restart still waiting, so the machine reboots once; GraphQL does the same', async () => {
    const node = await t.node();
    const first = await t.rest('POST', `/v1/nodes/${node.id}/restart`, { token: who.admin });
    const second = await t.gql(RestartRenderNodeDocument, { id: node.id }, who.admin);
    expect(second.errors).toBeUndefined();
    const payload = second.data?.restartRenderNode;
    expect(payload).toMatchObject({ __typename: 'RenderNodeAction', recutChunks: 0, node: { id: node.id } });
    if (payload?.__typename !== 'RenderNodeAction') return;
    const commands = await commandsOf(node.id);
    expect(commands.map((command) => [command.id, command.status])).toEqual([
      [first.body.command_id, 'Superseded'],
      [payload.commandId, 'Pending'],
    ]);
  });

  it('refuses callers who are not admins and unknown nodes, and queues nothing', async () => {
    const node = await t.node();
    await expectAdminOnly(t, who, 'POST', `/v1/nodes/${node.id}/restart`);
    await expectGraphQLAdminOnly((token) => t.gql(RestartRenderNodeDocument, { id: node.id }, token), who);
    expect((await t.rest('POST', `/v1/nodes/${randomUUID()}/restart`, { token: who.admin })).status).toBe(404);
    expect((await t.rest('POST', '/v1/nodes/not-a-node/restart', { token: who.admin })).status).toBe(400);
    const gql = await t.gql(RestartRenderNodeDocument, { id: randomUUID() }, who.admin);
    expect(gql.data?.restartRenderNode.__typename).toBe('NotFoundError');
    expect(await commandsOf(node.id)).toEqual([]);
  });
});

describe('release', () => {
  it('re-cuts a running chunk so that only its missing frames are rendered again', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const { jobId, chunk, command, commandId } = await runningChunk(node);
    const rendered = [
      ...Array.from({ length: 5 }, (_, index) => chunk.startFrame + index),
      chunk.startFrame + 10,
    ];
    await reportFrames(t, node, jobId, command, rendered);
    const chunksBefore = await prisma().frameJob.findMany({ where: { renderJobId: jobId }, select: { id: true } });

    const response = await t.rest('POST', `/v1/nodes/${node.id}/release`, { token: who.admin });
    expect(response.status).toBe(204);
    expect(response.body).toBe('');

    const old = await prisma().frameJob.findUniqueOrThrow({ where: { id: chunk.id } });
    expect(old).toMatchObject({ status: 'Failed', leaseToken: null });
    const created = await prisma().frameJob.findMany({
      where: { renderJobId: jobId, id: { notIn: chunksBefore.map((row) => row.id) } },
      orderBy: { startFrame: 'asc' },
    });
    expect(created.map((row) => [row.startFrame, row.endFrame, row.status, row.nodeId, row.leaseToken])).toEqual([
      [chunk.startFrame + 5, chunk.startFrame + 9, 'Pending', null, null],
      [chunk.startFrame + 11, chunk.endFrame, 'Pending', null, null],
    ]);
    const unrendered = await prisma().frame.findMany({
      where: { renderJobId: jobId, frameNumber: { gte: chunk.startFrame, lte: chunk.endFrame }, rendered: false },
      select: { frameJobId: true },
    });
    expect(unrendered).toHaveLength(chunk.endFrame - chunk.startFrame + 1 - rendered.length);
    expect(new Set(unrendered.map((frame) => frame.frameJobId))).toEqual(new Set(created.map((row) => row.id)));
    const kept = await prisma().frame.findMany({ where: { renderJobId: jobId, frameNumber: { in: rendered } } });
    expect(kept.every((frame) => frame.rendered && frame.frameJobId === chunk.id)).toBe(true);
    expect((await prisma().nodeCommand.findUniqueOrThrow({ where: { id: commandId } })).status).toBe('Superseded');
    expect(await nodeRow(node.id)).toMatchObject({ currentJobId: null });
    const log = await prisma().jobLog.findMany({ where: { renderJobId: jobId, level: 'warn' } });
    expect(log.map((line) => line.message)).toEqual([expect.stringMatching(/released by an administrator/)]);
  });

  it('answers through GraphQL, also for a node without work', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    await runningChunk(node);
    const first = await t.gql(ReleaseRenderNodeDocument, { id: node.id }, who.admin);
    expect(first.data?.releaseRenderNode).toMatchObject({ __typename: 'RenderNodeAction', recutChunks: 1, commandId: null });
    const again = await t.gql(ReleaseRenderNodeDocument, { id: node.id }, who.admin);
    expect(again.data?.releaseRenderNode).toMatchObject({ __typename: 'RenderNodeAction', recutChunks: 0 });
  });

  it('refuses callers who are not admins and unknown nodes, and leaves the work where it is', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const running = await runningChunk(node);
    await expectAdminOnly(t, who, 'POST', `/v1/nodes/${node.id}/release`);
    await expectGraphQLAdminOnly((token) => t.gql(ReleaseRenderNodeDocument, { id: node.id }, token), who);
    expect((await t.rest('POST', `/v1/nodes/${randomUUID()}/release`, { token: who.admin })).status).toBe(404);
    expect((await t.rest('POST', '/v1/nodes/123/release', { token: who.admin })).status).toBe(400);
    const chunk = await prisma().frameJob.findUniqueOrThrow({ where: { id: running.chunk.id } });
    expect(chunk).toMatchObject({ status: 'Assigned', leaseToken: running.lease });
  });
});

describe('close-ae', () => {
  it('queues close_ae and leaves the work assigned, through both doors', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const running = await runningChunk(node);
    const response = await t.rest('POST', `/v1/nodes/${node.id}/close-ae`, { token: who.admin });
    expect(response.status).toBe(204);
    const answer = await t.heartbeat(node);
    expect(answer.map((command) => command.type)).toEqual(['close_ae']);
    expect(await prisma().frameJob.findUniqueOrThrow({ where: { id: running.chunk.id } })).toMatchObject({
      status: 'Assigned',
      leaseToken: running.lease,
    });

    const gql = await t.gql(CloseRenderNodeAeDocument, { id: node.id }, who.admin);
    expect(gql.data?.closeRenderNodeAe).toMatchObject({ __typename: 'RenderNodeAction', recutChunks: 0 });
    const closes = (await commandsOf(node.id)).filter((command) => command.type === 'close_ae');
    expect(closes.map((command) => command.status)).toEqual(['Superseded', 'Pending']);
  });

  it('refuses callers who are not admins and unknown nodes', async () => {
    const node = await t.node();
    await expectAdminOnly(t, who, 'POST', `/v1/nodes/${node.id}/close-ae`);
    await expectGraphQLAdminOnly((token) => t.gql(CloseRenderNodeAeDocument, { id: node.id }, token), who);
    expect((await t.rest('POST', `/v1/nodes/${randomUUID()}/close-ae`, { token: who.admin })).status).toBe(404);
    const gql = await t.gql(CloseRenderNodeAeDocument, { id: randomUUID() }, who.admin);
    expect(gql.data?.closeRenderNodeAe.__typename).toBe('NotFoundError');
    expect(await commandsOf(node.id)).toEqual([]);
  });
});

describe('health', () => {
  it('answers what the last heartbeat said, through both doors', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const jobId = randomUUID();
    await t.heartbeat(node, {
      status: 'Busy',
      cpu_pct: 64,
      ram_available_mb: 4096,
      ae_running: true,
      ae_memory_mb: 3_500,
      current_job_id: jobId,
      current_frame: 12,
      cache_used_gb: 7,
    });
    const response = await t.rest('GET', `/v1/nodes/${node.id}/health`, { token: who.admin });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      node_id: node.id,
      recorded_at: expect.any(String),
      status: 'Busy',
      cpu_pct: 64,
      ram_available_mb: 4096,
      ae_running: true,
      ae_memory_mb: 3_500,
      current_job_id: jobId,
      current_frame: 12,
      cache_used_gb: 7,
    });
    const gql = await t.gql(RenderNodeHealthDocument, { nodeId: node.id }, who.admin);
    expect(gql.data?.renderNodeHealth).toMatchObject({ nodeId: node.id, status: 'Busy', cpuPct: 64, aeMemoryMb: 3_500, currentFrame: 12 });
    expect(gql.data?.renderNodeHealth.recordedAt).toBe(response.body.recorded_at);
    const detail = await t.gql(RenderNodeDocument, { id: node.id }, who.admin);
    expect(detail.data?.renderNode.lastAeMemoryMb).toBe(3_500);
  });

  it('has no After Effects memory until the agent reports it; a figure left out stands, null and a restart clear it', async () => {
    const node = await t.onlineNode();
    /** The figure as the REST health, the GraphQL health and the GraphQL node answer it. */
    const aeMemory = async () => {
      const rest = await t.rest('GET', `/v1/nodes/${node.id}/health`, { token: who.admin });
      const health = await t.gql(RenderNodeHealthDocument, { nodeId: node.id }, who.admin);
      const detail = await t.gql(RenderNodeDocument, { id: node.id }, who.admin);
      return [rest.body.ae_memory_mb, health.data?.renderNodeHealth.aeMemoryMb, detail.data?.renderNode.lastAeMemoryMb];
    };
    expect(await aeMemory()).toEqual([null, null, null]);
    await t.heartbeat(node, { status: 'Online', cpu_pct: 5, ae_running: false });
    expect(await aeMemory()).toEqual([null, null, null]);

    await t.heartbeat(node, { ae_memory_mb: 4_096 });
    await t.heartbeat(node, { cpu_pct: 6 });
    expect(await aeMemory()).toEqual([4_096, 4_096, 4_096]);
    await t.heartbeat(node, { ae_memory_mb: null });
    expect(await aeMemory()).toEqual([null, null, null]);
    await t.heartbeat(node, { ae_memory_mb: 0 });
    expect(await aeMemory()).toEqual([0, 0, 0]);

    // The agent restarted, perhaps as a version that does not report it.
    expect((await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/online`, {})).status).toBe(200);
    expect(await aeMemory()).toEqual([null, null, null]);
  });

  it('has no time for a node that never sent a heartbeat; refuses non-admins and unknown nodes', async () => {
    const node = await t.node();
    const response = await t.rest('GET', `/v1/nodes/${node.id}/health`, { token: who.admin });
    expect(response.body).toMatchObject({ status: 'Registered' });
    expect(response.body).not.toHaveProperty('recorded_at');
    await expectAdminOnly(t, who, 'GET', `/v1/nodes/${node.id}/health`);
    await expectGraphQLAdminOnly((token) => t.gql(RenderNodeHealthDocument, { nodeId: node.id }, token), who);
    expect((await t.rest('GET', `/v1/nodes/${randomUUID()}/health`, { token: who.admin })).status).toBe(404);
    const gql = await t.gql(RenderNodeHealthDocument, { nodeId: randomUUID() }, who.admin);
    expect(gql.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('health history', () => {
  it('answers the last hour of samples oldest first by default, and the range asked for', async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const now = Date.now();
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
    for (const [minutesAgo, cpu] of [[50, 10], [5, 20], [120, 30]] as const) {
      await t.heartbeat(node, { recorded_at: at(minutesAgo), cpu_pct: cpu });
    }
    const recent = await t.rest('GET', `/v1/nodes/${node.id}/health/history`, { token: who.admin });
    expect(recent.status).toBe(200);
    expect(recent.body.data.map((sample: any) => [sample.cpu_pct, sample.bucket_seconds])).toEqual([
      [10, 0],
      [20, 0],
    ]);
    expect(recent.body.data[0]).toMatchObject({ node_id: node.id, recorded_at: at(50), status: 'Online' });

    const older = await t.rest(
      'GET',
      `/v1/nodes/${node.id}/health/history?from=${encodeURIComponent(at(180))}&to=${encodeURIComponent(at(30))}`,
      { token: who.admin },
    );
    expect(older.body.data.map((sample: any) => sample.cpu_pct)).toEqual([30, 10]);
    const gql = await t.gql(RenderNodeHealthHistoryDocument, { nodeId: node.id, from: at(180), to: at(100) }, who.admin);
    expect(gql.data?.renderNodeHealthHistory).toEqual([
      { recordedAt: at(120), bucketSeconds: 0, status: 'Online', cpuPct: 30, ramAvailableMb: 0, aeRunning: false, aeMemoryMb: null },
    ]);
  });

  it('carries After Effects memory in every sample, null where the agent did not report it', async () => {
    const node = await t.onlineNode();
    const now = Date.now();
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
    await t.heartbeat(node, { recorded_at: at(40), cpu_pct: 10 });
    await t.heartbeat(node, { recorded_at: at(30), ae_memory_mb: 5_120 });
    await t.heartbeat(node, { recorded_at: at(20), cpu_pct: 20 });
    await t.heartbeat(node, { recorded_at: at(10), ae_memory_mb: null });
    const rest = await t.rest('GET', `/v1/nodes/${node.id}/health/history`, { token: who.admin });
    expect(rest.status).toBe(200);
    expect(rest.body.data.map((sample: any) => sample.ae_memory_mb)).toEqual([null, 5_120, 5_120, null]);
    const gql = await t.gql(RenderNodeHealthHistoryDocument, { nodeId: node.id }, who.admin);
    expect(gql.data?.renderNodeHealthHistory.map((sample) => sample.aeMemoryMb)).toEqual([null, 5_120, 5_120, null]);
  });

  it('refuses a range that ends before it starts, malformed times, non-admins and unknown nodes', async () => {
    const node = await t.node();
    const path = `/v1/nodes/${node.id}/health/history`;
    const backwards = await t.rest('GET', `${path}?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z`, { token: who.admin });
    expect(backwards.status).toBe(400);
    expect(problemPaths(backwards.body)).toEqual(['from']);
    const future = await t.rest('GET', `${path}?from=2999-01-01T00:00:00Z`, { token: who.admin });
    expect(future.status).toBe(400);
    const malformed = await t.rest('GET', `${path}?from=yesterday&to=2030-01-01`, { token: who.admin });
    expect(malformed.status).toBe(400);
    expect(problemPaths(malformed.body)).toEqual(['from', 'to']);
    const gql = await t.gql(
      RenderNodeHealthHistoryDocument,
      { nodeId: node.id, from: '2030-01-02T00:00:00Z', to: '2030-01-01T00:00:00Z' },
      who.admin,
    );
    expect(gql.errors?.[0]?.extensions?.code).toBe('VALIDATION_FAILED');
    await expectAdminOnly(t, who, 'GET', path);
    await expectGraphQLAdminOnly((token) => t.gql(RenderNodeHealthHistoryDocument, { nodeId: node.id }, token), who);
    expect((await t.rest('GET', `/v1/nodes/${randomUUID()}/health/history`, { token: who.admin })).status).toBe(404);
  });
});

describe('crashes', () => {
  it('answers the node’s crashes newest first, through both doors', async () => {
    const node = await t.node();
    const other = await t.node();
    const base = Date.now() - 3600_000;
    for (const [minutes, signal] of [[10, 'SIGSEGV'], [30, 'SIGABRT'], [20, 'EXCEPTION_ACCESS_VIOLATION']] as const) {
      await nodeCrash(t, node.id, { crashedAt: new Date(base + minutes * 60_000), crashSignal: signal, recoveryAction: 'ResetAndRestart' });
    }
    await nodeCrash(t, other.id, { crashSignal: 'elsewhere' });
    const response = await t.rest('GET', `/v1/nodes/${node.id}/crashes`, { token: who.admin });
    expect(response.status).toBe(200);
    expect(response.body.data.map((crash: any) => crash.crash_signal)).toEqual(['SIGABRT', 'EXCEPTION_ACCESS_VIOLATION', 'SIGSEGV']);
    expect(response.body.data[0]).toEqual({
      id: expect.any(String),
      node_id: node.id,
      render_job_id: null,
      crashed_at: new Date(base + 30 * 60_000).toISOString(),
      last_known_frame: null,
      crash_signal: 'SIGABRT',
      error_log: '',
      log_file_url: '',
      auto_recovered: false,
      recovery_action: 'ResetAndRestart',
      recovered_at: null,
    });
    const gql = await t.gql(RenderNodeCrashesDocument, { nodeId: node.id }, who.admin);
    expect(gql.data?.renderNodeCrashes.map((crash) => crash.crashSignal)).toEqual(['SIGABRT', 'EXCEPTION_ACCESS_VIOLATION', 'SIGSEGV']);
  });

  it('refuses non-admins and unknown nodes', async () => {
    const node = await t.node();
    await expectAdminOnly(t, who, 'GET', `/v1/nodes/${node.id}/crashes`);
    await expectGraphQLAdminOnly((token) => t.gql(RenderNodeCrashesDocument, { nodeId: node.id }, token), who);
    expect((await t.rest('GET', `/v1/nodes/${randomUUID()}/crashes`, { token: who.admin })).status).toBe(404);
    expect((await t.rest('GET', '/v1/nodes/zz/crashes', { token: who.admin })).status).toBe(400);
  });
});

describe('commands', () => {
  it("answers the node's latest commands newest first, without what they carry to the agent", async () => {
    const node = await t.onlineNode(undefined, { agentVersion: '1.0.0' });
    const running = await runningChunk(node);
    const closed = await t.gql(CloseRenderNodeAeDocument, { id: node.id }, who.admin);
    const restarted = await t.gql(RestartRenderNodeDocument, { id: node.id }, who.admin);
    if (closed.data?.closeRenderNodeAe.__typename !== 'RenderNodeAction') throw new Error(JSON.stringify(closed));
    if (restarted.data?.restartRenderNode.__typename !== 'RenderNodeAction') throw new Error(JSON.stringify(restarted));

    const answer = await t.gql(RenderNodeCommandsDocument, { nodeId: node.id }, who.admin);
    expect(answer.errors).toBeUndefined();
    const commands = answer.data?.renderNodeCommands ?? [];
    expect(commands.map((command) => [command.id, command.type, command.status])).toEqual([
      [restarted.data.restartRenderNode.commandId, 'restart', 'Pending'],
      [closed.data.closeRenderNodeAe.commandId, 'close_ae', 'Pending'],
      [running.commandId, 'render_chunk', 'Superseded'],
    ]);
    expect(commands[0]).toMatchObject({ nodeId: node.id, renderJobId: null, frameJobId: null, deliveryCount: 0, deliveredAt: null, acknowledgedAt: null, result: null });
    expect(commands[2]).toMatchObject({
      nodeId: node.id,
      renderJobId: running.jobId,
      frameJobId: running.chunk.id,
      deliveryCount: 1,
      deliveredAt: expect.any(String),
      acknowledgedAt: expect.any(String),
    });
    // The chunk's lease and the restart's payload (the admin who asked) stay between the service and the agent.
    expect(JSON.stringify(answer)).not.toContain(running.lease);
    expect(JSON.stringify(answer)).not.toContain(who.adminId);
    const payload = await t.gql(parse(`{ renderNodeCommands(nodeId: "${node.id}") { payload leaseToken } }`), {}, who.admin);
    expect(payload.errors?.map((error) => error.extensions?.code)).toEqual(['GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_VALIDATION_FAILED']);

    const latest = await t.gql(RenderNodeCommandsDocument, { nodeId: node.id, first: 2 }, who.admin);
    expect(latest.data?.renderNodeCommands.map((command) => command.type)).toEqual(['restart', 'close_ae']);
  });

  it('shows what the node reported when a command ended, and not the download the command carried', async () => {
    const [node] = await rolloutFleet(t, 1);
    const update = await createNodeUpdate(t, who.admin);
    await startRollout(t, who.admin, update.id, [node!]);
    expect((await t.takeCommands(node!)).map((command) => command.type)).toEqual(['update_software']);
    expect((await reportApplied(t, node!, update.id)).status).toBe(204);

    const answer = await t.gql(RenderNodeCommandsDocument, { nodeId: node!.id }, who.admin);
    expect(answer.data?.renderNodeCommands).toEqual([
      expect.objectContaining({ type: 'update_software', status: 'Completed', completedAt: expect.any(String), result: { node_agent_version: '2.0.0' } }),
    ]);
    expect(JSON.stringify(answer)).not.toContain('downloads.example.com');
  });

  it('refuses non-admins, unknown nodes and a number of commands out of bounds', async () => {
    const node = await t.node();
    await closeAeTwice(node.id);
    await expectGraphQLAdminOnly((token) => t.gql(RenderNodeCommandsDocument, { nodeId: node.id }, token), who);
    const missing = await t.gql(RenderNodeCommandsDocument, { nodeId: randomUUID() }, who.admin);
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    for (const first of [0, -1]) {
      const bad = await t.gql(RenderNodeCommandsDocument, { nodeId: node.id, first }, who.admin);
      expect(bad.data).toBeNull();
      expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION_FAILED', details: { problems: [{ path: 'first' }] } });
    }
    // Past a page, the operation is refused before it runs, as every page-sized argument is.
    const tooMany = await t.gql(RenderNodeCommandsDocument, { nodeId: node.id, first: 101 }, who.admin);
    expect(tooMany.errors?.[0]?.extensions).toMatchObject({ code: 'PAGE_SIZE_TOO_LARGE', limit: 100, measured: 101, argument: 'first' });
    for (const first of [1, 100, null]) {
      const answer = await t.gql(RenderNodeCommandsDocument, { nodeId: node.id, first }, who.admin);
      expect(answer.errors, `first ${first}`).toBeUndefined();
      expect(answer.data?.renderNodeCommands).toHaveLength(first === 1 ? 1 : 2);
    }
  });
});

/** Two close_ae commands on the node, the first superseded by the second. */
async function closeAeTwice(nodeId: string) {
  for (let index = 0; index < 2; index++) {
    const closed = await t.gql(CloseRenderNodeAeDocument, { id: nodeId }, who.admin);
    expect(closed.data?.closeRenderNodeAe.__typename).toBe('RenderNodeAction');
  }
}
