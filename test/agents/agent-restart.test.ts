// The work the service thinks a node holds, when the node's agent restarts or the node is
// released. Found by the soak:
// - an agent that restarted (crashed or updated, back before it was missed) reports online and
//   runs nothing, yet the work it held stayed with it: a chunk until the stall sweep three minutes
//   on, an encode for good, and the job never ended;
// - a cancelled job's chunk that a node had taken stayed open, and when that node was lost the
//   chunk was "moved off" it, giving the ended job an event after its terminal one.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkOn, clearQueue, commandOf, completeChunk, framesOf, placeOn, preparedOn, reportFrames } from '../support/agent.ts';
import { startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
});
afterAll(() => t?.close());

const restart = async (node: TestNode) => {
  // Another body than the first online report's, whose signature may be of the same second.
  const online = await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/online`, { available_ae_versions: ['24.1'], node_agent_version: '2.0.1-restarted' });
  expect(online.status, JSON.stringify(online.body)).toBe(200);
};

describe('an agent that restarts and reports online', () => {
  it('gives up the chunk it held: its missing frames go to the next node at once', async () => {
    const user = await t.user(100_000);
    const [node, other] = [await t.onlineNode('restarting-renderer'), await t.onlineNode('next-renderer')];
    const job = await submitRender(t, user.token, { duration_sec: 1, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    const chunk = await chunkOn(t, node);
    const [first, second, ...missing] = framesOf(chunk);
    await reportFrames(t, node, job.id, chunk, [first as number, second as number]);

    await restart(node);
    const prisma = t.app.services.db.prisma;
    expect(await prisma.frameJob.findUniqueOrThrow({ where: { id: String(chunk.frame_job_id) } })).toMatchObject({ status: 'Failed', nodeId: node.id });
    const next = await chunkOn(t, other);
    expect(framesOf(next)).toEqual(missing);
    const late = await t.signed(node, 'POST', `/v1/internal/render/jobs/${job.id}/frames`, {
      frame_job_id: chunk.frame_job_id,
      frame_number: missing[0],
      lease: chunk.lease,
    });
    expect(late.status).toBe(409);
  });

  it('gives up the encode it was running: the job is encoded by the next node', async () => {
    const user = await t.user(100_000);
    await clearQueue(t);
    const node = await t.onlineNode('restarting-encoder');
    const job = await submitRender(t, user.token, { duration_sec: 1, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    const prisma = t.app.services.db.prisma;
    while ((await prisma.renderJob.findUniqueOrThrow({ where: { id: job.id } })).step === 'Rendering') {
      const chunk = await chunkOn(t, node);
      await reportFrames(t, node, job.id, chunk, framesOf(chunk));
      await completeChunk(t, node, job.id, chunk);
    }
    const encode = commandOf(await placeOn(t, node), 'encode');

    await restart(node);
    expect(await prisma.nodeCommand.findUniqueOrThrow({ where: { id: encode.command_id } })).toMatchObject({ status: 'Superseded' });
    const again = commandOf(await placeOn(t, node), 'encode');
    expect(again).toMatchObject({ job_id: job.id });
    expect(again.command_id).not.toBe(encode.command_id);
  });
});

describe('a node released after the job it worked on was cancelled', () => {
  it('moves nothing of the ended job: the job keeps its terminal event as its last', async () => {
    await clearQueue(t);
    const user = await t.user(100_000);
    const node = await t.onlineNode('released-after-cancel');
    const job = await submitRender(t, user.token, { duration_sec: 1, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    await chunkOn(t, node);
    const cancelled = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    const prisma = t.app.services.db.prisma;
    const { eventSeq } = await prisma.renderJob.findUniqueOrThrow({ where: { id: job.id } });

    // What the heartbeat sweep does to a lost node, through the door an admin has.
    const admin = await t.token(randomUUID(), { admin: true });
    expect((await t.rest('POST', `/v1/nodes/${node.id}/release`, { token: admin })).status).toBe(204);
    expect(await prisma.renderJob.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({ step: 'Cancelled', eventSeq });
    expect(await prisma.jobLog.count({ where: { renderJobId: job.id, message: { startsWith: 'Work moved off' } } })).toBe(0);
  });
});
