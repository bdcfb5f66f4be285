// Subscriptions over a real WebSocket (graphql-ws): renderProgress from the current state on, one
// event per change and in order, also when events queue up; renderJobUpdated for the caller's own
// jobs, for an admin one user's or everyone's; refusals and an internal failure sent as errors.
import { randomUUID } from 'node:crypto';
import { createClient as createRedisClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { topics } from '../../src/domain/events.ts';
import { jobChanges } from '../../src/domain/jobs/job-changes.ts';
import { systemClock } from '../../src/ports.ts';
import { WatchRenderJobsDocument, WatchRenderProgressDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { info, submitRender } from '../support/jobs.ts';
import { markRendered } from '../support/rows.ts';
import { subscribe } from '../support/subscriber.ts';

let t: TestApp;
let admin: string;
let redis: ReturnType<typeof createRedisClient>;
const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the service has subscribed a Redis channel (a subscription is live). */
async function channelSubscribed(channel: string): Promise<void> {
  await vi.waitFor(
    async () => {
      const name = t.redisPrefix + channel;
      const counts = (await redis.pubSubNumSub([name])) as Record<string, number>;
      expect(counts[name] ?? 0).toBeGreaterThan(0);
    },
    { timeout: 10_000, interval: 25 },
  );
}

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
  redis = createRedisClient({ url: inject('redisUrl') });
  await redis.connect();
});

afterAll(async () => {
  await redis?.close();
  await t?.close();
});

describe('subscriptions over a real WebSocket (graphql-ws)', () => {
  it('renderProgress yields the current state first, then one event per change, in order', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const watch = subscribe(t.url, user.token, WatchRenderProgressDocument, { jobId: job.id });
    try {
      const [first] = await watch.results(1);
      expect(watch.errors).toEqual([]);
      expect(first?.renderProgress).toEqual({
        jobId: job.id,
        step: 'Queued',
        progress: 0,
        currentFrame: 0,
        totalFrames: 300,
        etaSeconds: null,
        activeNodes: 0,
        message: 'Job queued',
      });

      await jobs().move(job.id, { to: 'Preparing', log: info('Preparing the replica') });
      await watch.results(2);
      await jobs().move(job.id, { to: 'Rendering', log: info('Rendering started') });
      await watch.results(3);
      await markRendered(t, job.id, 60);
      const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
      expect(response.status).toBe(200);
      const events = await watch.results(4);
      expect(watch.errors).toEqual([]);
      expect(events.map((event) => [event.renderProgress.step, event.renderProgress.progress, event.renderProgress.message])).toEqual([
        ['Queued', 0, 'Job queued'],
        ['Preparing', 0, 'Preparing the replica'],
        ['Rendering', 0, 'Rendering started'],
        ['Cancelled', 20, 'Job cancelled: Cancelled by the user'],
      ]);
      expect(events[3]?.renderProgress).toMatchObject({ currentFrame: 60, etaSeconds: null, totalFrames: 300 });
      await pause(300);
      expect(watch.received).toHaveLength(4);
    } finally {
      await watch.close();
    }
  });

  it('renderProgress shows every change as it was, also when its events queue up behind one another', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const watch = subscribe(t.url, user.token, WatchRenderProgressDocument, { jobId: job.id });
    try {
      await watch.results(1);
      // Changes that land faster than the subscriber takes their events (a busy replica, a
      // lagging Redis connection, agents reporting in bursts). Made deterministic here by
      // committing every move first, then publishing their events in the same order: the units
      // of work publish into a list that is replayed onto the bus afterwards.
      const steps = ['Preparing', 'Rendering', 'Encoding', 'Completed'] as const;
      const held: Array<[string, unknown]> = [];
      const changeJobs = jobChanges({
        prisma: prisma(),
        bus: { publish: async (topic, payload) => void held.push([topic, payload]) },
        clock: systemClock,
      });
      for (const to of steps) await changeJobs((changes) => changes.move(job.id, { to, log: info(`now ${to}`) }));
      for (const [topic, payload] of held) await t.app.services.bus.publish(topic, payload);
      const events = await watch.results(5);
      expect(events.map((event) => event.renderProgress.step)).toEqual(['Queued', ...steps]);
    } finally {
      await watch.close();
    }
  });

  it("renderProgress subscribers of one job each get every change; the job's channel is let go with the last of them, and taken again for the next", async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const channel = t.redisPrefix + topics.renderProgress(job.id);
    const subscribed = async () => ((await redis.pubSubNumSub([channel])) as Record<string, number>)[channel];
    const watch = () => subscribe(t.url, user.token, WatchRenderProgressDocument, { jobId: job.id });
    const steps = (events: Array<{ renderProgress: { step: string } }>) => events.map((event) => event.renderProgress.step);
    const first = watch();
    const second = watch();
    const opened = [first, second];
    try {
      await Promise.all([first.results(1), second.results(1)]);
      expect(await subscribed()).toBe(1);
      await jobs().move(job.id, { to: 'Preparing', log: info('Preparing the replica') });
      await Promise.all([first.results(2), second.results(2)]);

      await first.close();
      await jobs().move(job.id, { to: 'Rendering', log: info('Rendering started') });
      expect(steps(await second.results(3))).toEqual(['Queued', 'Preparing', 'Rendering']);
      expect(first.received).toHaveLength(2);
      expect(await subscribed()).toBe(1);

      await second.close();
      await vi.waitFor(async () => expect(await subscribed()).toBe(0), { timeout: 10_000, interval: 25 });

      const later = watch();
      opened.push(later);
      await later.results(1);
      expect(await subscribed()).toBe(1);
      await jobs().move(job.id, { to: 'Encoding', log: info('Encoding') });
      expect(steps(await later.results(2))).toEqual(['Rendering', 'Encoding']);
      await later.close();
      await vi.waitFor(async () => expect(await subscribed()).toBe(0), { timeout: 10_000, interval: 25 });
    } finally {
      await Promise.all(opened.map((opening) => opening.close()));
    }
  });

  it("renderProgress of another user's job ends with a NOT_FOUND error; an admin may watch it", async () => {
    const owner = await t.user(1000);
    const stranger = await t.user();
    const job = await submitRender(t, owner.token);
    const watch = subscribe(t.url, stranger.token, WatchRenderProgressDocument, { jobId: job.id });
    try {
      const [error] = await watch.failure();
      expect(watch.received.filter((event) => event.renderProgress)).toEqual([]);
      expect(error?.message).toBe(`render job ${job.id} was not found`);
      // The same code as over HTTP, so clients can tell the failures apart.
      expect.soft(error?.extensions?.code).toBe('NOT_FOUND');
      await watch.end();
    } finally {
      await watch.close();
    }
    const byAdmin = subscribe(t.url, admin, WatchRenderProgressDocument, { jobId: job.id });
    try {
      const [event] = await byAdmin.results(1);
      expect(event?.renderProgress.step).toBe('Queued');
    } finally {
      await byAdmin.close();
    }
    const anonymous = subscribe(t.url, undefined, WatchRenderProgressDocument, { jobId: job.id });
    try {
      const [error] = await anonymous.failure();
      expect(anonymous.received.filter((event) => event.renderProgress)).toEqual([]);
      expect(error?.message).toBe('Authentication is required');
      expect.soft(error?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await anonymous.close();
    }
  });

  it("renderJobUpdated delivers the caller's own job changes and not another user's", async () => {
    const user = await t.user(1000);
    const other = await t.user(1000);
    const watch = subscribe(t.url, user.token, WatchRenderJobsDocument, {});
    try {
      await channelSubscribed(`render-job-updated:user:${user.id}`);
      const theirs = await submitRender(t, other.token);
      const mine = await submitRender(t, user.token);
      await watch.results(1);
      await jobs().move(theirs.id, { to: 'Preparing', log: info('theirs') });
      await jobs().move(mine.id, { to: 'Preparing', log: info('mine') });
      const events = await watch.results(2);
      expect(events.map((event) => event.renderJobUpdated)).toEqual([
        { id: mine.id, userId: user.id, step: 'Queued' },
        { id: mine.id, userId: user.id, step: 'Preparing' },
      ]);
      await pause(500);
      expect(watch.received).toHaveLength(2);
    } finally {
      await watch.close();
    }
  });

  it("lets an admin watch one user's jobs or everyone's, and refuses that to other users (FORBIDDEN)", async () => {
    const user = await t.user(10_000);
    const nosy = await t.user();
    const watch = subscribe(t.url, admin, WatchRenderJobsDocument, { userId: user.id });
    try {
      await channelSubscribed(`render-job-updated:user:${user.id}`);
      const job = await submitRender(t, user.token);
      const [event] = await watch.results(1);
      expect(event?.renderJobUpdated).toEqual({ id: job.id, userId: user.id, step: 'Queued' });
    } finally {
      await watch.close();
    }

    // Without userId an admin watches everyone (other test files share this Redis: look for ours).
    const everyone = subscribe(t.url, admin, WatchRenderJobsDocument, {});
    try {
      const seen = (jobId: string) => everyone.received.some((event) => event.renderJobUpdated?.id === jobId);
      // The channel is shared with other test files, so its subscriber count proves nothing:
      // change jobs until one shows up, then the subscription is live.
      await vi.waitFor(
        async () => {
          const probe = await submitRender(t, user.token);
          await pause(200);
          expect(seen(probe.id)).toBe(true);
        },
        { timeout: 15_000, interval: 50 },
      );
      const job = await submitRender(t, user.token);
      await vi.waitFor(() => expect(seen(job.id)).toBe(true), { timeout: 15_000 });
      expect(everyone.received.find((event) => event.renderJobUpdated?.id === job.id)?.renderJobUpdated).toEqual({
        id: job.id,
        userId: user.id,
        step: 'Queued',
      });
    } finally {
      await everyone.close();
    }

    const refused = subscribe(t.url, nosy.token, WatchRenderJobsDocument, { userId: user.id });
    try {
      const [error] = await refused.failure();
      expect(refused.received.filter((event) => event.renderJobUpdated)).toEqual([]);
      expect(error?.message).toBe('Only administrators may do this');
      expect.soft(error?.extensions?.code).toBe('FORBIDDEN');
    } finally {
      await refused.close();
    }

    // Naming oneself is fine.
    const solo = await t.user(1000);
    const self = subscribe(t.url, solo.token, WatchRenderJobsDocument, { userId: solo.id });
    try {
      await channelSubscribed(`render-job-updated:user:${solo.id}`);
      const job = await submitRender(t, solo.token);
      const [event] = await self.results(1);
      expect(event?.renderJobUpdated.id).toBe(job.id);
    } finally {
      await self.close();
    }
  });
});

describe('errors over the WebSocket', () => {
  it('masks an internal failure as over HTTP instead of sending its message', async () => {
    const user = await t.user(1000);
    const watch = subscribe(t.url, user.token, WatchRenderJobsDocument, {});
    try {
      await channelSubscribed(`render-job-updated:user:${user.id}`);
      // An event about a job the database no longer has (deleted between change and delivery).
      await t.app.services.bus.publish(topics.renderJobUpdated(user.id), { jobId: randomUUID(), userId: user.id, step: 'Queued', seq: 1 });
      const errors = await watch.failure();
      expect(errors).toHaveLength(1);
      expect.soft(errors[0]?.message).toBe('Internal server error');
      expect.soft(errors[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    } finally {
      await watch.close();
    }
  });
});
