// Whichever way a job ends, a user who asked (tell_me_when_done) hears it exactly once: an agent
// completing the encode, an agent giving up on the last attempt of a chunk, a crash on that last
// attempt, or a scheduling pass finding a frame range out of attempts. Agents are driven over
// signed HTTP; the notification is read where the notification service reads it, on Redis.
import { createClient as createRedisClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { topics } from '../../src/domain/events.ts';
import { MAX_CHUNK_ATTEMPTS } from '../../src/domain/scheduling/failure-policy.ts';
import { chunkOn, framesOf, placeOn, preparedOn, reportFrames } from '../support/agent.ts';
import { startTestApp, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { jobChunksAttempt } from '../support/rows.ts';

let t: TestApp;
let user: TestUser;
let redis: ReturnType<typeof createRedisClient>;
const notifications: Array<Record<string, unknown>> = [];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  user = await t.user(100_000);
  redis = createRedisClient({ url: inject('redisUrl') });
  await redis.connect();
  await redis.subscribe(t.redisPrefix + topics.notifications, (message) => notifications.push(JSON.parse(message)));
});

afterAll(async () => {
  await redis?.close();
  await t?.close();
});

/** A 30-frame job that asked to be told, its replica prepared on `node`: it renders. */
async function renderingJob(node: TestNode): Promise<string> {
  const job = await submitRender(t, user.token, { tell_me_when_done: true, duration_sec: 1, frame_rate: 30 });
  await preparedOn(t, node, job.id);
  return job.id;
}

/** The job's chunks have had every attempt but the last: the next failure is final. No door sets this. */
const onLastAttempt = (jobId: string) => jobChunksAttempt(t, jobId, MAX_CHUNK_ATTEMPTS - 1);

/** The one render.finished message about the job, once no second one followed. */
async function toldOnce(jobId: string): Promise<Record<string, unknown>> {
  const about = () => notifications.filter((message) => message.job_id === jobId);
  await vi.waitFor(() => expect(about()).toHaveLength(1), { timeout: 10_000 });
  await pause(500);
  expect(about()).toHaveLength(1);
  return about()[0] as Record<string, unknown>;
}

const finished = (jobId: string, outcome: string) => ({ type: 'render.finished', user_id: user.id, job_id: jobId, outcome });

describe('render.finished on every path that ends a job', () => {
  it('is sent once when an agent completes the encode', async () => {
    const node = await t.onlineNode('ending-encoder');
    const jobId = await renderingJob(node);
    for (;;) {
      const commands = await placeOn(t, node);
      const chunk = commands.find((command) => command.type === 'render_chunk');
      const encode = commands.find((command) => command.type === 'encode');
      if (encode) {
        const upload = await t.signed(node, 'PUT', `/v1/internal/render/jobs/${jobId}/outputs/mp4?lease=${encode.lease}`, Buffer.from('bytes'));
        expect(upload.status).toBe(204);
        const encoded = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/encoded`, {
          lease: encode.lease,
          width: 1280,
          height: 720,
          duration_sec: 1,
          formats: ['mp4'],
        });
        expect(encoded.status).toBe(204);
        break;
      }
      expect(chunk, JSON.stringify(commands)).toBeDefined();
      if (!chunk) return;
      await reportFrames(t, node, jobId, chunk, framesOf(chunk));
      const completed = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/complete`, { lease: chunk.lease });
      expect(completed.status).toBe(204);
    }
    expect(await toldOnce(jobId)).toEqual({ ...finished(jobId, 'Completed'), message: null });
  });

  it('is sent once when an agent gives up on the last attempt of a chunk', async () => {
    const node = await t.onlineNode('ending-quitter');
    const jobId = await renderingJob(node);
    await onLastAttempt(jobId);
    const chunk = await chunkOn(t, node);
    const failed = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/fail`, { lease: chunk.lease, error: 'missing font' });
    expect(failed.status).toBe(204);
    expect(await toldOnce(jobId)).toEqual({ ...finished(jobId, 'Failed'), message: expect.stringMatching(/failed 5 times/) });
  });

  it('is sent once when After Effects crashes on the last attempt of a chunk', async () => {
    const node = await t.onlineNode('ending-crasher');
    const jobId = await renderingJob(node);
    await onLastAttempt(jobId);
    const chunk = await chunkOn(t, node);
    const crashed = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/crash`, {
      node_id: node.id,
      frame_job_id: chunk.frame_job_id,
      lease: chunk.lease,
      crash_signal: 'SIGSEGV',
    });
    expect(crashed.status, JSON.stringify(crashed.body)).toBe(200);
    expect(await toldOnce(jobId)).toEqual({ ...finished(jobId, 'Failed'), message: expect.stringMatching(/failed 5 times/) });
  });

  it('is sent once when a scheduling pass finds a frame range out of attempts', async () => {
    const node = await t.onlineNode('ending-scheduled');
    const jobId = await renderingJob(node);
    await jobChunksAttempt(t, jobId, MAX_CHUNK_ATTEMPTS);
    await t.app.services.scheduler.assignWork();
    expect(await toldOnce(jobId)).toEqual({ ...finished(jobId, 'Failed'), message: expect.stringMatching(/failed 5 times/) });
    const job = await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token });
    expect(job.body.step).toBe('Failed');
  });
});
