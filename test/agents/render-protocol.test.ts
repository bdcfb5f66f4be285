// The whole agent protocol by hand, step by step: a job goes from Queued to Completed on two
// nodes, one of which dies mid-chunk, and only its missing frames are rendered again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentCommand, startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { submitRender } from '../support/jobs.ts';

type Node = TestNode;
type Command = AgentCommand;

let t: TestApp;
const clock = new ManualClock();
let user: { id: string; token: string };

const frame = (jobId: string, node: Node, command: Command, frameNumber: number) =>
  t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/frames`, {
    frame_job_id: command.frame_job_id,
    frame_number: frameNumber,
    file_size_bytes: 1024,
    lease: command.lease,
  });

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  user = await t.user(10_000);
});
afterAll(() => t.close());

describe('a render through the agent protocol', () => {
  it('goes Queued -> Preparing -> Rendering -> Encoding -> Completed, surviving a dead node', async () => {
    const { scheduler, db } = t.app.services;
    const prisma = db.prisma;
    const a = await t.onlineNode('proto-a');
    const b = await t.onlineNode('proto-b');
    const { id: jobId } = await submitRender(t, user.token, { duration_sec: 2 });
    // 60 frames on 2 nodes: chunks of 15 (two per node).
    expect(await prisma.frameJob.count({ where: { renderJobId: jobId } })).toBe(4);

    // Preparing: one node builds the replica.
    expect((await scheduler.assignWork()).assigned).toBe(1);
    const [preparer, other] = (await prisma.nodeCommand.findFirst({ where: { nodeId: a.id } })) ? [a, b] : [b, a];
    const [prepare] = await t.takeCommands(preparer);
    expect(prepare).toMatchObject({ type: 'prepare_replica', job_id: jobId, lease: expect.any(String) });
    expect((await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token })).body.step).toBe('Preparing');
    const wrongLease = await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/replica-ready`, {
      node_id: preparer.id,
      replica_path: 'D:/replicas/x.aep',
      lease: 'not-the-lease',
    });
    expect(wrongLease.status).toBe(409);
    expect(wrongLease.body.error.code).toBe('STALE_LEASE');
    const ready = await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/replica-ready`, {
      node_id: preparer.id,
      replica_path: 'D:/replicas/x.aep',
      lease: prepare?.lease,
    });
    expect(ready.status).toBe(204);
    expect((await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token })).body.step).toBe('Rendering');

    // Rendering: each node gets a chunk.
    expect((await scheduler.assignWork()).assigned).toBe(2);
    const [chunkA] = await t.takeCommands(preparer);
    const [chunkB] = await t.takeCommands(other);
    expect(chunkA).toMatchObject({ type: 'render_chunk', replica_path: 'D:/replicas/x.aep' });
    expect(chunkB).toMatchObject({ type: 'render_chunk' });
    let reportedFrames = 0;
    for (let n = Number(chunkA?.start_frame); n <= Number(chunkA?.end_frame); n++) {
      expect((await frame(jobId, preparer, chunkA as Command, n)).status).toBe(204);
      reportedFrames++;
    }
    // The same frame reported again (a retry, signed anew a second later) changes nothing.
    clock.advance(1000);
    expect((await frame(jobId, preparer, chunkA as Command, Number(chunkA?.start_frame))).status).toBe(204);
    const outside = await frame(jobId, preparer, chunkA as Command, Number(chunkA?.end_frame) + 1);
    expect(outside.status).toBe(400);
    expect(
      (await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunkA?.frame_job_id}/complete`, { lease: chunkA?.lease })).status,
    ).toBe(204);

    // The other node renders 5 frames, then dies.
    const bStart = Number(chunkB?.start_frame);
    for (let n = bStart; n < bStart + 5; n++) {
      expect((await frame(jobId, other, chunkB as Command, n)).status).toBe(204);
      reportedFrames++;
    }
    clock.advance(16_000);
    await t.takeCommands(preparer);
    expect((await scheduler.sweepHeartbeats()).offline).toEqual([other.id]);
    // The job's log says what happened to the lost node's work, as it does for an admin's release.
    const logs = (await t.rest('GET', `/v1/renders/${jobId}/logs?level=warn`, { token: user.token })).body.logs as Record<string, unknown>[];
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'warn', node_id: other.id, message: `Work moved off node ${other.id}: node missed 3 heartbeats` }),
    );
    const late = await frame(jobId, other, chunkB as Command, bStart + 5);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('STALE_LEASE');
    const recut = await prisma.frameJob.findMany({ where: { renderJobId: jobId, status: 'Pending' }, orderBy: { startFrame: 'asc' } });
    expect(recut.map((chunk) => [chunk.startFrame, chunk.endFrame])).toContainEqual([bStart + 5, Number(chunkB?.end_frame)]);

    // The survivor renders everything that is left, one chunk at a time, until it is given the encode.
    let commands: Command[] = [];
    for (let pass = 0; pass < 10; pass++) {
      await scheduler.assignWork();
      commands = await t.takeCommands(preparer);
      const chunk = commands.find((command) => command.type === 'render_chunk');
      if (!chunk) break;
      for (let n = Number(chunk.start_frame); n <= Number(chunk.end_frame); n++) {
        expect((await frame(jobId, preparer, chunk, n)).status).toBe(204);
        reportedFrames++;
      }
      await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/complete`, { lease: chunk.lease });
      clock.advance(1000);
    }
    // Every frame was rendered exactly once: the dead node's 5 frames were not rendered again.
    expect(reportedFrames).toBe(60);
    expect(await prisma.frame.count({ where: { renderJobId: jobId, rendered: true } })).toBe(60);
    expect((await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token })).body.step).toBe('Encoding');

    // Encoding: upload the output, report it, the export exists and downloads.
    const [encode] = commands;
    expect(encode).toMatchObject({ type: 'encode', job_id: jobId, formats: ['mp4'] });
    const video = Buffer.from('not really an mp4, but bytes all the same');
    const upload = await t.signed(preparer, 'PUT', `/v1/internal/render/jobs/${jobId}/outputs/mp4?lease=${encode?.lease}`, video);
    expect(upload.status).toBe(204);
    const encoded = await t.signed(preparer, 'POST', `/v1/internal/render/jobs/${jobId}/encoded`, {
      lease: encode?.lease,
      width: 1280,
      height: 720,
      duration_sec: 2,
      formats: ['mp4'],
    });
    expect(encoded.status).toBe(204);
    const done = await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token });
    expect(done.body).toMatchObject({ step: 'Completed', render_progress: 100, export: { width: 1280, height: 720 } });
    const exported = await prisma.export.findUniqueOrThrow({ where: { renderJobId: jobId }, include: { files: true } });
    const { url } = await t.app.services.store.presignGet(exported.files[0]?.path ?? '', 60);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(video);
    const node = await prisma.renderNode.findUniqueOrThrow({ where: { id: preparer.id } });
    expect(node.status).toBe('Online');
  });
});
