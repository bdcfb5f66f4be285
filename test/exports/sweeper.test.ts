import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExportService } from '../../src/domain/exports/export-service.ts';
import type { Loop } from '../../src/loops/loop.ts';
import type { ObjectStore } from '../../src/ports.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { controllableClock } from '../support/clock.ts';
import { createStoredExport, daysFrom, existingObjects, rowsOf } from '../support/exports.ts';

const HOUR_MS = 3600_000;

/** The store, counting deletes per key and failing them for the keys given. */
function instrumentedStore(store: ObjectStore, failing: Set<string> = new Set()) {
  const deletes = new Map<string, number>();
  const wrapped: ObjectStore = {
    ...store,
    async delete(key) {
      deletes.set(key, (deletes.get(key) ?? 0) + 1);
      if (failing.has(key)) throw new Error(`cannot delete ${key}`);
      await store.delete(key);
    },
  };
  return { store: wrapped, deletes };
}

const clock = controllableClock();
let t: TestApp;
let sweeper: Loop;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  sweeper = t.loop('export-sweeper');
});
afterAll(() => t.close());

describe('the export sweeper', () => {
  it('runs as one of the app’s loops and removes, by the app’s clock, what has expired and nothing else', async () => {
    const owner = randomUUID();
    const now = clock.now();
    const longExpired = await createStoredExport(t, owner, { autoDeleteDate: daysFrom(now, -3) });
    const dueSoon = await createStoredExport(t, owner, { autoDeleteDate: new Date(now.getTime() + HOUR_MS) });
    const later = await createStoredExport(t, owner, { autoDeleteDate: daysFrom(now, 30) });

    expect(await sweeper.runOnce()).toBe(1);
    expect(await rowsOf(t, longExpired.id)).toEqual({ exports: 0, files: 0 });
    expect(await existingObjects(t.app.services.store, longExpired)).toEqual([]);
    expect(await rowsOf(t, dueSoon.id)).toEqual({ exports: 1, files: 2 });

    clock.advance(2 * HOUR_MS);
    try {
      expect(await sweeper.runOnce()).toBe(1);
      expect(await sweeper.runOnce()).toBe(0);
    } finally {
      clock.reset();
    }
    expect(await rowsOf(t, dueSoon.id)).toEqual({ exports: 0, files: 0 });
    expect(await existingObjects(t.app.services.store, dueSoon)).toEqual([]);
    expect(await rowsOf(t, later.id)).toEqual({ exports: 1, files: 2 });
    expect(await existingObjects(t.app.services.store, later)).toHaveLength(later.objects.size);

    const token = await t.token(owner);
    expect((await t.rest('GET', `/v1/exports/${dueSoon.id}`, { token })).status).toBe(404);
    expect((await t.rest('GET', `/v1/exports/${later.id}`, { token })).status).toBe(200);
  });

  it('spares an export extended before its date passes', async () => {
    const owner = randomUUID();
    const now = clock.now();
    const exported = await createStoredExport(t, owner, { autoDeleteDate: new Date(now.getTime() + HOUR_MS) });
    await t.app.services.billing.credit(
      { kind: 'user', userId: randomUUID(), isAdmin: true, plan: null, isReseller: false },
      { userId: owner, amountMinor: 100n, idempotencyKey: `test-credit-${randomUUID()}` },
    );
    const token = await t.token(owner);
    expect((await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token, body: { days: 1 } })).status).toBe(200);
    expect(await t.app.services.exports.sweepExpired(new Date(now.getTime() + 2 * HOUR_MS))).toBe(0);
    expect(await rowsOf(t, exported.id)).toEqual({ exports: 1, files: 2 });
    expect(await t.app.services.exports.sweepExpired(daysFrom(now, 2))).toBe(1);
    expect(await existingObjects(t.app.services.store, exported)).toEqual([]);
  });

  it('deletes each export once when two sweepers run at once, in small batches', async () => {
    const owner = randomUUID();
    const expiredAt = daysFrom(clock.now(), -1);
    const expired = await Promise.all(
      Array.from({ length: 20 }, () => createStoredExport(t, owner, { autoDeleteDate: expiredAt })),
    );
    const kept = await createStoredExport(t, owner, { autoDeleteDate: daysFrom(clock.now(), 1) });
    const { store, deletes } = instrumentedStore(t.app.services.store);
    const sweep = () =>
      createExportService({ prisma: t.app.services.db.prisma, store, clock, sweepBatchSize: 3 }).sweepExpired();

    const counts = await Promise.all([sweep(), sweep()]);
    expect(counts[0]! + counts[1]!).toBe(20);
    const expectedKeys = expired.flatMap((exported) => [...exported.objects.keys()]);
    expect([...deletes.keys()].sort()).toEqual(expectedKeys.sort());
    expect([...deletes.values()].every((count) => count === 1)).toBe(true);
    for (const exported of expired) {
      expect(await rowsOf(t, exported.id)).toEqual({ exports: 0, files: 0 });
      expect(await existingObjects(t.app.services.store, exported)).toEqual([]);
    }
    expect(await existingObjects(t.app.services.store, kept)).toHaveLength(kept.objects.size);
  });

  it('keeps the row of an export whose objects cannot be deleted, reports it, and removes it on a later pass', async () => {
    const owner = randomUUID();
    const expiredAt = daysFrom(clock.now(), -1);
    const stuck = await createStoredExport(t, owner, { autoDeleteDate: expiredAt });
    const others = await Promise.all([1, 2, 3].map(() => createStoredExport(t, owner, { autoDeleteDate: expiredAt })));
    const { store } = instrumentedStore(t.app.services.store, new Set([stuck.gifKey]));
    const failing = createExportService({ prisma: t.app.services.db.prisma, store, clock, sweepBatchSize: 2 });

    await expect(failing.sweepExpired()).rejects.toThrow(stuck.id);
    expect(await rowsOf(t, stuck.id)).toEqual({ exports: 1, files: 2 });
    expect(await existingObjects(t.app.services.store, stuck)).toContain(stuck.gifKey);
    for (const exported of others) expect(await rowsOf(t, exported.id)).toEqual({ exports: 0, files: 0 });

    expect(await sweeper.runOnce()).toBe(1);
    expect(await rowsOf(t, stuck.id)).toEqual({ exports: 0, files: 0 });
    expect(await existingObjects(t.app.services.store, stuck)).toEqual([]);
  });
});
