import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { downsampleHealth } from '../../src/domain/nodes/health-history.ts';
import { lock } from '../../src/domain/locks.ts';
import type { Loop } from '../../src/loops/loop.ts';
import { startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { type Callers, callers } from '../support/callers.ts';
import { controllableClock } from '../support/clock.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const clock = controllableClock();
let t: TestApp;
let who: Callers;
let loop: Loop;
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  who = await callers(t);
  loop = t.loop('health-downsampling');
});
afterEach(() => clock.reset());
afterAll(() => t.close());

/** Two days back, on an hour boundary, so buckets are predictable. */
const base = () => new Date(Math.floor(Date.now() / HOUR) * HOUR - 2 * DAY);

/** A raw sample, as the node's heartbeat recorded at `at` leaves it. */
async function addRaw(node: TestNode, at: Date, cpuPct: number, status: 'Online' | 'Busy' = 'Online', aeRunning = false) {
  await t.heartbeat(node, { recorded_at: at.toISOString(), status, cpu_pct: cpuPct, ram_available_mb: cpuPct * 100, ae_running: aeRunning, cache_used_gb: 1 });
}

async function samplesOf(nodeId: string) {
  const rows = await prisma().nodeHealthSample.findMany({ where: { nodeId }, orderBy: [{ recordedAt: 'asc' }, { bucketSeconds: 'asc' }] });
  return rows.map((row) => ({
    at: row.recordedAt.getTime(),
    bucket: row.bucketSeconds,
    cpu: row.cpuPct,
    ram: row.ramAvailableMb,
    status: row.status,
    ae: row.aeRunning,
  }));
}

async function history(nodeId: string, from: Date, to: Date) {
  const response = await t.rest(
    'GET',
    `/v1/nodes/${nodeId}/health/history?from=${from.toISOString()}&to=${to.toISOString()}`,
    { token: who.admin },
  );
  expect(response.status).toBe(200);
  return response.body.data.map((sample: any) => [new Date(sample.recorded_at).getTime(), sample.bucket_seconds, sample.cpu_pct]);
}

describe('health history retention', () => {
  it('folds raw samples into minutes after an hour, minutes into hours after a day, and drops hours after 30 days', async () => {
    const node = await t.node();
    const b = base().getTime();
    await addRaw(node, new Date(b + 10 * MINUTE + 5_000), 10);
    await addRaw(node, new Date(b + 10 * MINUTE + 20_000), 30, 'Busy', true);
    await addRaw(node, new Date(b + 10 * MINUTE + 40_000), 50);
    await addRaw(node, new Date(b + 11 * MINUTE), 90, 'Busy');
    await addRaw(node, new Date(b + 70 * MINUTE), 20);

    clock.set(new Date(b + 2 * HOUR));
    expect(await loop.runOnce()).toEqual({ skipped: false, foldedIntoMinutes: 4, foldedIntoHours: 0, deleted: 0 });
    expect(await samplesOf(node.id)).toEqual([
      { at: b + 10 * MINUTE, bucket: 60, cpu: 30, ram: 3000, status: 'Online', ae: true },
      { at: b + 11 * MINUTE, bucket: 60, cpu: 90, ram: 9000, status: 'Busy', ae: false },
      { at: b + 70 * MINUTE, bucket: 0, cpu: 20, ram: 2000, status: 'Online', ae: false },
    ]);
    clock.reset();
    expect(await history(node.id, new Date(b), new Date(b + 2 * HOUR))).toEqual([
      [b + 10 * MINUTE, 60, 30],
      [b + 11 * MINUTE, 60, 90],
      [b + 70 * MINUTE, 0, 20],
    ]);

    // A sample that arrives after its minute was folded joins that minute's bucket, weighted
    // by the time it stands for (one 5 s heartbeat against the bucket's 60 s).
    await addRaw(node, new Date(b + 10 * MINUTE + 50_000), 70);
    clock.set(new Date(b + 2 * HOUR));
    expect(await loop.runOnce()).toMatchObject({ foldedIntoMinutes: 1 });
    const minute = (await samplesOf(node.id)).filter((sample) => sample.at === b + 10 * MINUTE);
    expect(minute).toEqual([{ at: b + 10 * MINUTE, bucket: 60, cpu: 33, ram: 3308, status: 'Online', ae: true }]);

    clock.set(new Date(b + 25 * HOUR + MINUTE));
    expect(await loop.runOnce()).toEqual({ skipped: false, foldedIntoMinutes: 1, foldedIntoHours: 2, deleted: 0 });
    expect(await samplesOf(node.id)).toEqual([
      { at: b, bucket: 3600, cpu: 62, ram: 6154, status: 'Busy', ae: true },
      { at: b + 70 * MINUTE, bucket: 60, cpu: 20, ram: 2000, status: 'Online', ae: false },
    ]);
    clock.reset();
    // The hour bucket starts before `from` but covers it, so it answers for that time.
    expect(await history(node.id, new Date(b + 30 * MINUTE), new Date(b + 3 * HOUR))).toEqual([
      [b, 3600, 62],
      [b + 70 * MINUTE, 60, 20],
    ]);
    expect(await history(node.id, new Date(b + 2 * HOUR), new Date(b + 3 * HOUR))).toEqual([]);

    clock.set(new Date(b + 31 * DAY));
    expect(await loop.runOnce()).toEqual({ skipped: false, foldedIntoMinutes: 0, foldedIntoHours: 1, deleted: 2 });
    expect(await samplesOf(node.id)).toEqual([]);
  });

  it('averages After Effects memory over the samples that report it, weighted like CPU, and leaves it null where none did', async () => {
    const node = await t.node();
    const b = base().getTime();
    const beat = (at: number, aeMemoryMb: number | null) => t.heartbeat(node, { recorded_at: new Date(at).toISOString(), ae_memory_mb: aeMemoryMb });
    const aeMemory = async (from: number, to: number) => {
      const response = await t.rest('GET', `/v1/nodes/${node.id}/health/history?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`, {
        token: who.admin,
      });
      expect(response.status).toBe(200);
      return response.body.data.map((sample: any) => [new Date(sample.recorded_at).getTime(), sample.bucket_seconds, sample.ae_memory_mb]);
    };
    await beat(b + 10 * MINUTE + 5_000, 2_000);
    await beat(b + 10 * MINUTE + 20_000, null);
    await beat(b + 10 * MINUTE + 40_000, 4_000);
    await beat(b + 11 * MINUTE, null);

    clock.set(new Date(b + 2 * HOUR));
    expect(await loop.runOnce()).toMatchObject({ foldedIntoMinutes: 4 });
    clock.reset();
    expect(await aeMemory(b, b + 2 * HOUR)).toEqual([
      [b + 10 * MINUTE, 60, 3_000],
      [b + 11 * MINUTE, 60, null],
    ]);

    // A late sample joins its minute weighted by its 5 s against the bucket's 60 s: (3000 × 60 + 6000 × 5) / 65.
    await beat(b + 10 * MINUTE + 50_000, 6_000);
    clock.set(new Date(b + 2 * HOUR));
    await loop.runOnce();
    clock.reset();
    expect(await aeMemory(b, b + 2 * HOUR)).toEqual([
      [b + 10 * MINUTE, 60, 3_231],
      [b + 11 * MINUTE, 60, null],
    ]);

    // The minute without a figure does not pull the hour's average down.
    clock.set(new Date(b + 25 * HOUR + MINUTE));
    expect(await loop.runOnce()).toMatchObject({ foldedIntoHours: 2 });
    clock.reset();
    expect(await aeMemory(b, b + 2 * HOUR)).toEqual([[b, 3600, 3_231]]);
  });

  it('keeps each node’s samples to itself and leaves recent samples raw', async () => {
    const first = await t.node();
    const second = await t.node();
    const b = base().getTime();
    await addRaw(first, new Date(b + 5 * MINUTE), 10);
    await addRaw(second, new Date(b + 5 * MINUTE + 1_000), 80);
    await addRaw(first, new Date(b + 2 * HOUR - 10 * MINUTE), 40);

    clock.set(new Date(b + 2 * HOUR));
    await loop.runOnce();
    expect((await samplesOf(first.id)).map((sample) => [sample.bucket, sample.cpu])).toEqual([
      [60, 10],
      [0, 40],
    ]);
    expect((await samplesOf(second.id)).map((sample) => [sample.bucket, sample.cpu])).toEqual([[60, 80]]);
  });

  it('skips the pass while another replica holds the lock, and changes nothing', async () => {
    const node = await t.node();
    const b = base().getTime();
    await addRaw(node, new Date(b + MINUTE), 10);
    const before = await samplesOf(node.id);
    const result = await prisma().$transaction(async (tx) => {
      await lock(tx, 'healthDownsampling');
      return downsampleHealth(prisma(), new Date(b + 3 * HOUR));
    });
    expect(result).toEqual({ skipped: true, foldedIntoMinutes: 0, foldedIntoHours: 0, deleted: 0 });
    expect(await samplesOf(node.id)).toEqual(before);
    expect(await downsampleHealth(prisma(), new Date(b + 3 * HOUR))).toMatchObject({ skipped: false });
    expect((await samplesOf(node.id)).map((sample) => [sample.bucket, sample.cpu])).toEqual([[60, 10]]);
  });
});
