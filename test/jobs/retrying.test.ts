// Retrying a Failed or Cancelled render job: a new Queued job with the same configuration,
// charged again (without the discount code a second time), counted as a retry; refused for jobs
// still running, for other users, and when the balance no longer covers the price.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryRenderJobDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { discountCode, newCode } from '../support/billing.ts';
import { balanceOf, info, jobStateOf, refundsOf, submitRender } from '../support/jobs.ts';
import { markRendered } from '../support/rows.ts';

let t: TestApp;
let admin: string;
const adminId = randomUUID();
const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(adminId, { admin: true });
});
afterAll(() => t?.close());

describe('retrying', () => {
  async function detail(user: TestUser, id: string) {
    const response = await t.rest('GET', `/v1/renders/${id}`, { token: user.token });
    expect(response.status).toBe(200);
    return response.body;
  }

  it('retries a Cancelled job as a new Queued job with the same configuration, charged again', async () => {
    const user = await t.user(2000);
    const job = await submitRender(t, user.token, { resolution: 'FullHD', quality: 'Full', duration_sec: 20, has_voiceover: true, support_flatrender: true, frame_rate: 25 });
    // 5 x 20 x 1.5 x 1.25 x 25/30 = 156.25 -> 157, + 100 voiceover = 257, + tip 100 = 357.
    expect(job.paid_price_minor).toBe(357);
    expect((await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })).status).toBe(200);
    expect(await balanceOf(t, user.id)).toBe(2000);

    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const retried = response.body;
    expect(retried.id).not.toBe(job.id);
    expect(retried).toMatchObject({
      step: 'Queued',
      saved_project_id: job.saved_project_id,
      name: job.name,
      quality: 'Full',
      resolution: 'FullHD',
      frame_rate: 25,
      duration_sec: 20,
      has_voiceover: true,
      price_type: 'Cash',
      paid_price_minor: 357,
      started_at: null,
      completed_at: null,
    });
    expect((await detail(user, retried.id)).retry_count).toBe(1);
    expect((await detail(user, job.id)).retry_count).toBe(0);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: retried.id }, include: { frameJobs: true } });
    expect(stored).toMatchObject({ userId: user.id, retriedFromId: job.id, tipMinor: 100n, supportFlatrender: true, totalFrames: 500 });
    expect(stored.frameJobs.length).toBeGreaterThan(0);
    expect(await balanceOf(t, user.id)).toBe(2000 - 357);
    const charges = await prisma().ledgerEntry.findMany({ where: { renderJobId: retried.id } });
    expect(charges.map((entry) => [entry.kind, entry.amountMinor])).toEqual([['Charge', -357n]]);
    const log = await prisma().jobLog.findFirstOrThrow({ where: { renderJobId: retried.id } });
    expect(log.message).toBe(`Job queued as a retry of ${job.id}`);

    // A retry of the retry counts on.
    expect((await t.rest('POST', `/v1/renders/${retried.id}/cancel`, { token: user.token })).status).toBe(200);
    const third = await t.rest('POST', `/v1/renders/${retried.id}/retry`, { token: user.token });
    expect(third.status).toBe(201);
    expect((await detail(user, third.body.id)).retry_count).toBe(2);
  });

  it('retries a Failed job (which was refunded in full)', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token, { support_flatrender: true });
    await markRendered(t, job.id, 100);
    const failed = await jobs().fail(job.id, 'boom');
    expect(failed).toMatchObject({ step: 'Failed', failedMessage: 'boom', refundedMinor: 150n });
    // Failure refunds everything, rendered frames and tip included.
    expect((await refundsOf(t, job.id)).map((entry) => entry.amountMinor)).toEqual([150n]);
    expect(await balanceOf(t, user.id)).toBe(1000);
    const rest = await t.rest('GET', `/v1/renders/${job.id}`, { token: user.token });
    expect(rest.body).toMatchObject({ step: 'Failed', failed_message: 'boom' });

    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ step: 'Queued', quality: 'High', resolution: 'HD', frame_rate: 30, duration_sec: 10, paid_price_minor: 150, failed_message: null });
    expect((await detail(user, response.body.id)).retry_count).toBe(1);
    expect(await balanceOf(t, user.id)).toBe(850);
  });

  it('does not use a discount code twice', async () => {
    const user = await t.user(1000);
    const code = await discountCode(t, { code: newCode('RETRY'), percentOff: 25 });
    // 5 x 40 = 200, 25% off = 150.
    const job = await submitRender(t, user.token, { duration_sec: 40, discount_code: code });
    expect(job.paid_price_minor).toBe(150);
    expect((await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })).status).toBe(200);
    const retried = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(retried.status).toBe(201);
    expect(retried.body.paid_price_minor).toBe(200);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(1);
  });

  it('answers 409 for a job that is not Failed or Cancelled, creating nothing', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const before = await jobStateOf(t, job.id, user.id);
    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({ code: 'INVALID_STATE', details: { job_id: job.id, step: 'Queued' } });
    expect(response.body.error.message).toContain('Queued');
    await jobs().move(job.id, { to: 'Preparing', log: info('Preparing') });
    const preparing = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(preparing.status).toBe(409);
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(before.jobCount);
    expect(await balanceOf(t, user.id)).toBe(before.balance);
  });

  it("answers 404 for another user's job, and lets an admin retry it for its owner", async () => {
    const owner = await t.user(1000);
    const stranger = await t.user(1000);
    const job = await submitRender(t, owner.token);
    await jobs().fail(job.id, 'crashed');
    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: stranger.token });
    expect(response.status).toBe(404);
    expect(await prisma().renderJob.count({ where: { retriedFromId: job.id } })).toBe(0);
    expect(await balanceOf(t, stranger.id)).toBe(1000);

    const byAdmin = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: admin });
    expect(byAdmin.status).toBe(201);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: byAdmin.body.id } });
    expect(stored.userId).toBe(owner.id);
    expect(await balanceOf(t, owner.id)).toBe(950);
    expect(await prisma().ledgerEntry.count({ where: { userId: adminId } })).toBe(0);
  });

  it('answers 402 when the balance no longer covers the price, creating nothing', async () => {
    const user = await t.user(110);
    const job = await submitRender(t, user.token);
    await submitRender(t, user.token);
    // Everything rendered: the cancel refunds nothing and 10 is left.
    await markRendered(t, job.id, 300);
    expect((await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })).status).toBe(200);
    expect(await balanceOf(t, user.id)).toBe(10);
    const before = await prisma().renderJob.count({ where: { userId: user.id } });
    const entries = await prisma().ledgerEntry.count({ where: { userId: user.id } });

    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status).toBe(402);
    expect(response.body.error).toMatchObject({ code: 'PAYMENT_REQUIRED', details: { required_minor: 50, balance_minor: 10 } });
    const gql = await t.gql(RetryRenderJobDocument, { id: job.id }, user.token);
    expect(gql.data?.retryRenderJob).toMatchObject({ __typename: 'PaymentRequiredError', code: 'PAYMENT_REQUIRED' });
    if (gql.data?.retryRenderJob.__typename === 'PaymentRequiredError') {
      expect(Number(gql.data.retryRenderJob.requiredMinor)).toBe(50);
      expect(Number(gql.data.retryRenderJob.balanceMinor)).toBe(10);
    }
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(before);
    expect(await prisma().ledgerEntry.count({ where: { userId: user.id } })).toBe(entries);
    expect(await prisma().frameJob.count({ where: { renderJob: { retriedFromId: job.id } } })).toBe(0);
    expect(await balanceOf(t, user.id)).toBe(10);
  });

  it('retries through GraphQL with typed errors', async () => {
    const owner = await t.user(1000);
    const stranger = await t.user(1000);
    // 5 x 15 x 24/30 = 60.
    const job = await submitRender(t, owner.token, { frame_rate: 24, duration_sec: 15 });

    const queued = await t.gql(RetryRenderJobDocument, { id: job.id }, owner.token);
    expect(queued.errors).toBeUndefined();
    expect(queued.data?.retryRenderJob).toMatchObject({ __typename: 'InvalidStateError', code: 'INVALID_STATE', state: 'Queued' });

    await jobs().fail(job.id, 'no luck');
    const foreign = await t.gql(RetryRenderJobDocument, { id: job.id }, stranger.token);
    expect(foreign.data?.retryRenderJob).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });

    const result = await t.gql(RetryRenderJobDocument, { id: job.id }, owner.token);
    expect(result.errors).toBeUndefined();
    const payload = result.data?.retryRenderJob;
    expect(payload?.__typename).toBe('RenderJob');
    if (payload?.__typename !== 'RenderJob') return;
    expect(payload).toMatchObject({ userId: owner.id, step: 'Queued', quality: 'High', resolution: 'HD', frameRate: 24, durationSec: 15, retryCount: 1 });
    expect(Number(payload.paidPriceMinor)).toBe(60);
    expect(await balanceOf(t, owner.id)).toBe(1000 - 60);
    expect(await prisma().renderJob.count({ where: { userId: owner.id } })).toBe(2);
  });
});
