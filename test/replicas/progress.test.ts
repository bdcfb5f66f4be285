// Live progress across replicas: three instances of the service on one PostgreSQL database and
// one Redis prefix. A subscriber on replica A must see every change of a job exactly once and in
// seq order, whichever replica received the report that caused it; a change whose bus message
// was lost (a gap, a Redis reconnect) is read from render_job_events.
import { randomUUID } from 'node:crypto';
import { createClient as createRedisClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { type Fleet, startFleet } from '../../agent-sim/fleet.ts';
import { publishJobEvents, topics } from '../../src/domain/events.ts';
import { EVENT_RETENTION_HOURS, pruneJobEvents, recordJobEvents } from '../../src/domain/jobs/job-events.ts';
import { writeJobLog } from '../../src/domain/jobs/job-log.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { auditSeqs, type ProgressWatch, watchProgress } from '../support/replicas.ts';
import { backdateJobEvents } from '../support/rows.ts';

let a: TestApp;
let b: TestApp;
let c: TestApp;
let admin: string;
const fleets: Fleet[] = [];
const watches: ProgressWatch[] = [];
const redis = createRedisClient({ url: inject('redisUrl') });

const prisma = () => a.app.services.db.prisma;

/** A job; one for an After Effects version no node has stays Queued whatever the fleet does. */
const submit = async (app: TestApp, token: string, durationSec: number, aeVersion = '24.1') =>
  (await submitRender(app, token, { quality: 'Low', duration_sec: durationSec, ae_version: aeVersion })).id;

async function watch(app: TestApp, token: string, jobId: string, afterSeq?: number): Promise<ProgressWatch> {
  const opened = await watchProgress(app.url, token, jobId, afterSeq);
  watches.push(opened);
  return opened;
}

/** A change written the way services write one, its event recorded in the same transaction. */
async function logLine(jobId: string, message: string) {
  return prisma().$transaction(async (tx) => {
    await writeJobLog(tx, jobId, { level: 'info', message });
    const [event] = await recordJobEvents(tx, [jobId], new Date());
    return event!;
  });
}

const lastSeqOf = async (jobId: string) => (await prisma().renderJob.findUniqueOrThrow({ where: { id: jobId } })).eventSeq;

beforeAll(async () => {
  a = await startTestApp();
  [b, c] = await Promise.all([startTestApp({ replicaOf: a }), startTestApp({ replicaOf: a })]);
  admin = await a.token(randomUUID(), { admin: true });
  await redis.connect();
});

afterAll(async () => {
  for (const opened of watches) await opened.close();
  for (const fleet of fleets) await fleet.stop();
  await redis.close();
  await Promise.all([b?.close(), c?.close()]);
  await a?.close();
});

describe('progress on three replicas', () => {
  it('shows a subscriber on A every change of jobs whose frames were reported to B and C, once each and in order', { timeout: 90_000 }, async () => {
    const user = await a.user(100_000);
    // Nodes report to B and to C only; the jobs are cut for the four of them.
    fleets.push(await startFleet({ url: b.url, nodes: 2, adminToken: admin, frameMs: 5, heartbeatSeconds: 0.3, seed: 11 }));
    fleets.push(await startFleet({ url: c.url, nodes: 2, adminToken: admin, frameMs: 5, heartbeatSeconds: 0.3, seed: 12 }));
    const jobIds = await Promise.all([submit(a, user.token, 4), submit(a, user.token, 3)]);
    const live = await Promise.all(jobIds.map((jobId) => watch(a, user.token, jobId)));
    const fromStart = await Promise.all(jobIds.map((jobId) => watch(a, user.token, jobId, 0)));

    await vi.waitFor(
      async () => {
        const jobs = await prisma().renderJob.findMany({ where: { id: { in: jobIds } }, select: { step: true, framesRendered: true } });
        expect(jobs.map((job) => job.step)).toEqual(['Completed', 'Completed']);
      },
      { timeout: 60_000, interval: 250 },
    );
    for (const opened of [...live, ...fromStart]) await opened.until((message) => message.step === 'Completed', 10_000);

    let checked = 0;
    for (const jobId of jobIds) {
      const lastSeq = await lastSeqOf(jobId);
      const recorded = await prisma().renderJobEvent.findMany({ where: { renderJobId: jobId }, orderBy: { seq: 'asc' } });
      expect(recorded.map((event) => event.seq)).toEqual(Array.from({ length: lastSeq }, (_, index) => index + 1));
      const frames = await prisma().frame.findMany({ where: { renderJobId: jobId }, select: { nodeId: true, rendered: true } });
      expect(frames.every((frame) => frame.rendered)).toBe(true);
      // Frames of each job came through both B and C.
      const reporters = new Set(frames.map((frame) => frame.nodeId));
      expect(fleets.map((fleet) => fleet.nodes.some((node) => reporters.has(node)))).toEqual([true, true]);

      const liveView = live.find((opened) => opened.jobId === jobId)!;
      const fullView = fromStart.find((opened) => opened.jobId === jobId)!;
      const liveAudit = auditSeqs(liveView.received, lastSeq);
      const fullAudit = auditSeqs(fullView.received, lastSeq);
      expect(liveAudit).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0 });
      expect(fullAudit).toEqual({ first: 1, checked: lastSeq, missing: 0, duplicated: 0, outOfOrder: 0 });
      // Each message shows its change as recorded at commit.
      const bySeq = new Map(recorded.map((event) => [event.seq, event.payload as { step: string; progress: { progress: number } }]));
      for (const message of fullView.received) {
        expect([message.seq, message.step, message.progress]).toEqual([message.seq, bySeq.get(message.seq)?.step, bySeq.get(message.seq)?.progress.progress]);
      }
      expect(fullView.received.at(-1)).toMatchObject({ step: 'Completed', progress: 100 });
      checked += liveAudit.checked + fullAudit.checked;
    }
    const reported = fleets.map((fleet) => fleet.stats().framesAccepted);
    console.log(`replicas progress: ${jobIds.length} jobs, frames accepted by B and C ${reported.join(' + ')}, events checked ${checked}, missing 0, duplicated 0`);
  });

  it('puts events published out of order back in order, and reads one the bus never brought from the table', async () => {
    const user = await a.user(10_000);
    const jobId = await submit(a, user.token, 1, '99.0');
    const view = await watch(a, user.token, jobId);
    const start = view.received[0]!.seq;

    const [second, third, fourth] = [await logLine(jobId, 'second'), await logLine(jobId, 'third'), await logLine(jobId, 'fourth')];
    // B publishes the fourth change before the third; nobody publishes the second.
    await publishJobEvents(b.app.services.bus, [fourth]);
    await publishJobEvents(c.app.services.bus, [third]);
    await view.until((message) => message.seq === fourth.seq);

    expect(view.received.map((message) => [message.seq, message.message])).toEqual([
      [start, 'Job queued'],
      [second.seq, 'second'],
      [third.seq, 'third'],
      [fourth.seq, 'fourth'],
    ]);
    expect([second.seq, third.seq, fourth.seq]).toEqual([start + 1, start + 2, start + 3]);
  });

  it('catches up from the table when its Redis connection comes back, for changes published while it was away', async () => {
    const user = await a.user(10_000);
    const jobId = await submit(a, user.token, 1, '99.0');
    const view = await watch(a, user.token, jobId);
    const channel = a.redisPrefix + topics.renderProgress(jobId);
    const subscriberName = `render-orchestrator:${a.redisPrefix}:sub`;

    // Lost for sure: published while no connection was subscribed to the job's channel. A
    // reconnect quicker than the publish would deliver it, so that case is tried again.
    let lost: Awaited<ReturnType<typeof logLine>> | undefined;
    for (let attempt = 0; attempt < 10 && lost === undefined; attempt++) {
      const event = await logLine(jobId, `while Redis was away (${attempt})`);
      const connections = (await redis.clientList()).filter((client) => client.name === subscriberName);
      expect(connections.length).toBe(3);
      await Promise.all(connections.map((client) => redis.clientKill({ filter: 'ID', id: client.id })));
      if ((await redis.publish(channel, JSON.stringify(event))) === 0) lost = event;
      else await view.until((message) => message.seq === event.seq);
    }
    expect(lost).toBeDefined();
    await view.until((message) => message.seq === lost!.seq, 15_000);
    expect(auditSeqs(view.received, lost!.seq)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0 });
    expect(view.received.at(-1)?.message).toBe(`while Redis was away (${lost!.seq - view.received[0]!.seq - 1})`);
  });

  it(`prunes events older than ${EVENT_RETENTION_HOURS} hours; a subscriber resuming before them starts from where the job stands`, async () => {
    const user = await a.user(10_000);
    const jobId = await submit(a, user.token, 1, '99.0');
    await backdateJobEvents(a, jobId, new Date(Date.now() - (EVENT_RETENTION_HOURS + 1) * 60 * 60 * 1000));
    const recent = await logLine(jobId, 'recent');
    expect((await pruneJobEvents(prisma(), new Date())).deleted).toBeGreaterThanOrEqual(recent.seq - 1);
    const kept = await prisma().renderJobEvent.findMany({ where: { renderJobId: jobId }, select: { seq: true } });
    expect(kept).toEqual([{ seq: recent.seq }]);

    const resumedTooLate = await watch(a, user.token, jobId, 0);
    expect(resumedTooLate.received[0]).toMatchObject({ seq: recent.seq, message: 'recent', step: 'Queued' });
    const resumed = await watch(a, user.token, jobId, recent.seq - 1);
    expect(resumed.received[0]).toMatchObject({ seq: recent.seq, message: 'recent' });
    await expect(watchProgress(a.url, user.token, jobId, -1)).rejects.toThrow(/VALIDATION_FAILED/);
  });
});
