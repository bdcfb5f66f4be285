// Exports on the embedded defaults (PGlite, folder object store), as `npm start` runs them: the
// row locks of delete, extend and the sweep, and downloads through the service's signed URLs.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createStoredExport, daysFrom, existingObjects, rowsOf } from '../support/exports.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ embedded: true, startLoops: false });
}, 180_000);
afterAll(() => t?.close());

describe('exports on the embedded defaults', () => {
  it('download, extend, delete and sweep', async () => {
    expect(t.app.services.db.kind).toBe('pglite');
    const owner = randomUUID();
    const token = await t.token(owner);
    const exported = await createStoredExport(t, owner);
    const expired = await createStoredExport(t, owner, { autoDeleteDate: daysFrom(new Date(), -1) });

    const link = await t.rest('GET', `/v1/exports/${exported.id}/download-url?format=gif`, { token });
    expect(link.status).toBe(200);
    expect(link.body.url.startsWith(`${t.url}/v1/objects/`)).toBe(true);
    const downloaded = await fetch(link.body.url);
    expect(downloaded.status).toBe(200);
    expect(Buffer.from(await downloaded.arrayBuffer()).equals(exported.objects.get(exported.gifKey)!)).toBe(true);

    await t.app.services.billing.credit(
      { kind: 'user', userId: randomUUID(), isAdmin: true, plan: null, isReseller: false },
      { userId: owner, amountMinor: 30n, idempotencyKey: `test-credit-${randomUUID()}` },
    );
    expect((await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token, body: { days: 1 } })).status).toBe(200);
    expect((await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token, body: { days: 1 } })).status).toBe(402);

    const sweeps = await Promise.all([t.app.services.exports.sweepExpired(), t.app.services.exports.sweepExpired()]);
    expect(sweeps.sort()).toEqual([0, 1]);
    expect(await rowsOf(t, expired.id)).toEqual({ exports: 0, files: 0 });
    expect(await existingObjects(t.app.services.store, expired)).toEqual([]);

    expect((await t.rest('DELETE', `/v1/exports/${exported.id}`, { token })).status).toBe(204);
    expect(await existingObjects(t.app.services.store, exported)).toEqual([]);
    expect((await fetch(link.body.url)).status).toBe(404);
  });
});
