import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendExportDocument } from '../generated/graphql.ts';
import { problemPaths, startTestApp, type TestApp, userActor } from '../support/app.ts';
import { createStoredExport, daysFrom } from '../support/exports.ts';
import { balanceOf } from '../support/jobs.ts';

let t: TestApp;

const GB = 1_000_000_000n;
const prisma = () => t.app.services.db.prisma;

async function autoDeleteDateOf(exportId: string): Promise<Date> {
  return (await prisma().export.findUniqueOrThrow({ where: { id: exportId } })).autoDeleteDate;
}

/** Everything a refused extension must leave alone. */
async function stateOf(exportId: string, userId: string) {
  const [exported, wallet, entries] = await Promise.all([
    prisma().export.findUnique({ where: { id: exportId } }),
    prisma().wallet.findUnique({ where: { userId } }),
    prisma().ledgerEntry.count(),
  ]);
  return { autoDeleteDate: exported?.autoDeleteDate, balance: wallet?.balanceMinor ?? null, entries };
}

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('extending an export', () => {
  it('charges per started GB per day and moves the date on from the current one, over REST', async () => {
    const user = await t.user(1000);
    const current = daysFrom(new Date(), 10);
    // 2 GB + 0.5 GB stored: 3 started GB x 30 days x 1 cent.
    const exported = await createStoredExport(t, user.id, {
      autoDeleteDate: current,
      mainSizeBytes: 2n * GB,
      gifSizeBytes: GB / 2n,
    });
    const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, body: { days: 30 } });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ new_auto_delete_date: daysFrom(current, 30).toISOString() });
    expect(await autoDeleteDateOf(exported.id)).toEqual(daysFrom(current, 30));
    expect(await balanceOf(t, user.id)).toBe(910);
    const entries = await prisma().ledgerEntry.findMany({ where: { userId: user.id, kind: 'Charge' } });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ amountMinor: -90n, balanceAfterMinor: 910n, exportId: exported.id });
    const detail = await t.rest('GET', `/v1/exports/${exported.id}`, { token: user.token });
    expect(detail.body.auto_delete_date).toBe(response.body.new_auto_delete_date);
  });

  it('counts from now for an export past its date that the sweeper has not removed yet, at the minimum charge', async () => {
    const user = await t.user(100);
    const exported = await createStoredExport(t, user.id, { autoDeleteDate: daysFrom(new Date(), -1) });
    const before = Date.now();
    const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, body: { days: 2 } });
    expect(response.status).toBe(200);
    const extended = Date.parse(response.body.new_auto_delete_date);
    expect(extended).toBeGreaterThanOrEqual(daysFrom(new Date(before), 2).getTime());
    expect(extended).toBeLessThanOrEqual(daysFrom(new Date(), 2).getTime());
    expect(await balanceOf(t, user.id)).toBe(75);
  });

  it('charges twice for two identical requests, and once for a retried one', async () => {
    const user = await t.user(100);
    const current = daysFrom(new Date(), 5);
    const exported = await createStoredExport(t, user.id, { autoDeleteDate: current });
    for (let i = 0; i < 2; i++) {
      const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, body: { days: 3 } });
      expect(response.status).toBe(200);
    }
    expect(await autoDeleteDateOf(exported.id)).toEqual(daysFrom(current, 6));
    expect(await balanceOf(t, user.id)).toBe(50);

    const requestId = randomUUID();
    const first = await t.app.services.exports.extend(userActor(user.id), exported.id, { days: 1 }, requestId);
    const retried = await t.app.services.exports.extend(userActor(user.id), exported.id, { days: 1 }, requestId);
    expect(retried).toEqual(first);
    expect(first).toMatchObject({ newAutoDeleteDate: daysFrom(current, 7), chargedMinor: 25n });
    expect(await autoDeleteDateOf(exported.id)).toEqual(daysFrom(current, 7));
    expect(await balanceOf(t, user.id)).toBe(25);
  });

  it('serializes concurrent extensions: each one counts, and only what the balance covers is done', async () => {
    const user = await t.user(100);
    const current = daysFrom(new Date(), 1);
    const exported = await createStoredExport(t, user.id, { autoDeleteDate: current });
    const statuses = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, body: { days: 1 } });
        return response.status;
      }),
    );
    expect(statuses.sort()).toEqual([200, 200, 200, 200, 402]);
    expect(await autoDeleteDateOf(exported.id)).toEqual(daysFrom(current, 4));
    expect(await balanceOf(t, user.id)).toBe(0);
  });

  it('answers the same through GraphQL', async () => {
    const user = await t.user(500);
    const current = daysFrom(new Date(), 3);
    const exported = await createStoredExport(t, user.id, { autoDeleteDate: current, mainSizeBytes: GB + 1n });
    const result = await t.gql(ExtendExportDocument, { id: exported.id, days: 100 }, user.token);
    expect(result.errors).toBeUndefined();
    const payload = result.data?.extendExport;
    expect(payload?.__typename).toBe('ExportExtension');
    if (payload?.__typename !== 'ExportExtension') return;
    // GB + 1 byte plus the small gif: 2 started GB x 100 days.
    expect(Number(payload.chargedMinor)).toBe(200);
    expect(payload.newAutoDeleteDate).toBe(daysFrom(current, 100).toISOString());
    expect(payload.export).toEqual({ id: exported.id, autoDeleteDate: daysFrom(current, 100).toISOString() });
    expect(await balanceOf(t, user.id)).toBe(300);
  });

  it('charges the caller: an admin extending someone’s export pays for it', async () => {
    const owner = await t.user(100);
    const admin = await t.user(100, { admin: true });
    const exported = await createStoredExport(t, owner.id);
    const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: admin.token, body: { days: 1 } });
    expect(response.status).toBe(200);
    expect(await balanceOf(t, admin.id)).toBe(75);
    expect(await balanceOf(t, owner.id)).toBe(100);
  });

  it('keeps the charge in the ledger after the export is deleted', async () => {
    const user = await t.user(100);
    const exported = await createStoredExport(t, user.id);
    expect((await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, body: { days: 1 } })).status).toBe(200);
    expect((await t.rest('DELETE', `/v1/exports/${exported.id}`, { token: user.token })).status).toBe(204);
    const entries = await prisma().ledgerEntry.findMany({ where: { userId: user.id, kind: 'Charge' } });
    expect(entries).toMatchObject([{ amountMinor: -25n, exportId: null }]);
    expect(await balanceOf(t, user.id)).toBe(75);
  });
});

describe('refused extensions change nothing', () => {
  it('402 when the balance is short, over REST and GraphQL', async () => {
    const user = await t.user(10);
    const exported = await createStoredExport(t, user.id, { mainSizeBytes: 3n * GB });
    const before = await stateOf(exported.id, user.id);
    const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, body: { days: 30 } });
    expect(response.status).toBe(402);
    expect(response.body.error).toMatchObject({ code: 'PAYMENT_REQUIRED', details: { required_minor: 120, balance_minor: 10 } });
    const gql = await t.gql(ExtendExportDocument, { id: exported.id, days: 30 }, user.token);
    expect(gql.data?.extendExport).toMatchObject({ __typename: 'PaymentRequiredError', code: 'PAYMENT_REQUIRED' });
    if (gql.data?.extendExport.__typename === 'PaymentRequiredError') {
      expect(Number(gql.data.extendExport.requiredMinor)).toBe(120);
      expect(Number(gql.data.extendExport.balanceMinor)).toBe(10);
    }
    const broke = await t.user(0);
    const theirs = await createStoredExport(t, broke.id);
    const empty = await t.rest('POST', `/v1/exports/${theirs.id}/extend`, { token: broke.token, body: { days: 1 } });
    expect(empty.status).toBe(402);
    expect(await stateOf(exported.id, user.id)).toEqual(before);
    expect(await balanceOf(t, user.id)).toBe(10);
  });

  it('400 for days out of range, not whole, not a number, missing, or next to an unknown field', async () => {
    const user = await t.user(1000);
    const exported = await createStoredExport(t, user.id);
    const before = await stateOf(exported.id, user.id);
    const cases: [unknown, string[]][] = [
      [{ days: 0 }, ['days']],
      [{ days: 366 }, ['days']],
      [{ days: 'x' }, ['days']],
      [{ days: '5' }, ['days']],
      [{ days: 1.5 }, ['days']],
      [{ days: null }, ['days']],
      [{}, ['days']],
      [{ days: 5, surprise: true }, ['surprise']],
    ];
    for (const [body, paths] of cases) {
      const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(problemPaths(response.body), JSON.stringify(body)).toEqual(paths);
    }
    for (const rawBody of ['{"days":', '[1]', '"30"']) {
      const response = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { token: user.token, rawBody });
      expect(response.status, rawBody).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
    }
    const badId = await t.rest('POST', '/v1/exports/not-a-uuid/extend', { token: user.token, body: { days: 5 } });
    expect(badId.status).toBe(400);

    for (const days of [0, 366]) {
      const gql = await t.gql(ExtendExportDocument, { id: exported.id, days }, user.token);
      expect(gql.data?.extendExport).toMatchObject({ __typename: 'ValidationError', problems: [{ path: 'days' }] });
    }
    const notInt = await t.gql(ExtendExportDocument, { id: exported.id, days: 'x' as unknown as number }, user.token);
    expect(notInt.data).toBeUndefined();
    expect(notInt.errors?.length).toBeGreaterThan(0);
    expect(await stateOf(exported.id, user.id)).toEqual(before);
  });

  it('404 for another user’s export or an unknown one, 401 without a token', async () => {
    const owner = await t.user(100);
    const exported = await createStoredExport(t, owner.id);
    const other = await t.user(100);
    const before = await stateOf(exported.id, owner.id);
    for (const id of [exported.id, randomUUID()]) {
      const response = await t.rest('POST', `/v1/exports/${id}/extend`, { token: other.token, body: { days: 1 } });
      expect(response.status).toBe(404);
      expect(response.body.error.code).toBe('NOT_FOUND');
      const gql = await t.gql(ExtendExportDocument, { id, days: 1 }, other.token);
      expect(gql.data?.extendExport.__typename).toBe('NotFoundError');
    }
    const anonymous = await t.rest('POST', `/v1/exports/${exported.id}/extend`, { body: { days: 1 } });
    expect(anonymous.status).toBe(401);
    const gqlAnonymous = await t.gql(ExtendExportDocument, { id: exported.id, days: 1 });
    expect(gqlAnonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await stateOf(exported.id, owner.id)).toEqual(before);
    expect(await balanceOf(t, other.id)).toBe(100);
  });
});
