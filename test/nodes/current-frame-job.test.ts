// RenderNode.currentFrameJob: the chunk a node holds while it renders, through the agent protocol.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RenderNodeCurrentFrameJobDocument } from '../generated/graphql.ts';
import { chunkOn, clearQueue, completeChunk, framesOf, preparedOn, reportFrames } from '../support/agent.ts';
import { startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { type Callers, callers, expectGraphQLAdminOnly } from '../support/callers.ts';
import { submitRender } from '../support/jobs.ts';

let t: TestApp;
let who: Callers;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  who = await callers(t);
});
afterAll(() => t.close());

async function currentFrameJob(node: TestNode) {
  const answer = await t.gql(RenderNodeCurrentFrameJobDocument, { id: node.id }, who.admin);
  expect(answer.errors).toBeUndefined();
  return answer.data?.renderNode.currentFrameJob;
}

describe('RenderNode.currentFrameJob', () => {
  it('is the chunk the node renders while it works, and null before and once it is done', async () => {
    const owner = await t.user(10_000);
    const worker = await t.onlineNode('current-worker');
    const preparer = await t.onlineNode('current-preparer');
    await clearQueue(t);
    const job = await submitRender(t, owner.token, { quality: 'Low', duration_sec: 1 });
    await preparedOn(t, preparer, job.id);
    expect(await currentFrameJob(worker)).toBeNull();

    const chunk = await chunkOn(t, worker);
    const held = { id: chunk.frame_job_id, renderJobId: job.id, startFrame: chunk.start_frame, endFrame: chunk.end_frame, node: { id: worker.id } };
    expect(await currentFrameJob(worker)).toEqual({ ...held, status: 'Assigned' });
    const [first, ...rest] = framesOf(chunk);
    await reportFrames(t, worker, job.id, chunk, [first!]);
    expect(await currentFrameJob(worker)).toEqual({ ...held, status: 'Rendering' });
    // The node that only prepared the job's replica holds no chunk.
    expect(await currentFrameJob(preparer)).toBeNull();

    await reportFrames(t, worker, job.id, chunk, rest);
    await completeChunk(t, worker, job.id, chunk);
    expect(await currentFrameJob(worker)).toBeNull();
  });

  it('is read as the node is, by admins only', async () => {
    const node = await t.node();
    await expectGraphQLAdminOnly((token) => t.gql(RenderNodeCurrentFrameJobDocument, { id: node.id }, token), who);
  });
});
