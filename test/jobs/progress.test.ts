// What people see of a render's progress, with two agents driven by hand over signed HTTP and the
// service's clock moved by the test: the frames done from 0 to all of them, the percent that
// follows them, and an ETA from the rate frames completed at lately, through REST, GraphQL (query
// and subscription) and the contract's WebSocket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RenderProgressNowDocument, WatchRenderProgressDocument } from '../generated/graphql.ts';
import { completeChunk, replicaReady, reportFrames } from '../support/agent.ts';
import { type AgentCommand, startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { submitRender } from '../support/jobs.ts';
import { subscribe } from '../support/subscriber.ts';

let t: TestApp;
const clock = new ManualClock();

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
});
afterAll(() => t.close());

/** Fresh heartbeats, so the scheduler counts the nodes as alive after the clock moved. */
async function beat(...nodes: TestNode[]) {
  for (const node of nodes) await t.takeCommands(node);
}

/** A scheduling pass after fresh heartbeats; the commands each node then receives, in the order of the nodes. */
async function pass(...nodes: TestNode[]): Promise<AgentCommand[][]> {
  await beat(...nodes);
  await t.app.services.scheduler.assignWork();
  const received: AgentCommand[][] = [];
  for (const node of nodes) received.push(await t.takeCommands(node));
  return received;
}

/** The one command each node receives in a scheduling pass. */
async function onePerNode(first: TestNode, second: TestNode): Promise<[AgentCommand, AgentCommand]> {
  const [[a], [b]] = (await pass(first, second)) as [AgentCommand[], AgentCommand[]];
  if (!a || !b) throw new Error('a node got no work');
  return [a, b];
}

/** Reports the chunk's frames from `from` on, all at once as a busy fleet does, then completes it. */
async function finishChunk(jobId: string, node: TestNode, chunk: AgentCommand, from: number) {
  const frames = Array.from({ length: Number(chunk.end_frame) - from + 1 }, (_, index) => from + index);
  await reportFrames(t, node, jobId, chunk, frames, { atOnce: true });
  await completeChunk(t, node, jobId, chunk);
}

async function restProgress(jobId: string, token: string) {
  const answer = await t.rest('GET', `/v1/renders/${jobId}/progress`, { token });
  expect(answer.status).toBe(200);
  return answer.body;
}

/** The first message of the contract's progress WebSocket. */
async function socketProgress(jobId: string, token: string): Promise<Record<string, unknown>> {
  const socket = new WebSocket(`${t.url.replace('http', 'ws')}/ws/v1/render/${jobId}?token=${token}`);
  try {
    return await new Promise((resolve, reject) => {
      socket.once('message', (data) => resolve(JSON.parse(String(data))));
      socket.once('error', reject);
    });
  } finally {
    socket.close();
  }
}

describe('a render seen from outside', () => {
  it('counts frames done from 0 to all of them, and estimates the time left at the recent frame rate', async () => {
    const user = await t.user(10_000);
    const a = await t.onlineNode('progress-a');
    const b = await t.onlineNode('progress-b');
    // 10 s at 30 fps on two nodes: four chunks of 75 frames.
    const { id: jobId } = await submitRender(t, user.token);
    const watch = subscribe(t.url, user.token, WatchRenderProgressDocument, { jobId });
    try {
      await watch.until(() => true);
      expect(watch.received[0]?.renderProgress).toMatchObject({ step: 'Queued', progress: 0, currentFrame: 0, totalFrames: 300, etaSeconds: null });
      expect(await restProgress(jobId, user.token)).toMatchObject({ step: 'Queued', progress: 0, current_frame: 0, total_frames: 300 });

      // Five minutes in the queue and half a minute preparing: no frame could render meanwhile.
      clock.advance(300_000);
      const delivered = await pass(a, b);
      const [preparer, other] = delivered[0]?.length ? [a, b] : [b, a];
      const [prepare] = delivered.flat();
      expect(prepare).toMatchObject({ type: 'prepare_replica' });
      clock.advance(30_000);
      await replicaReady(t, preparer, jobId, prepare!, 'D:/replicas/progress.aep');
      const [chunkA, chunkB] = await onePerNode(preparer, other);
      expect(await restProgress(jobId, user.token)).toMatchObject({ step: 'Rendering', progress: 0, current_frame: 0, eta_seconds: null });

      // 20 frames a second: each node renders one every 100 ms, for two seconds.
      const startA = Number(chunkA.start_frame);
      const startB = Number(chunkB.start_frame);
      expect(Math.max(startA, startB)).toBe(75);
      for (let step = 0; step < 20; step++) {
        clock.advance(100);
        await reportFrames(t, preparer, jobId, chunkA, [startA + step]);
        await reportFrames(t, other, jobId, chunkB, [startB + step]);
      }
      // 260 frames left at 20 a second: 13 s, not the hour the time since submission would give.
      const fast = await restProgress(jobId, user.token);
      expect(fast).toMatchObject({ step: 'Rendering', progress: 13, current_frame: 40, total_frames: 300 });
      expect(fast.eta_seconds).toBeGreaterThanOrEqual(12);
      expect(fast.eta_seconds).toBeLessThanOrEqual(15);
      const gqlFast = (await t.gql(RenderProgressNowDocument, { jobId }, user.token)).data?.renderProgress;
      expect(gqlFast).toMatchObject({ progress: 13, currentFrame: 40, totalFrames: 300, etaSeconds: fast.eta_seconds });
      expect(await socketProgress(jobId, user.token)).toMatchObject({ progress: 13, current_frame: 40, eta_seconds: fast.eta_seconds });

      // One node stops reporting and the other slows to a frame every 2 s for a minute: only the
      // last minute's 30 frames count, so the 229 frames left take about 458 s.
      for (let step = 1; step <= 31; step++) {
        clock.advance(2000);
        await reportFrames(t, preparer, jobId, chunkA, [startA + 19 + step]);
      }
      const slow = await restProgress(jobId, user.token);
      expect(slow).toMatchObject({ progress: 23, current_frame: 71 });
      expect(slow.eta_seconds).toBeGreaterThanOrEqual(435);
      expect(slow.eta_seconds).toBeLessThanOrEqual(480);

      // The rest, then the encode.
      await finishChunk(jobId, preparer, chunkA, startA + 51);
      await finishChunk(jobId, other, chunkB, startB + 20);
      const [chunkC, chunkD] = await onePerNode(preparer, other);
      await finishChunk(jobId, preparer, chunkC, Number(chunkC.start_frame));
      await finishChunk(jobId, other, chunkD, Number(chunkD.start_frame));
      expect(await restProgress(jobId, user.token)).toMatchObject({ step: 'Encoding', progress: 99, current_frame: 300, total_frames: 300, eta_seconds: null });
      const delivery = await pass(preparer, other);
      const encoder = delivery[0]?.length ? preparer : other;
      const [encode] = delivery.flat();
      expect(encode).toMatchObject({ type: 'encode' });
      const upload = await t.signed(encoder, 'PUT', `/v1/internal/render/jobs/${jobId}/outputs/mp4?lease=${encode?.lease}`, Buffer.from('video'));
      expect(upload.status).toBe(204);
      const encoded = await t.signed(encoder, 'POST', `/v1/internal/render/jobs/${jobId}/encoded`, {
        lease: encode?.lease,
        width: 1280,
        height: 720,
        duration_sec: 10,
        formats: ['mp4'],
      });
      expect(encoded.status).toBe(204);

      const done = { step: 'Completed', progress: 100, current_frame: 300, total_frames: 300, eta_seconds: 0 };
      expect(await restProgress(jobId, user.token)).toMatchObject(done);
      expect(await socketProgress(jobId, user.token)).toMatchObject(done);
      expect((await t.gql(RenderProgressNowDocument, { jobId }, user.token)).data?.renderProgress).toMatchObject({
        step: 'Completed',
        progress: 100,
        currentFrame: 300,
        totalFrames: 300,
        etaSeconds: 0,
      });
      await watch.end();
      const seen = watch.received.map((event) => event.renderProgress);
      expect(seen.at(-1)).toMatchObject({ step: 'Completed', progress: 100, currentFrame: 300, totalFrames: 300, etaSeconds: 0 });
      // Frames done only grow, one report at a time: the first frame of the chunk starting at 75
      // is one frame done, not 75.
      const counts = seen.map((event) => event.currentFrame ?? -1);
      expect(counts).toEqual([...counts].sort((x, y) => x - y));
      expect(seen.find((event) => (event.currentFrame ?? 0) > 0)?.currentFrame).toBeLessThanOrEqual(2);
      for (const event of seen) {
        const share = Math.floor(((event.currentFrame ?? 0) * 100) / 300);
        expect(event.progress).toBe(event.step === 'Completed' ? 100 : Math.min(99, share));
      }
    } finally {
      await watch.close();
    }
  }, 120_000);
});
