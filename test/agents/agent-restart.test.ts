// An agent that restarts (its process crashed or was updated, and came back before it was missed)
// reports online again, and runs nothing whatever it ran before. Found by the soak: the work the
// service still thought it held stayed with it, a chunk until the stall sweep three minutes on,
// an encode for good, and the job never ended.
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
