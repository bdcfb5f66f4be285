// PostgreSQL restarts under agent and user traffic. The cluster is private to this file, so
// stopping it touches no other test. During the outage every request fails cleanly (503 with the
// error body, never a 500), /readyz says so, and the service recovers by itself when the
// database is back; the agents' retried reports land exactly once and every job completes.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { legacyProgress } from '../support/graphql-ws.ts';
import { submitRender } from '../support/jobs.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../support/private-servers.ts';
import { startRetryingAgents } from './retrying-agents.ts';
import { readiness, startUserReader } from './user-reader.ts';

const JOBS = 3;
const FRAMES_PER_JOB = 60;
const STARTING_BALANCE = 100_000;

let database: PrivatePostgres;
let t: TestApp;
let user: TestUser;

beforeAll(async () => {
  database = await startPrivatePostgres();
  t = await startTestApp({ env: { DATABASE_URL: database.url } });
  user = await t.user(STARTING_BALANCE);
});

afterAll(async () => {
  await t?.close();
  await database?.close();
});

describe('PostgreSQL restarts under traffic', () => {
  it('answers 503 meanwhile, recovers by itself, and keeps every retried report exactly once', { timeout: 90_000 }, async () => {
    const prisma = t.app.services.db.prisma;
    const nodes = await Promise.all(['pg-fault-a', 'pg-fault-b', 'pg-fault-c'].map((name) => t.onlineNode(name)));
    const jobIds: string[] = [];
    for (let n = 0; n < JOBS; n++) {
      jobIds.push((await submitRender(t, user.token, { duration_sec: FRAMES_PER_JOB / 30 })).id);
    }
    const charged = await prisma.renderJob.aggregate({ where: { id: { in: jobIds } }, _sum: { paidPriceMinor: true } });

    const fleet = startRetryingAgents(t, nodes, { frameDelayMs: 15 });
    // Work under way before the fault.
    await vi.waitFor(async () => expect(await prisma.frame.count({ where: { renderJobId: { in: jobIds }, rendered: true } })).toBeGreaterThan(20), {
      timeout: 20_000,
      interval: 100,
    });

    const reader = startUserReader(t, user, jobIds);
    await database.stop();
    const faultsInjected = 1;
    await vi.waitFor(async () => expect(await readiness(t)).toBe(503), { timeout: 10_000, interval: 100 });

    // A user's write while the database is away is refused cleanly, and nothing of it remains.
    const refused = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: { saved_project_id: randomUUID(), quality: 'Low', resolution: 'HD', duration_sec: 1, frame_rate: 30 },
    });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: expect.any(String), details: {} });
    expect(refused.headers.get('retry-after')).toBe('2');
    // The contract's progress socket says the same: try again (4503), not an internal error (1011).
    expect(await legacyProgress(t.url, user.token, jobIds[0] as string).closed).toEqual({ code: 4503, reason: 'SERVICE_UNAVAILABLE' });
    await sleep(1_500);
    await database.start();
    await vi.waitFor(async () => expect(await readiness(t)).toBe(200), { timeout: 15_000, interval: 100 });
    await sleep(500);
    await reader.stop();

    await vi.waitFor(
      async () => {
        // An agent refused for anything but a stale lease would leave its chunk hanging: show that first.
        expect(fleet.tally.unexpected).toEqual([]);
        const steps = await prisma.renderJob.findMany({ where: { id: { in: jobIds } }, select: { step: true } });
        expect(steps.map((job) => job.step)).toEqual(Array(JOBS).fill('Completed'));
      },
      { timeout: 45_000, interval: 250 },
    );
    await fleet.stop();

    const frames = await prisma.frame.findMany({ where: { renderJobId: { in: jobIds } }, select: { renderJobId: true, frameNumber: true, rendered: true } });
    const stored = new Set(frames.filter((frame) => frame.rendered).map((frame) => `${frame.renderJobId}:${frame.frameNumber}`));
    let lost = 0;
    for (const [jobId, accepted] of fleet.tally.acceptedFrames) {
      for (const frame of accepted) if (!stored.has(`${jobId}:${frame}`)) lost++;
    }
    lost += JOBS * FRAMES_PER_JOB - stored.size;
    const duplicatedFrames = frames.length - new Set(frames.map((frame) => `${frame.renderJobId}:${frame.frameNumber}`)).size;
    const charges = await prisma.ledgerEntry.groupBy({ by: ['renderJobId'], where: { userId: user.id, kind: 'Charge' }, _count: { _all: true } });
    const duplicatedCharges = charges.reduce((extra, group) => extra + group._count._all - 1, 0);
    const wallet = await prisma.wallet.findUniqueOrThrow({ where: { userId: user.id } });
    const requestsDuringOutage = reader.tally.unavailable;

    console.log(
      `postgres-restart: faults injected ${faultsInjected}, requests during outage ${requestsDuringOutage} ` +
        `(reader ${reader.tally.requests} in all, agent retries ${fleet.tally.retried}), ` +
        `lost records ${lost}, duplicated records ${duplicatedFrames + duplicatedCharges}`,
    );
    expect(requestsDuringOutage).toBeGreaterThan(0);
    expect(fleet.tally.retried).toBeGreaterThan(0);
    expect(reader.tally.unclean).toEqual([]);
    expect(fleet.tally.unexpected).toEqual([]);
    expect(lost).toBe(0);
    expect(duplicatedFrames + duplicatedCharges).toBe(0);
    expect(charges).toHaveLength(JOBS);
    expect(await prisma.renderJob.count({ where: { userId: user.id } })).toBe(JOBS);
    expect(wallet.balanceMinor).toBe(BigInt(STARTING_BALANCE) - BigInt(charged._sum.paidPriceMinor ?? 0));
  });
});
