// Price types that depend on the caller, through both doors: Plan needs a plan claim and costs
// nothing, Reseller needs the role and pays 70 % of the list price, Free and Preview cost nothing
// but a tip, each on its queue.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SubmitRenderJobDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { walletOf } from '../support/billing.ts';
import { renderBody, submissionStateOf, submitRender } from '../support/jobs.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.close());

describe('price types that depend on the caller', () => {
  it('Plan: 403 without a plan claim, charged 0 with one', async () => {
    const user = await t.user(1000);
    const before = await submissionStateOf(t, user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ price_type: 'Plan' }) });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe('FORBIDDEN');
    const gql = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10, priceType: 'Plan' } },
      user.token,
    );
    expect(gql.data?.submitRenderJob.__typename).toBe('ForbiddenError');
    expect(await submissionStateOf(t, user.id)).toEqual(before);

    const subscriber = { id: user.id, token: await t.token(user.id, { plan: 'pro' }) };
    const job = await submitRender(t, subscriber.token, { price_type: 'Plan', quality: 'Lossless', resolution: 'FourK', duration_sec: 300 });
    expect(job).toMatchObject({ price_type: 'Plan', paid_price_minor: 0, priority_queue: 'Standard' });
    const state = await walletOf(t, subscriber.token);
    expect(state.balance).toBe(1000);
    expect(state.entries.filter((entry) => entry.kind === 'Charge')).toEqual([]);
    // A plan job needs no money at all.
    const broke = await t.user(0, { plan: 'pro' });
    expect((await submitRender(t, broke.token, { price_type: 'Plan' })).paid_price_minor).toBe(0);
  });

  it('Reseller: 403 without the role, 70% of the list price with it', async () => {
    const user = await t.user(1000);
    const before = await submissionStateOf(t, user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ price_type: 'Reseller', duration_sec: 40 }) });
    expect(response.status).toBe(403);
    expect(await submissionStateOf(t, user.id)).toEqual(before);
    const reseller = { id: user.id, token: await t.token(user.id, { roles: ['reseller'] }) };
    // 5 x 40 = 200, 70% = 140.
    const job = await submitRender(t, reseller.token, { price_type: 'Reseller', duration_sec: 40 });
    expect(job).toMatchObject({ price_type: 'Reseller', paid_price_minor: 140, priority_queue: 'Priority' });
    expect((await walletOf(t, reseller.token)).balance).toBe(860);
  });

  it('Free and Preview cost nothing but a tip, on their queues', async () => {
    const user = await t.user(1000);
    const free = await submitRender(t, user.token, { price_type: 'Free', quality: 'Low', duration_sec: 30 });
    expect(free).toMatchObject({ paid_price_minor: 0, priority_queue: 'Background' });
    const preview = await submitRender(t, user.token, { price_type: 'Preview', quality: 'Low', resolution: 'FullHD', duration_sec: 60 });
    expect(preview).toMatchObject({ paid_price_minor: 0, priority_queue: 'Standard' });
    const tipped = await submitRender(t, user.token, { price_type: 'Free', quality: 'Low', support_flatrender: true });
    expect(tipped.paid_price_minor).toBe(100);
    const snapshot = await submitRender(t, user.token, { price_type: 'Snapshot', duration_sec: 1 });
    expect(snapshot).toMatchObject({ paid_price_minor: 25, priority_queue: 'Standard' });
    expect((await walletOf(t, user.token)).balance).toBe(1000 - 100 - 25);
  });
});
