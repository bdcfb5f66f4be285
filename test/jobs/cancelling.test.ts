// Cancelling a render job through both doors: exact refunds of the unrendered share (the tip
// only while nothing is rendered), one refund however many cancels arrive together, refusals that
// change nothing, and the node working on the job told to stop.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelRenderJobDocument } from '../generated/graphql.ts';
import { chunkOn, clearQueue, preparedOn } from '../support/agent.ts';
import { problemPaths, startTestApp, TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';
import { balanceOf, jobStateOf, refundsOf, submitRender } from '../support/jobs.ts';
import { markRendered } from '../support/rows.ts';

let t: TestApp;
let admin: string;
const adminId = randomUUID();
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(adminId, { admin: true });
});
afterAll(() => t?.close());

describe('cancelling over REST', () => {
  it('cancels a Queued job, refunding everything paid including the tip, and logs it', async () => {
    const user = await t.user(1000);
    // HD High 10 s = 50, + tip 100.
    const job = await submitRender(t, user.token, { support_flatrender: true });
    expect(job.paid_price_minor).toBe(150);
    expect(await balanceOf(t, user.id)).toBe(850);

    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: {} });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 150 });

    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id }, include: { frameJobs: true } });
    expect(stored).toMatchObject({ step: 'Cancelled', refundedMinor: 150n, cancelReason: 'Cancelled by the user' });
    expect(stored.completedAt).not.toBeNull();
    expect(stored.frameJobs.length).toBeGreaterThan(0);
    expect(stored.frameJobs.every((chunk) => chunk.status === 'Cancelled')).toBe(true);

    const refunds = await refundsOf(t, job.id);
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ userId: user.id, kind: 'Refund', amountMinor: 150n, balanceAfterMinor: 1000n });
    expect(await balanceOf(t, user.id)).toBe(1000);

    const logs = await prisma().jobLog.findMany({ where: { renderJobId: job.id }, orderBy: { id: 'asc' } });
    expect(logs.map((line) => [line.level, line.message])).toEqual([
      ['info', 'Job queued'],
      ['info', 'Job cancelled: Cancelled by the user'],
    ]);
    expect(logs[1]?.meta).toMatchObject({ refund_minor: 150, frames_rendered: 0 });

    const detail = await t.rest('GET', `/v1/renders/${job.id}`, { token: user.token });
    expect(detail.body.step).toBe('Cancelled');
    expect(detail.body.frame_jobs.every((chunk: { status: string }) => chunk.status === 'Cancelled')).toBe(true);
  });

  it('answers a second cancel with 409 INVALID_STATE and the error body, refunding nothing more', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const first = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(first.status).toBe(200);
    const before = await jobStateOf(t, job.id, user.id);
    const second = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(second.status).toBe(409);
    expect(second.body).toEqual({
      error: {
        code: 'INVALID_STATE',
        message: `Render job ${job.id} is Cancelled; it cannot become Cancelled`,
        details: { job_id: job.id, step: 'Cancelled', requested_step: 'Cancelled', allowed_steps: [] },
      },
    });
    expect(await jobStateOf(t, job.id, user.id)).toEqual(before);
    expect(await refundsOf(t, job.id)).toHaveLength(1);
    expect(await balanceOf(t, user.id)).toBe(1000);
  });

  it('refunds exactly the unrendered share of the price without the tip once frames are rendered', async () => {
    const user = await t.user(1000);
    // FullHD Full 30 fps 8 s = 5 x 8 x 1.5 x 1.25 = 75, + 100 voiceover = 175, + tip 100 = 275; 240 frames.
    const job = await submitRender(t, user.token, { resolution: 'FullHD', quality: 'Full', duration_sec: 8, has_voiceover: true, support_flatrender: true });
    expect(job.paid_price_minor).toBe(275);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored).toMatchObject({ totalFrames: 240, tipMinor: 100n });
    await markRendered(t, job.id, 60);

    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: 'Wrong music' } });
    expect(response.status).toBe(200);
    // (275 - 100) x 180 / 240 = 131.25, rounded down.
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 131 });
    expect(await balanceOf(t, user.id)).toBe(1000 - 275 + 131);
    const refunds = await refundsOf(t, job.id);
    expect(refunds.map((entry) => entry.amountMinor)).toEqual([131n]);
    const after = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(after).toMatchObject({ step: 'Cancelled', cancelReason: 'Wrong music', refundedMinor: 131n });
  });

  it('refunds nothing, and writes no refund entry, when every frame was rendered', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    await markRendered(t, job.id, 300);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 0 });
    expect(await refundsOf(t, job.id)).toEqual([]);
    expect(await balanceOf(t, user.id)).toBe(950);
  });

  it('stores the reason, trimmed', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: '  Changed my mind  ' } });
    expect(response.status).toBe(200);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored.cancelReason).toBe('Changed my mind');
    const line = await prisma().jobLog.findFirst({ where: { renderJobId: job.id }, orderBy: { id: 'desc' } });
    expect(line?.message).toBe('Job cancelled: Changed my mind');
  });

  it('answers 400 for a bad reason or an unknown field, changing nothing', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const before = await jobStateOf(t, job.id, user.id);
    const cases: [unknown, string[]][] = [
      [{ reason: 'x'.repeat(501) }, ['reason']],
      [{ reason: 42 }, ['reason']],
      [{ reason: ['why'] }, ['reason']],
      [{ reason: '   ' }, ['reason']],
      [{ reason: 'fine', colour: 'red' }, ['colour']],
    ];
    for (const [body, paths] of cases) {
      const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(problemPaths(response.body)).toEqual(paths);
    }
    const array = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: ['reason'] });
    expect(array.status).toBe(400);
    const malformed = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, rawBody: '{"reason":' });
    expect(malformed.status).toBe(400);
    const notUuid = await t.rest('POST', '/v1/renders/not-a-uuid/cancel', { token: user.token });
    expect(notUuid.status).toBe(400);
    expect(await jobStateOf(t, job.id, user.id)).toEqual(before);
    // 500 characters is still fine.
    const longest = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: 'y'.repeat(500) } });
    expect(longest.status).toBe(200);
  });

  it("answers 404 for another user's job and for an unknown one, changing nothing", async () => {
    const owner = await t.user(1000);
    const stranger = await t.user(1000);
    const job = await submitRender(t, owner.token);
    const before = await jobStateOf(t, job.id, owner.id);
    const strangerBefore = await balanceOf(t, stranger.id);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: stranger.token, body: { reason: 'mine now' } });
    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: 'NOT_FOUND', details: { entity: 'render job', id: job.id } });
    const unknown = await t.rest('POST', `/v1/renders/${randomUUID()}/cancel`, { token: owner.token });
    expect(unknown.status).toBe(404);
    expect(await jobStateOf(t, job.id, owner.id)).toEqual(before);
    expect(await balanceOf(t, stranger.id)).toBe(strangerBefore);
  });

  it("lets an admin cancel anyone's job, refunding the owner", async () => {
    const owner = await t.user(1000);
    const job = await submitRender(t, owner.token);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: admin });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 50 });
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored).toMatchObject({ step: 'Cancelled', cancelReason: 'Cancelled by an administrator' });
    expect(await balanceOf(t, owner.id)).toBe(1000);
    expect(await prisma().ledgerEntry.count({ where: { userId: adminId } })).toBe(0);
  });

  it('refuses anonymous callers (401) and service tokens (403), changing nothing', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token);
    const before = await jobStateOf(t, job.id, user.id);
    const anonymous = await t.rest('POST', `/v1/renders/${job.id}/cancel`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const service = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: TEST_SERVICE_TOKEN });
    expect(service.status).toBe(403);
    expect(await jobStateOf(t, job.id, user.id)).toEqual(before);
  });

  it('refunds once when ten cancels of one job arrive together', async () => {
    const user = await t.user(1000);
    // FullHD Full 20 s with voiceover and tip: 388.
    const job = await submitRender(t, user.token, { resolution: 'FullHD', quality: 'Full', duration_sec: 20, has_voiceover: true, support_flatrender: true });
    expect(job.paid_price_minor).toBe(388);
    await markRendered(t, job.id, 150);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200), JSON.stringify(answers.map((a) => a.body))).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(9);
    for (const answer of answers.filter((a) => a.status === 409)) expect(answer.body.error.code).toBe('INVALID_STATE');
    // 600 frames, 150 rendered: (388 - 100) x 450 / 600 = 216.
    expect(answers.find((answer) => answer.status === 200)?.body).toEqual({ cancelled: true, refund_amount_minor: 216 });
    expect((await refundsOf(t, job.id)).map((entry) => entry.amountMinor)).toEqual([216n]);
    expect(await balanceOf(t, user.id)).toBe(1000 - 388 + 216);
    expect(await prisma().jobLog.count({ where: { renderJobId: job.id, message: { startsWith: 'Job cancelled' } } })).toBe(1);
  });

  it('tells a node working on a chunk to stop (cancel_job on its next heartbeat)', async () => {
    const node = await t.onlineNode('cancel-target');
    const idle = await t.onlineNode('cancel-bystander');
    const user = await t.user(1000);
    await clearQueue(t);
    const job = await submitRender(t, user.token);
    await preparedOn(t, node, job.id);
    const held = await chunkOn(t, node);

    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: 'Stop it' } });
    expect(response.status).toBe(200);
    const chunk = await prisma().frameJob.findUniqueOrThrow({ where: { id: String(held.frame_job_id) } });
    expect(chunk).toMatchObject({ status: 'Cancelled', leaseToken: null });

    const commands = await t.heartbeat(node);
    expect(commands).toEqual([{ type: 'cancel_job', command_id: expect.any(String), job_id: job.id, reason: 'Stop it' }]);
    const stored = await prisma().nodeCommand.findMany({ where: { renderJobId: job.id, type: 'cancel_job' } });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ nodeId: node.id, type: 'cancel_job' });

    expect(await t.heartbeat(idle)).toEqual([]);
  });
});

describe('cancelling through GraphQL', () => {
  it('answers CancelledRenderJob with the refund, then InvalidStateError, and NotFoundError for others', async () => {
    const owner = await t.user(1000);
    const stranger = await t.user(1000);
    const job = await submitRender(t, owner.token, { support_flatrender: true });

    const foreign = await t.gql(CancelRenderJobDocument, { id: job.id }, stranger.token);
    expect(foreign.errors).toBeUndefined();
    expect(foreign.data?.cancelRenderJob).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'render job', id: job.id });
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).step).toBe('Queued');

    const tooLong = await t.gql(CancelRenderJobDocument, { id: job.id, reason: 'z'.repeat(501) }, owner.token);
    expect(tooLong.data?.cancelRenderJob).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    if (tooLong.data?.cancelRenderJob.__typename === 'ValidationError') {
      expect(tooLong.data.cancelRenderJob.problems.map((problem) => problem.path)).toEqual(['reason']);
    }
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).step).toBe('Queued');

    const result = await t.gql(CancelRenderJobDocument, { id: job.id, reason: 'From the app' }, owner.token);
    expect(result.errors).toBeUndefined();
    const payload = result.data?.cancelRenderJob;
    expect(payload?.__typename).toBe('CancelledRenderJob');
    if (payload?.__typename !== 'CancelledRenderJob') return;
    expect(payload.cancelled).toBe(true);
    expect(Number(payload.refundAmountMinor)).toBe(150);
    expect(payload.job).toEqual({ id: job.id, step: 'Cancelled' });
    expect(await balanceOf(t, owner.id)).toBe(1000);
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).cancelReason).toBe('From the app');

    const again = await t.gql(CancelRenderJobDocument, { id: job.id }, owner.token);
    expect(again.data?.cancelRenderJob).toMatchObject({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      state: 'Cancelled',
      message: `Render job ${job.id} is Cancelled; it cannot become Cancelled`,
    });
    expect(await refundsOf(t, job.id)).toHaveLength(1);

    const anonymous = await t.gql(CancelRenderJobDocument, { id: job.id });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
