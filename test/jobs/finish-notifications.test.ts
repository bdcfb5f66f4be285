// tell_me_when_done: one render.finished message on Redis when a job that asked for it fails or
// completes, and none for jobs that did not ask, nor for a cancel.
import { createClient as createRedisClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { topics } from '../../src/domain/events.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { info, submitRender } from '../support/jobs.ts';

let t: TestApp;
const jobs = () => t.app.services.jobs;
let redisSubscriber: ReturnType<typeof createRedisClient>;
const notifications: Array<Record<string, unknown>> = [];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  redisSubscriber = createRedisClient({ url: inject('redisUrl') });
  await redisSubscriber.connect();
  await redisSubscriber.subscribe(t.redisPrefix + topics.notifications, (message) => {
    notifications.push(JSON.parse(message) as Record<string, unknown>);
  });
});

afterAll(async () => {
  await redisSubscriber?.close();
  await t?.close();
});

describe('tell_me_when_done notifications on Redis', () => {
  const about = (jobId: string) => notifications.filter((message) => message.job_id === jobId);

  it('publishes one render.finished message when a job that asked fails', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token, { tell_me_when_done: true });
    await jobs().fail(job.id, 'boom');
    await vi.waitFor(() => expect(about(job.id)).toHaveLength(1), { timeout: 10_000 });
    expect(about(job.id)[0]).toEqual({ type: 'render.finished', user_id: user.id, job_id: job.id, outcome: 'Failed', message: 'boom' });
    await pause(500);
    expect(about(job.id)).toHaveLength(1);
  });

  it('publishes one message with outcome Completed when a job that asked completes', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token, { tell_me_when_done: true });
    for (const to of ['Preparing', 'Rendering', 'Encoding', 'Completed'] as const) await jobs().move(job.id, { to, log: info(to) });
    await vi.waitFor(() => expect(about(job.id)).toHaveLength(1), { timeout: 10_000 });
    expect(about(job.id)[0]).toEqual({ type: 'render.finished', user_id: user.id, job_id: job.id, outcome: 'Completed', message: null });
    await pause(500);
    expect(about(job.id)).toHaveLength(1);
  });

  it('publishes nothing for a job that did not ask, nor for a cancel', async () => {
    const user = await t.user(1000);
    const silent = await submitRender(t, user.token);
    await jobs().fail(silent.id, 'boom');
    const silentDone = await submitRender(t, user.token);
    for (const to of ['Preparing', 'Rendering', 'Encoding', 'Completed'] as const) await jobs().move(silentDone.id, { to, log: info(to) });
    const cancelled = await submitRender(t, user.token, { tell_me_when_done: true });
    expect((await t.rest('POST', `/v1/renders/${cancelled.id}/cancel`, { token: user.token })).status).toBe(200);
    await pause(750);
    expect(about(silent.id)).toEqual([]);
    expect(about(silentDone.id)).toEqual([]);
    expect(about(cancelled.id)).toEqual([]);
  });
});
