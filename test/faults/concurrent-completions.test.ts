// Two nodes finish the last chunks of a job at the same moment: the job must still move to
// Encoding. Each completion runs in its own transaction, and without taking turns each would see
// the other's chunk still open and leave the job in Rendering forever (found by the Redis outage
// test, where the fleet finishes jobs in parallel).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicaReady, reportFrames } from '../support/agent.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';

const JOBS = 6;

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
});
afterAll(() => t?.close());

describe('simultaneous chunk completions', () => {
  it('move every job to Encoding exactly when its last chunk completes', { timeout: 60_000 }, async () => {
    const { scheduler, db } = t.app.services;
    const user = await t.user(100_000);
    const nodes = [await t.onlineNode('race-a'), await t.onlineNode('race-b')];
    const stuck: string[] = [];
    for (let n = 0; n < JOBS; n++) {
      // 20 frames on 2 nodes: one chunk of 10 each.
      const { id: jobId } = await submitRender(t, user.token, { quality: 'Low', duration_sec: 0.8, frame_rate: 25 });
      await scheduler.assignWork();
      const given = await Promise.all(nodes.map(async (node) => ({ node, commands: await t.takeCommands(node) })));
      const prepare = given.flatMap(({ node, commands }) => commands.filter((command) => command.type === 'prepare_replica').map((command) => ({ node, command })))[0];
      if (!prepare) throw new Error('no node was asked to prepare the replica');
      await replicaReady(t, prepare.node, jobId, prepare.command, 'D:/replicas/race.aep');
      await scheduler.assignWork();
      const chunks = await Promise.all(
        nodes.map(async (node) => {
          const chunk = (await t.takeCommands(node)).find((command) => command.type === 'render_chunk');
          if (!chunk) throw new Error(`${node.id} was given no chunk`);
          return { node, chunk };
        }),
      );
      for (const { node, chunk } of chunks) {
        const [first, last] = [Number(chunk.start_frame), Number(chunk.end_frame)];
        await reportFrames(t, node, jobId, chunk, Array.from({ length: last - first + 1 }, (_, index) => first + index));
      }
      const completions = await Promise.all(
        chunks.map(({ node, chunk }) =>
          t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/complete`, { lease: chunk.lease }),
        ),
      );
      expect(completions.map((answer) => answer.status)).toEqual([204, 204]);
      const job = await db.prisma.renderJob.findUniqueOrThrow({ where: { id: jobId } });
      if (job.step !== 'Encoding') stuck.push(jobId);
      // Cancelling frees the node the encode went to, for the next job.
      expect((await t.rest('POST', `/v1/renders/${jobId}/cancel`, { token: user.token, body: {} })).status).toBe(200);
      for (const node of nodes) await t.takeCommands(node);
    }
    expect(stuck).toEqual([]);
  });
});
