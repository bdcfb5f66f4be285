// Redis stops and comes back under agent, user and subscriber traffic. The Redis server is private
// to this file. Meanwhile the API keeps serving from PostgreSQL (reads and writes, agents' signed
// reports with their replay checks), and once Redis is back the subscriptions resume and every
// subscriber sees each job through to its end.
import { setTimeout as sleep } from 'node:timers/promises';
import { print } from 'graphql';
import { createClient as createWsClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { FollowRenderProgressDocument, type FollowRenderProgressSubscription } from '../generated/graphql.ts';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/private-servers.ts';
import { startRetryingAgents } from './retrying-agents.ts';
import { readiness, startUserReader } from './user-reader.ts';

const FRAMES_PER_JOB = 60;
const STARTING_BALANCE = 100_000;

let redis: PrivateRedis;
let t: TestApp;
let user: TestUser;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startPrivateRedis();
  t = await startTestApp({ env: { REDIS_URL: redis.url } });
  user = await t.user(STARTING_BALANCE);
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await t?.close();
  await redis?.close();
});

type Progress = FollowRenderProgressSubscription['renderProgress'];

/** A browser following one job's progress over graphql-ws, for as long as the test runs. */
function watchProgress(jobId: string) {
  const client = createWsClient({
    url: `${t.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
  });
  const received: Progress[] = [];
  const errors: unknown[] = [];
  const iterator = client.iterate<{ renderProgress: Progress }>({ query: print(FollowRenderProgressDocument), variables: { jobId } });
  const reading = (async () => {
    try {
      for await (const result of iterator) {
        if (result.errors) errors.push(result.errors);
        if (result.data) received.push(result.data.renderProgress);
      }
    } catch (error) {
      errors.push(error);
    }
  })();
  closers.push(async () => {
    await iterator.return?.();
    await client.dispose();
    await reading;
  });
  return { received, errors };
}

const submit = async () => (await submitRender(t, user.token, { duration_sec: FRAMES_PER_JOB / 30 })).id;

async function unpublishedEvents(): Promise<number> {
  const metrics = await t.rest('GET', '/metrics');
  const line = String(metrics.body)
    .split('\n')
    .find((row) => row.startsWith('events_publish_failures_total '));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

describe('Redis stops and comes back under traffic', () => {
  it('keeps serving from PostgreSQL, keeps refusing replays, and subscribers see every job to its end', { timeout: 90_000 }, async () => {
    const prisma = t.app.services.db.prisma;
    const nodes = await Promise.all(['redis-fault-a', 'redis-fault-b'].map((name) => t.onlineNode(name)));
    const jobIds = [await submit(), await submit()];
    const watchers = new Map(jobIds.map((id) => [id, watchProgress(id)]));
    // The current state first: each subscription is live.
    await vi.waitFor(() => expect([...watchers.values()].every((watch) => watch.received.length > 0)).toBe(true), { timeout: 15_000 });

    const fleet = startRetryingAgents(t, nodes, { frameDelayMs: 40 });
    await vi.waitFor(async () => expect(await prisma.frame.count({ where: { renderJobId: { in: jobIds }, rendered: true } })).toBeGreaterThan(15), {
      timeout: 20_000,
      interval: 100,
    });
    const reader = startUserReader(t, user, jobIds);
    const readsBefore = reader.tally.requests;
    const agentRequestsBefore = fleet.tally.sent;

    await redis.stop();
    const faultsInjected = 1;
    await vi.waitFor(async () => expect(await readiness(t)).toBe(503), { timeout: 10_000, interval: 100 });

    // A write whose events cannot be published is still saved and answered as usual.
    const submittedDuringOutage = await submit();
    jobIds.push(submittedDuringOutage);
    // Replay checks go on: the same signed request twice, the second refused.
    const [probe] = nodes;
    if (!probe) throw new Error('no node');
    const timestamp = Math.floor(Date.now() / 1000);
    const heartbeat = { recorded_at: new Date().toISOString() };
    const probePath = `/v1/internal/nodes/${probe.id}/heartbeat`;
    expect((await t.signed(probe, 'POST', probePath, heartbeat, { timestamp })).status).toBe(200);
    const replayDuringOutage = await t.signed(probe, 'POST', probePath, heartbeat, { timestamp });
    expect(replayDuringOutage.status).toBe(401);
    expect(replayDuringOutage.body.error.code).toBe('UNAUTHENTICATED');
    await sleep(2_000);
    const requestsDuringOutage = reader.tally.requests - readsBefore + fleet.tally.sent - agentRequestsBefore;

    await redis.start();
    const seenBeforeRestart = new Map([...watchers].map(([jobId, watch]) => [jobId, watch.received.length]));
    await vi.waitFor(async () => expect(await readiness(t)).toBe(200), { timeout: 15_000, interval: 100 });
    // What was accepted during the outage is now known to Redis, so every replica refuses it.
    await vi.waitFor(async () => expect((await t.signed(probe, 'POST', probePath, heartbeat, { timestamp })).status).toBe(401), {
      timeout: 5_000,
      interval: 200,
    });
    const watchLate = watchProgress(submittedDuringOutage);
    watchers.set(submittedDuringOutage, watchLate);

    await vi.waitFor(
      async () => {
        expect(fleet.tally.unexpected).toEqual([]);
        const steps = await prisma.renderJob.findMany({ where: { id: { in: jobIds } }, select: { step: true } });
        expect(steps.map((job) => job.step)).toEqual(jobIds.map(() => 'Completed'));
      },
      { timeout: 60_000, interval: 250 },
    );
    await reader.stop();
    await fleet.stop();

    // Subscribers: each saw its job to the end, without an error.
    const views = [...watchers.entries()].map(([jobId, watch]) => ({ jobId, watch }));
    await vi.waitFor(() => {
      for (const { watch } of views) expect(watch.received.at(-1)?.step).toBe('Completed');
    }, { timeout: 10_000, interval: 100 });
    // Subscriptions made before the outage resumed: each got events after Redis was back.
    const resumed = views.filter(({ jobId, watch }) => watch.received.length > (seenBeforeRestart.get(jobId) ?? 0));
    expect(resumed.length).toBe(views.length);
    // Each view is whole: from where the job stood at subscribe time, every seq once, in order,
    // up to the job's last event (those published during the outage came from the table).
    const lastSeqs = new Map(
      (await prisma.renderJob.findMany({ where: { id: { in: jobIds } }, select: { id: true, eventSeq: true } })).map((job) => [job.id, job.eventSeq]),
    );
    let missedEvents = 0;
    let repeatedEvents = 0;
    for (const { jobId, watch } of views) {
      const seqs = watch.received.map((event) => event.seq);
      const first = seqs[0] ?? 0;
      const last = lastSeqs.get(jobId) ?? 0;
      repeatedEvents += seqs.length - new Set(seqs).size;
      for (let seq = first; seq <= last; seq++) if (!seqs.includes(seq)) missedEvents++;
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    const incompleteViews = views.filter(({ watch }) => watch.errors.length > 0 || watch.received.at(-1)?.progress !== 100).length;

    const frames = await prisma.frame.findMany({ where: { renderJobId: { in: jobIds } }, select: { renderJobId: true, frameNumber: true, rendered: true } });
    const stored = new Set(frames.filter((frame) => frame.rendered).map((frame) => `${frame.renderJobId}:${frame.frameNumber}`));
    let lostFrames = jobIds.length * FRAMES_PER_JOB - stored.size;
    for (const [jobId, accepted] of fleet.tally.acceptedFrames) {
      for (const frame of accepted) if (!stored.has(`${jobId}:${frame}`)) lostFrames++;
    }
    const duplicatedFrames = frames.length - new Set(frames.map((frame) => `${frame.renderJobId}:${frame.frameNumber}`)).size;
    const charges = await prisma.ledgerEntry.groupBy({ by: ['renderJobId'], where: { userId: user.id, kind: 'Charge' }, _count: { _all: true } });
    const duplicatedCharges = charges.reduce((extra, group) => extra + group._count._all - 1, 0);
    const unpublished = await unpublishedEvents();

    console.log(
      `redis-outage: faults injected ${faultsInjected}, requests during outage ${requestsDuringOutage}, ` +
        `events not published ${unpublished}, lost records ${lostFrames + incompleteViews + missedEvents}, ` +
        `duplicated records ${duplicatedFrames + duplicatedCharges + repeatedEvents}`,
    );
    // Everything the user reads lives in PostgreSQL: not one answer may fail.
    expect(reader.tally.unclean).toEqual([]);
    expect(reader.tally.unavailable).toBe(0);
    expect(requestsDuringOutage).toBeGreaterThan(0);
    expect(unpublished).toBeGreaterThan(0);
    expect({ lostFrames, incompleteViews, missedEvents }).toEqual({ lostFrames: 0, incompleteViews: 0, missedEvents: 0 });
    expect({ duplicatedFrames, duplicatedCharges, repeatedEvents }).toEqual({ duplicatedFrames: 0, duplicatedCharges: 0, repeatedEvents: 0 });
    expect(charges).toHaveLength(jobIds.length);
  });
});
