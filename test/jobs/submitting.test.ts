// Submitting a render job through both doors: the contract's answer, the price charged (list
// price, voiceover fee, tip, frame rate) and the queueing logged; 402 when the balance is short,
// also for concurrent submits; bad submissions refused with 400 naming the fields, writing
// nothing; and the studio's saved project facts winning over the caller's.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SubmitRenderJobInput, SubmitRenderJobDocument } from '../generated/graphql.ts';
import { problemPaths, startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestUser } from '../support/app.ts';
import { discountCode, walletOf } from '../support/billing.ts';
import { renderBody, submissionStateOf, submitRender } from '../support/jobs.ts';
import { syncSavedProject } from '../support/projects.ts';

let t: TestApp;
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.close());

describe('submitting a render job', () => {
  it('answers 201 with the contract fields, charges the price and logs the queueing (REST)', async () => {
    const user = await t.user(1000);
    const projectId = randomUUID();
    const response = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: renderBody({ saved_project_id: projectId, name: 'My first render' }),
    });
    expect(response.status).toBe(201);
    const job = response.body;
    expect(Object.keys(job).sort()).toEqual(
      [
        'id',
        'saved_project_id',
        'name',
        'step',
        'render_progress',
        'priority_queue',
        'price_type',
        'paid_price_minor',
        'quality',
        'resolution',
        'frame_rate',
        'duration_sec',
        'has_voiceover',
        'image_preview_b64',
        'failed_message',
        'export_id',
        'queued_at',
        'started_at',
        'completed_at',
      ].sort(),
    );
    expect(job).toMatchObject({
      saved_project_id: projectId,
      name: 'My first render',
      step: 'Queued',
      render_progress: 0,
      priority_queue: 'Priority',
      price_type: 'Cash',
      paid_price_minor: 50,
      quality: 'High',
      resolution: 'HD',
      frame_rate: 30,
      duration_sec: 10,
      has_voiceover: false,
      image_preview_b64: null,
      failed_message: null,
      export_id: null,
      started_at: null,
      completed_at: null,
    });
    expect(job.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Date(job.queued_at).toISOString()).toBe(job.queued_at);
    expect(Math.abs(Date.now() - Date.parse(job.queued_at))).toBeLessThan(60_000);

    const state = await walletOf(t, user.token);
    expect(state.balance).toBe(950);
    expect(state.entries[0]).toEqual({ kind: 'Charge', amountMinor: -50, balanceAfterMinor: 950, renderJobId: job.id });
    expect(state.entries).toHaveLength(2);

    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored).toMatchObject({ userId: user.id, totalFrames: 300, paidPriceMinor: 50n, tipMinor: 0n });
    const logs = await prisma().jobLog.findMany({ where: { renderJobId: job.id } });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ level: 'info', message: 'Job queued' });
    expect(logs[0]?.meta).toMatchObject({ price_type: 'Cash', list_price_minor: 50, charged_minor: 50 });
  });

  it('charges list price plus tip and voiceover fee, and defaults to 30 fps', async () => {
    const user = await t.user(5000);
    // FullHD Full 30 fps 20 s = 5 x 20 x 1.5 x 1.25 = 187.5 -> 188, + 100 voiceover = 288, + tip 100.
    const job = await submitRender(t, user.token, { resolution: 'FullHD', quality: 'Full', frame_rate: undefined, has_voiceover: true, support_flatrender: true, duration_sec: 20 });
    expect(job).toMatchObject({ frame_rate: 30, has_voiceover: true, paid_price_minor: 388 });
    expect((await walletOf(t, user.token)).balance).toBe(5000 - 388);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored.tipMinor).toBe(100n);
  });

  it('is priced the same through GraphQL as through REST', async () => {
    const user = await t.user(5000);
    const projectId = randomUUID();
    const rest = await submitRender(t, user.token, {
      saved_project_id: projectId,
      quality: 'Lossless',
      resolution: 'TwoK',
      frame_rate: 25,
      duration_sec: 12.5,
      has_voiceover: true,
    });
    const input: SubmitRenderJobInput = {
      savedProjectId: projectId,
      quality: 'Lossless',
      resolution: 'TwoK',
      frameRate: 25,
      durationSec: 12.5,
      hasVoiceover: true,
    };
    const result = await t.gql(SubmitRenderJobDocument, { input }, user.token);
    expect(result.errors).toBeUndefined();
    const payload = result.data?.submitRenderJob;
    expect(payload?.__typename).toBe('RenderJob');
    if (payload?.__typename !== 'RenderJob') return;
    // 5 x 12.5 x 2 x 1.6 x 25/30 = 166.67 -> 167, + 100 voiceover
    expect(rest.paid_price_minor).toBe(267);
    expect(Number(payload.paidPriceMinor)).toBe(267);
    expect(payload).toMatchObject({ step: 'Queued', priorityQueue: 'Priority', frameRate: 25, totalFrames: 313 });
    const state = await walletOf(t, user.token);
    expect(state.balance).toBe(5000 - 2 * 267);
    expect(state.entries.filter((entry) => entry.kind === 'Charge').map((entry) => entry.renderJobId)).toEqual([payload.id, rest.id]);
    const logs = await prisma().jobLog.count({ where: { renderJobId: payload.id, message: 'Job queued' } });
    expect(logs).toBe(1);
  });

  it('renders 60 fps when is_60_fps is set', async () => {
    const user = await t.user(1000);
    const job = await submitRender(t, user.token, { frame_rate: undefined, is_60_fps: true, duration_sec: 10 });
    expect(job.frame_rate).toBe(60);
    expect(job.paid_price_minor).toBe(100);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored.totalFrames).toBe(600);
    const agreeing = await submitRender(t, user.token, { frame_rate: 60, is_60_fps: true, duration_sec: 2.5 });
    expect(agreeing.frame_rate).toBe(60);
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: agreeing.id } })).totalFrames).toBe(150);
    const off = await submitRender(t, user.token, { frame_rate: 24, is_60_fps: false });
    expect(off.frame_rate).toBe(24);
  });

  it('answers 402 with the amounts when the balance is short, and writes nothing (REST and GraphQL)', async () => {
    const user = await t.user(40);
    const code = await discountCode(t, { code: `SHORT${randomUUID().slice(0, 8)}`, percentOff: 10 });
    const before = await submissionStateOf(t, user.id);

    // 5 x 20 = 100, 10% off = 90 > 40.
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ duration_sec: 20, discount_code: code }) });
    expect(response.status).toBe(402);
    expect(response.body.error).toMatchObject({
      code: 'PAYMENT_REQUIRED',
      details: { required_minor: 90, balance_minor: 40 },
    });
    expect(typeof response.body.error.message).toBe('string');

    const result = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 20, discountCode: code } },
      user.token,
    );
    expect(result.errors).toBeUndefined();
    const payload = result.data?.submitRenderJob;
    expect(payload?.__typename).toBe('PaymentRequiredError');
    if (payload?.__typename === 'PaymentRequiredError') {
      expect(payload.code).toBe('PAYMENT_REQUIRED');
      expect(Number(payload.requiredMinor)).toBe(90);
      expect(Number(payload.balanceMinor)).toBe(40);
    }

    // A user without any wallet is short too.
    const broke = await t.user();
    const none = await t.rest('POST', '/v1/renders', { token: broke.token, body: renderBody() });
    expect(none.status).toBe(402);
    expect(none.body.error.details).toEqual({ required_minor: 50, balance_minor: 0 });
    expect(await prisma().renderJob.count({ where: { userId: broke.id } })).toBe(0);

    expect(await submissionStateOf(t, user.id)).toEqual(before);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(0);
    expect(await walletOf(t, user.token)).toMatchObject({ balance: 40 });
  });

  it('lets exactly one of two concurrent submits through when the balance covers one', async () => {
    const user = await t.user(60);
    const answers = await Promise.all([
      t.rest('POST', '/v1/renders', { token: user.token, body: renderBody() }),
      t.rest('POST', '/v1/renders', { token: user.token, body: renderBody() }),
    ]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 402]);
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(1);
    expect((await walletOf(t, user.token)).balance).toBe(10);
  });

  it('answers 402, not 500, to both of two concurrent submits from a user who has no wallet yet', async () => {
    const user = await t.user();
    const answers = await Promise.all([1, 2].map(() => t.rest('POST', '/v1/renders', { token: user.token, body: renderBody() })));
    expect(answers.map((answer) => answer.status)).toEqual([402, 402]);
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(0);
  });

  it('refuses anonymous callers (401) and service tokens (403) and writes nothing', async () => {
    const before = await prisma().renderJob.count();
    const anonymous = await t.rest('POST', '/v1/renders', { body: renderBody() });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const service = await t.rest('POST', '/v1/renders', { token: TEST_SERVICE_TOKEN, body: renderBody() });
    expect(service.status).toBe(403);
    expect(service.body.error.code).toBe('FORBIDDEN');
    const junk = await t.rest('POST', '/v1/renders', { token: 'not-a-jwt', body: renderBody() });
    expect(junk.status).toBe(401);
    const gql = await t.gql(SubmitRenderJobDocument, { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10 } });
    expect(gql.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await prisma().renderJob.count()).toBe(before);
  });
});

describe('refusing bad submissions with 400 and writing nothing', () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await t.user(100_000);
  });

  async function refused(body: unknown, options: { rawBody?: string } = {}) {
    const before = await submissionStateOf(t, user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, ...(options.rawBody !== undefined ? { rawBody: options.rawBody } : { body }) });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    expect(await submissionStateOf(t, user.id)).toEqual(before);
    return response.body;
  }

  it('refuses frame_rate contradicting is_60_fps', async () => {
    const body = await refused(renderBody({ frame_rate: 30, is_60_fps: true }));
    expect(problemPaths(body)).toEqual(['frame_rate']);
  });

  it('names unknown fields as the caller spelled them', async () => {
    const body = await refused(renderBody({ render_speed: 'fast', colour: 'red' }));
    expect(problemPaths(body)).toEqual(['colour', 'render_speed']);
  });

  it('names each field of the wrong type or range', async () => {
    expect(problemPaths(await refused(renderBody({ quality: 'Ultra' })))).toEqual(['quality']);
    expect(problemPaths(await refused(renderBody({ resolution: '8K' })))).toEqual(['resolution']);
    expect(problemPaths(await refused(renderBody({ saved_project_id: 'x' })))).toEqual(['saved_project_id']);
    expect(problemPaths(await refused(renderBody({ duration_sec: -1 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(renderBody({ duration_sec: 0 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(renderBody({ duration_sec: 3601 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(renderBody({ duration_sec: '10' })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(renderBody({ frame_rate: 23 })))).toEqual(['frame_rate']);
    expect(problemPaths(await refused(renderBody({ frame_rate: 29.97 })))).toEqual(['frame_rate']);
    expect(problemPaths(await refused(renderBody({ price_type: 'Gift' })))).toEqual(['price_type']);
    expect(problemPaths(await refused(renderBody({ aep_file_md5: 'not-an-md5' })))).toEqual(['aep_file_md5']);
    expect(problemPaths(await refused(renderBody({ is_60_fps: 'yes' })))).toEqual(['is_60_fps']);
  });

  it('names missing required fields in snake_case', async () => {
    const missing = await refused({ duration_sec: 10 });
    expect(problemPaths(missing)).toEqual(['quality', 'resolution', 'saved_project_id']);
  });

  it('refuses price-type limits naming the field', async () => {
    expect(problemPaths(await refused(renderBody({ price_type: 'Free', quality: 'High' })))).toEqual(['quality']);
    expect(problemPaths(await refused(renderBody({ price_type: 'Free', quality: 'Low', duration_sec: 31 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(renderBody({ price_type: 'Snapshot', duration_sec: 2 })))).toEqual(['duration_sec']);
  });

  it('refuses malformed JSON and bodies that are not objects', async () => {
    await refused(undefined, { rawBody: '{"saved_project_id":' });
    await refused([renderBody()]);
    await refused('just a string');
    await refused(undefined, { rawBody: '' });
  });

  it('answers a ValidationError over GraphQL too', async () => {
    const before = await submissionStateOf(t, user.id);
    const result = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', frameRate: 23, durationSec: 10 } },
      user.token,
    );
    const payload = result.data?.submitRenderJob;
    expect(payload?.__typename).toBe('ValidationError');
    if (payload?.__typename === 'ValidationError') expect(payload.problems.map((problem) => problem.path)).toEqual(['frameRate']);
    expect(await submissionStateOf(t, user.id)).toEqual(before);
  });
});

describe('saved project facts', () => {
  it("prices and cuts the job from the studio's facts, not the caller's", async () => {
    const user = await t.user(1000);
    const projectId = randomUUID();
    await syncSavedProject(t, {
      owner_user_id: user.id,
      name: 'Studio name',
      duration_sec: 20,
      has_voiceover: true,
      aep_file_md5: 'A'.repeat(32),
      ae_version: '24.1',
    }, projectId);
    const job = await submitRender(t, user.token, {
      saved_project_id: projectId,
      duration_sec: 1,
      has_voiceover: false,
      name: 'Caller name',
      aep_file_md5: 'b'.repeat(32),
    });
    // 5 x 20 = 100, + 100 voiceover.
    expect(job).toMatchObject({ name: 'Studio name', duration_sec: 20, has_voiceover: true, paid_price_minor: 200 });
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored).toMatchObject({ totalFrames: 600, aepFileMd5: 'a'.repeat(32), aeVersion: '24.1' });
    expect((await walletOf(t, user.token)).balance).toBe(800);

    // No duration at all is fine once the project is known.
    const again = await submitRender(t, user.token, { saved_project_id: projectId, duration_sec: undefined });
    expect(again.duration_sec).toBe(20);
  });

  it('needs duration_sec when the project is unknown here', async () => {
    const user = await t.user(1000);
    const before = await submissionStateOf(t, user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ duration_sec: undefined }) });
    expect(response.status).toBe(400);
    expect(problemPaths(response.body)).toEqual(['duration_sec']);
    expect(await submissionStateOf(t, user.id)).toEqual(before);
  });

  it("answers 404 for another user's project, and lets an admin render it", async () => {
    const owner = await t.user(1000);
    const stranger = await t.user(1000);
    const projectId = randomUUID();
    await syncSavedProject(t, { owner_user_id: owner.id, name: 'Private', duration_sec: 10 }, projectId);
    const before = await submissionStateOf(t, stranger.id);
    const response = await t.rest('POST', '/v1/renders', { token: stranger.token, body: renderBody({ saved_project_id: projectId }) });
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('NOT_FOUND');
    const gql = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: projectId, quality: 'High', resolution: 'HD' } },
      stranger.token,
    );
    expect(gql.data?.submitRenderJob.__typename).toBe('NotFoundError');
    expect(await submissionStateOf(t, stranger.id)).toEqual(before);

    const ownerJob = await submitRender(t, owner.token, { saved_project_id: projectId, duration_sec: undefined });
    expect(ownerJob.name).toBe('Private');

    const boss = await t.user(1000, { admin: true });
    const adminJob = await submitRender(t, boss.token, { saved_project_id: projectId, duration_sec: undefined });
    expect(adminJob.name).toBe('Private');
  });

  it('lets anyone render a project without an owner', async () => {
    const user = await t.user(1000);
    const projectId = randomUUID();
    await syncSavedProject(t, { name: 'Shared', duration_sec: 4 }, projectId);
    const job = await submitRender(t, user.token, { saved_project_id: projectId });
    expect(job).toMatchObject({ name: 'Shared', duration_sec: 4, paid_price_minor: 50 });
  });
});
