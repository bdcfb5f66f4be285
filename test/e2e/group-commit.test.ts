// Heartbeats and frame reports are written in batches (src/domain/group-commit.ts). Requests sent
// at the same moment share a batch; each is still answered for itself, after its write committed,
// with its own refusal when it has one.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parkAllNodes } from '../support/agent.ts';
import { type AgentCommand, startTestApp, type TestApp, type TestNode } from '../support/app.ts';

let t: TestApp;
let user: { id: string; token: string };
let admin: string;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  user = await t.user(10_000);
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t.close());

const heartbeat = (node: TestNode, body: Record<string, unknown>) =>
  t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/heartbeat`, { recorded_at: new Date().toISOString(), ...body });

describe('batched heartbeats', () => {
  it('stores every one of many simultaneous heartbeats and answers each node with its own commands', async () => {
    const prisma = t.app.services.db.prisma;
    const nodes = await Promise.all(Array.from({ length: 12 }, (_, index) => t.onlineNode(`batch-hb-${index}-${randomUUID().slice(0, 8)}`)));
    const [withCommand, inMaintenance] = nodes as [TestNode, TestNode];
    expect((await t.rest('POST', `/v1/nodes/${withCommand.id}/close-ae`, { token: admin })).status).toBe(204);
    expect((await t.rest('POST', `/v1/nodes/${inMaintenance.id}/maintenance`, { token: admin })).status).toBe(200);

    const answers = await Promise.all(
      nodes.map((node, index) => heartbeat(node, { status: index % 2 === 0 ? 'Busy' : 'Online', cpu_pct: index, current_frame: index })),
    );
    expect(answers.map((answer) => answer.status)).toEqual(nodes.map(() => 200));
    answers.forEach((answer, index) => {
      const expected = index === 0 ? [expect.objectContaining({ type: 'close_ae' })] : [];
      expect(answer.body.pending_commands).toEqual(expected);
    });
    const command = { id: answers[0]!.body.pending_commands[0].command_id as string };

    const stored = await prisma.renderNode.findMany({ where: { id: { in: nodes.map((node) => node.id) } } });
    for (const [index, node] of nodes.entries()) {
      const row = stored.find((candidate) => candidate.id === node.id);
      // Maintenance is an admin's to end; the agent's report does not.
      expect(row?.status).toBe(index === 1 ? 'Maintenance' : index % 2 === 0 ? 'Busy' : 'Online');
      expect(row).toMatchObject({ lastCpuPct: index, currentFrame: index });
      expect(await prisma.nodeHealthSample.count({ where: { nodeId: node.id } })).toBe(1);
    }
    // Delivered until acknowledged: the next heartbeat brings the command again.
    const again = await heartbeat(withCommand, {});
    expect(again.body.pending_commands).toEqual([expect.objectContaining({ command_id: command.id })]);
    expect(await prisma.nodeCommand.findUniqueOrThrow({ where: { id: command.id } })).toMatchObject({ deliveryCount: 2 });
    // The next test places work on nodes of its own.
    await parkAllNodes(t);
  });
});

describe('batched frame reports', () => {
  it('accepts the reports of several nodes sent at once, refuses the bad ones each with its own error, and counts every frame once', async () => {
    const { scheduler, db } = t.app.services;
    const prisma = db.prisma;
    const a = await t.onlineNode(`batch-a-${randomUUID().slice(0, 8)}`);
    const b = await t.onlineNode(`batch-b-${randomUUID().slice(0, 8)}`);
    const submitted = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: { saved_project_id: randomUUID(), quality: 'High', resolution: 'HD', duration_sec: 2, frame_rate: 30 },
    });
    const jobId = submitted.body.id as string;
    const takeCommands = async (node: TestNode): Promise<AgentCommand[]> => {
      const commands = (await heartbeat(node, {})).body.pending_commands as AgentCommand[];
      for (const command of commands) await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/commands/${command.command_id}/ack`);
      return commands;
    };
    await scheduler.assignWork();
    const preparer = (await prisma.nodeCommand.findFirst({ where: { nodeId: a.id } })) ? a : b;
    const [prepare] = await takeCommands(preparer);
    const ready = await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/replica-ready`, {
      node_id: preparer.id,
      replica_path: 'D:/replicas/x.aep',
      lease: prepare?.lease,
    });
    expect(ready.status).toBe(204);
    expect((await scheduler.assignWork()).assigned).toBe(2);
    const [chunkA] = await takeCommands(a);
    const [chunkB] = await takeCommands(b);
    const seqBefore = (await prisma.renderJob.findUniqueOrThrow({ where: { id: jobId } })).eventSeq;

    const report = (node: TestNode, chunk: AgentCommand | undefined, frame: number, extra: Record<string, unknown> = {}) =>
      t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/frames`, {
        frame_job_id: chunk?.frame_job_id,
        frame_number: frame,
        file_size_bytes: 1024,
        lease: chunk?.lease,
        ...extra,
      });
    const framesOf = (chunk: AgentCommand | undefined) =>
      Array.from({ length: (chunk?.end_frame as number) - (chunk?.start_frame as number) + 1 }, (_, index) => (chunk?.start_frame as number) + index);
    const good = [...framesOf(chunkA).map((frame) => [a, chunkA, frame] as const), ...framesOf(chunkB).map((frame) => [b, chunkB, frame] as const)];
    const [goodAnswers, duplicate, stale, unknownChunk, outside] = await Promise.all([
      Promise.all(good.map(([node, chunk, frame]) => report(node, chunk, frame, frame === chunk?.start_frame ? { preview_b64: 'aGVsbG8=' } : {}))),
      report(a, chunkA, chunkA?.start_frame as number),
      report(a, chunkA, chunkA?.start_frame as number, { lease: 'not-the-lease' }),
      report(a, chunkA, chunkA?.start_frame as number, { frame_job_id: randomUUID() }),
      report(b, chunkB, (chunkB?.end_frame as number) + 1),
    ]);
    expect(goodAnswers.map((answer) => answer.status)).toEqual(good.map(() => 204));
    expect(duplicate.status).toBe(204);
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('STALE_LEASE');
    expect(unknownChunk.status).toBe(404);
    expect(outside.status).toBe(400);

    const job = await prisma.renderJob.findUniqueOrThrow({ where: { id: jobId } });
    expect(job.framesRendered).toBe(good.length);
    const answered = await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token });
    expect(answered.body.render_progress).toBe(Math.min(99, Math.floor((good.length * 100) / job.totalFrames)));
    expect(job.imagePreviewB64).toBe('aGVsbG8=');
    expect(job.eventSeq).toBeGreaterThan(seqBefore);
    expect(await prisma.frame.count({ where: { renderJobId: jobId, rendered: true } })).toBe(good.length);
    for (const [node, chunk] of [[a, chunkA], [b, chunkB]] as const) {
      const row = await prisma.frameJob.findUniqueOrThrow({ where: { id: chunk?.frame_job_id as string } });
      expect(row).toMatchObject({ status: 'Rendering', framesRendered: framesOf(chunk).length, framesValidated: framesOf(chunk).length });
      expect(await prisma.frame.count({ where: { frameJobId: row.id, nodeId: node.id, rendered: true } })).toBe(framesOf(chunk).length);
    }
  });
});
