// The nodes that failed a job's chunks, as RenderJob.nodeBlocks shows them: made by an agent's
// chunk failure reports, read by whoever may see the job, with the node itself for admins only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RenderJobNodeBlocksDocument } from '../generated/graphql.ts';
import { chunkOn, clearQueue, preparedOn } from '../support/agent.ts';
import { type AgentCommand, startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { type Callers, callers } from '../support/callers.ts';
import { submitRender } from '../support/jobs.ts';

let t: TestApp;
let who: Callers;
let owner: TestUser;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  who = await callers(t);
  owner = await t.user(100_000);
});
afterAll(() => t.close());

/** The node gives up on its chunk, as its agent reports it. */
async function failChunk(node: TestNode, jobId: string, chunk: AgentCommand) {
  const failed = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/fail`, { lease: chunk.lease, error: 'missing font' });
  expect(failed.status, JSON.stringify(failed.body)).toBe(204);
}

describe('RenderJob.nodeBlocks', () => {
  it('shows each node that failed the job with its failures, and when the policy kept one off it', async () => {
    const flaky = await t.onlineNode('blocks-flaky');
    const once = await t.onlineNode('blocks-once');
    await clearQueue(t);
    const job = await submitRender(t, owner.token, { quality: 'Low', duration_sec: 1 });
    await preparedOn(t, flaky, job.id);

    const before = await t.gql(RenderJobNodeBlocksDocument, { id: job.id }, owner.token);
    expect(before.data?.renderJob.nodeBlocks).toEqual([]);

    await failChunk(once, job.id, await chunkOn(t, once));
    for (let failure = 0; failure < 3; failure++) await failChunk(flaky, job.id, await chunkOn(t, flaky));
    const kept = await t.app.services.db.prisma.jobNodeBlock.findUniqueOrThrow({
      where: { renderJobId_nodeId: { renderJobId: job.id, nodeId: flaky.id } },
    });

    const asOwner = await t.gql(RenderJobNodeBlocksDocument, { id: job.id }, owner.token);
    expect(asOwner.errors).toBeUndefined();
    expect(asOwner.data?.renderJob.nodeBlocks).toEqual([
      { nodeId: flaky.id, failures: 3, blockedAt: kept.blockedAt?.toISOString(), node: null },
      { nodeId: once.id, failures: 1, blockedAt: null, node: null },
    ]);
    expect(kept.blockedAt).not.toBeNull();

    const asAdmin = await t.gql(RenderJobNodeBlocksDocument, { id: job.id }, who.admin);
    expect(asAdmin.data?.renderJob.nodeBlocks.map((block) => block.node)).toEqual([
      { id: flaky.id, name: 'blocks-flaky' },
      { id: once.id, name: 'blocks-once' },
    ]);
    // A service reads the job as its owner does; another user does not find it.
    const asService = await t.gql(RenderJobNodeBlocksDocument, { id: job.id }, TEST_SERVICE_TOKEN);
    expect(asService.data?.renderJob.nodeBlocks).toEqual(asOwner.data?.renderJob.nodeBlocks);
    const asOther = await t.gql(RenderJobNodeBlocksDocument, { id: job.id }, who.user);
    expect(asOther.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
