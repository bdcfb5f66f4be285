import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreditWalletDocument,
  RenderJobDocument,
  RenderJobsDocument,
  type RenderJobsQuery,
  type RenderJobsQueryVariables,
  type SubmitRenderJobInput,
  SubmitRenderJobDocument,
  WalletDocument,
} from '../generated/graphql.ts';
import { startTestApp, TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';

let t: TestApp;
let admin: string;
const adminId = randomUUID();

interface User {
  id: string;
  token: string;
}

const prisma = () => t.app.services.db.prisma;

async function newUser(options: { admin?: boolean; roles?: string[]; plan?: string } = {}): Promise<User> {
  const id = randomUUID();
  return { id, token: await t.token(id, options) };
}

/** Credits through the admin GraphQL mutation, as the playground does. */
async function credit(userId: string, amountMinor: number, idempotencyKey = `test-credit-${randomUUID()}`) {
  const result = await t.gql(CreditWalletDocument, { input: { userId, amountMinor, idempotencyKey } }, admin);
  expect(result.errors).toBeUndefined();
  expect(result.data?.creditWallet, JSON.stringify(result.data)).toMatchObject({ __typename: 'LedgerEntry' });
  return result.data!.creditWallet;
}

/**
 * A user with money to spend. Funds through the billing service itself (same database, same
 * ledger code), so that the submission tests do not depend on the GraphQL credit mutation, which
 * has tests of its own above.
 */
function funded(amountMinor: number, options: { admin?: boolean; roles?: string[]; plan?: string } = {}): Promise<User> {
  return t.user(amountMinor, options);
}

async function wallet(user: User) {
  const result = await t.gql(WalletDocument, {}, user.token);
  expect(result.errors).toBeUndefined();
  const data = result.data!.wallet;
  return {
    balance: Number(data.balanceMinor),
    entries: data.entries.edges.map(({ node }) => ({
      kind: node.kind,
      amountMinor: Number(node.amountMinor),
      balanceAfterMinor: Number(node.balanceAfterMinor),
      renderJobId: node.renderJobId,
    })),
  };
}

/** HD High 30 fps 10 s, Cash: 50. */
const jobBody = (overrides: Record<string, unknown> = {}) => ({
  saved_project_id: randomUUID(),
  quality: 'High',
  resolution: 'HD',
  frame_rate: 30,
  duration_sec: 10,
  ...overrides,
});

async function submit(user: User, overrides: Record<string, unknown> = {}) {
  const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody(overrides) });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

/** Everything a refused submission must leave alone. */
async function snapshotOf(userId: string) {
  const db = prisma();
  const [jobs, entries, logs, walletRow, discounts] = await Promise.all([
    db.renderJob.count({ where: { userId } }),
    db.ledgerEntry.count({ where: { userId } }),
    db.jobLog.count(),
    db.wallet.findUnique({ where: { userId } }),
    db.discountCode.findMany({ orderBy: { code: 'asc' }, select: { code: true, usedCount: true } }),
  ]);
  return { jobs, entries, logs, balance: walletRow?.balanceMinor ?? null, discounts };
}

const problemPaths = (body: any): string[] => body.error.details.problems.map((problem: { path: string }) => problem.path).sort();

beforeAll(async () => {
  t = await startTestApp();
  admin = await t.token(adminId, { admin: true });
});
afterAll(() => t.close());

describe('the wallet', () => {
  it('is empty for a user nobody has credited', async () => {
    const user = await newUser();
    expect(await wallet(user)).toEqual({ balance: 0, entries: [] });
  });

  it('is credited by an admin through creditWallet', async () => {
    const user = await newUser();
    const entry = await credit(user.id, 1234);
    expect(entry).toMatchObject({ __typename: 'LedgerEntry' });
    if (entry.__typename !== 'LedgerEntry') return;
    expect(Number(entry.amountMinor)).toBe(1234);
    expect(Number(entry.balanceAfterMinor)).toBe(1234);
    expect(await wallet(user)).toEqual({
      balance: 1234,
      entries: [{ kind: 'Credit', amountMinor: 1234, balanceAfterMinor: 1234, renderJobId: null }],
    });
  });

  it('credits once for a repeated idempotency key', async () => {
    const user = await newUser();
    const key = `credit-once-${randomUUID()}`;
    const first = await credit(user.id, 500, key);
    const second = await credit(user.id, 500, key);
    expect(second).toEqual(first);
    const state = await wallet(user);
    expect(state.balance).toBe(500);
    expect(state.entries).toHaveLength(1);
  });

  it('credits once, and answers both callers, when the same key arrives twice at the same time', async () => {
    const user = await newUser();
    await credit(user.id, 100);
    const key = `credit-race-${randomUUID()}`;
    const input = { userId: user.id, amountMinor: 700, idempotencyKey: key };
    const results = await Promise.all([t.gql(CreditWalletDocument, { input }, admin), t.gql(CreditWalletDocument, { input }, admin)]);
    for (const result of results) {
      expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
      expect(result.data?.creditWallet.__typename).toBe('LedgerEntry');
    }
    expect((await wallet(user)).balance).toBe(800);
  });

  it('lands both of two different credits arriving together for a user without a wallet', async () => {
    const user = await newUser();
    const inputs = [300, 400].map((amountMinor) => ({ userId: user.id, amountMinor, idempotencyKey: `first-credits-${randomUUID()}` }));
    const results = await Promise.all(inputs.map((input) => t.gql(CreditWalletDocument, { input }, admin)));
    for (const result of results) {
      expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
      expect(result.data?.creditWallet.__typename).toBe('LedgerEntry');
    }
    expect((await wallet(user)).balance).toBe(700);
  });

  it('refuses non-admins and bad input without crediting anything', async () => {
    const user = await newUser();
    const forbidden = await t.gql(
      CreditWalletDocument,
      { input: { userId: user.id, amountMinor: 1000, idempotencyKey: `self-credit-${randomUUID()}` } },
      user.token,
    );
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const service = await t.gql(
      CreditWalletDocument,
      { input: { userId: user.id, amountMinor: 1000, idempotencyKey: `svc-credit-${randomUUID()}` } },
      TEST_SERVICE_TOKEN,
    );
    expect(service.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await t.gql(CreditWalletDocument, {
      input: { userId: user.id, amountMinor: 1000, idempotencyKey: `anon-credit-${randomUUID()}` },
    });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const negative = await t.gql(
      CreditWalletDocument,
      { input: { userId: user.id, amountMinor: -5, idempotencyKey: `negative-${randomUUID()}` } },
      admin,
    );
    expect(negative.data?.creditWallet).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    if (negative.data?.creditWallet.__typename === 'ValidationError') {
      expect(negative.data.creditWallet.problems.map((problem) => problem.path)).toEqual(['amountMinor']);
    }
    expect(await wallet(user)).toEqual({ balance: 0, entries: [] });
    expect(await prisma().ledgerEntry.count({ where: { userId: user.id } })).toBe(0);
  });
});

describe('submitting a render job', () => {
  it('answers 201 with the contract fields, charges the price and logs the queueing (REST)', async () => {
    const user = await funded(1000);
    const projectId = randomUUID();
    const response = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: jobBody({ saved_project_id: projectId, name: 'My first render' }),
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

    const state = await wallet(user);
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
    const user = await funded(5000);
    // FullHD Full 30 fps 20 s = 5 x 20 x 1.5 x 1.25 = 187.5 -> 188, + 100 voiceover = 288, + tip 100.
    const job = await submit(user, { resolution: 'FullHD', quality: 'Full', frame_rate: undefined, has_voiceover: true, support_flatrender: true, duration_sec: 20 });
    expect(job).toMatchObject({ frame_rate: 30, has_voiceover: true, paid_price_minor: 388 });
    expect((await wallet(user)).balance).toBe(5000 - 388);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored.tipMinor).toBe(100n);
  });

  it('is priced the same through GraphQL as through REST', async () => {
    const user = await funded(5000);
    const projectId = randomUUID();
    const rest = await submit(user, {
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
    const state = await wallet(user);
    expect(state.balance).toBe(5000 - 2 * 267);
    expect(state.entries.filter((entry) => entry.kind === 'Charge').map((entry) => entry.renderJobId)).toEqual([payload.id, rest.id]);
    const logs = await prisma().jobLog.count({ where: { renderJobId: payload.id, message: 'Job queued' } });
    expect(logs).toBe(1);
  });

  it('renders 60 fps when is_60_fps is set', async () => {
    const user = await funded(1000);
    const job = await submit(user, { frame_rate: undefined, is_60_fps: true, duration_sec: 10 });
    expect(job.frame_rate).toBe(60);
    expect(job.paid_price_minor).toBe(100);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored.totalFrames).toBe(600);
    const agreeing = await submit(user, { frame_rate: 60, is_60_fps: true, duration_sec: 2.5 });
    expect(agreeing.frame_rate).toBe(60);
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: agreeing.id } })).totalFrames).toBe(150);
    const off = await submit(user, { frame_rate: 24, is_60_fps: false });
    expect(off.frame_rate).toBe(24);
  });

  it('answers 402 with the amounts when the balance is short, and writes nothing (REST and GraphQL)', async () => {
    const user = await funded(40);
    const code = `SHORT${randomUUID().slice(0, 8)}`;
    await prisma().discountCode.create({ data: { code, percentOff: 10 } });
    const before = await snapshotOf(user.id);

    // 5 x 20 = 100, 10% off = 90 > 40.
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody({ duration_sec: 20, discount_code: code }) });
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
    const broke = await newUser();
    const none = await t.rest('POST', '/v1/renders', { token: broke.token, body: jobBody() });
    expect(none.status).toBe(402);
    expect(none.body.error.details).toEqual({ required_minor: 50, balance_minor: 0 });
    expect(await prisma().renderJob.count({ where: { userId: broke.id } })).toBe(0);

    expect(await snapshotOf(user.id)).toEqual(before);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(0);
    expect(await wallet(user)).toMatchObject({ balance: 40 });
  });

  it('lets exactly one of two concurrent submits through when the balance covers one', async () => {
    const user = await funded(60);
    const answers = await Promise.all([
      t.rest('POST', '/v1/renders', { token: user.token, body: jobBody() }),
      t.rest('POST', '/v1/renders', { token: user.token, body: jobBody() }),
    ]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 402]);
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(1);
    expect((await wallet(user)).balance).toBe(10);
  });

  it('answers 402, not 500, to both of two concurrent submits from a user who has no wallet yet', async () => {
    const user = await newUser();
    const answers = await Promise.all([1, 2].map(() => t.rest('POST', '/v1/renders', { token: user.token, body: jobBody() })));
    expect(answers.map((answer) => answer.status)).toEqual([402, 402]);
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(0);
  });

  it('refuses anonymous callers (401) and service tokens (403) and writes nothing', async () => {
    const before = await prisma().renderJob.count();
    const anonymous = await t.rest('POST', '/v1/renders', { body: jobBody() });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const service = await t.rest('POST', '/v1/renders', { token: TEST_SERVICE_TOKEN, body: jobBody() });
    expect(service.status).toBe(403);
    expect(service.body.error.code).toBe('FORBIDDEN');
    const junk = await t.rest('POST', '/v1/renders', { token: 'not-a-jwt', body: jobBody() });
    expect(junk.status).toBe(401);
    const gql = await t.gql(SubmitRenderJobDocument, { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10 } });
    expect(gql.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await prisma().renderJob.count()).toBe(before);
  });
});

describe('refusing bad submissions with 400 and writing nothing', () => {
  let user: User;
  beforeAll(async () => {
    user = await funded(100_000);
  });

  async function refused(body: unknown, options: { rawBody?: string } = {}) {
    const before = await snapshotOf(user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, ...(options.rawBody !== undefined ? { rawBody: options.rawBody } : { body }) });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    expect(await snapshotOf(user.id)).toEqual(before);
    return response.body;
  }

  it('refuses frame_rate contradicting is_60_fps', async () => {
    const body = await refused(jobBody({ frame_rate: 30, is_60_fps: true }));
    expect(problemPaths(body)).toEqual(['frame_rate']);
  });

  it('names unknown fields as the caller spelled them', async () => {
    const body = await refused(jobBody({ render_speed: 'fast', colour: 'red' }));
    expect(problemPaths(body)).toEqual(['colour', 'render_speed']);
  });

  it('names each field of the wrong type or range', async () => {
    expect(problemPaths(await refused(jobBody({ quality: 'Ultra' })))).toEqual(['quality']);
    expect(problemPaths(await refused(jobBody({ resolution: '8K' })))).toEqual(['resolution']);
    expect(problemPaths(await refused(jobBody({ saved_project_id: 'x' })))).toEqual(['saved_project_id']);
    expect(problemPaths(await refused(jobBody({ duration_sec: -1 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(jobBody({ duration_sec: 0 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(jobBody({ duration_sec: 3601 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(jobBody({ duration_sec: '10' })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(jobBody({ frame_rate: 23 })))).toEqual(['frame_rate']);
    expect(problemPaths(await refused(jobBody({ frame_rate: 29.97 })))).toEqual(['frame_rate']);
    expect(problemPaths(await refused(jobBody({ price_type: 'Gift' })))).toEqual(['price_type']);
    expect(problemPaths(await refused(jobBody({ aep_file_md5: 'not-an-md5' })))).toEqual(['aep_file_md5']);
    expect(problemPaths(await refused(jobBody({ is_60_fps: 'yes' })))).toEqual(['is_60_fps']);
  });

  it('names missing required fields in snake_case', async () => {
    const missing = await refused({ duration_sec: 10 });
    expect(problemPaths(missing)).toEqual(['quality', 'resolution', 'saved_project_id']);
  });

  it('refuses price-type limits naming the field', async () => {
    expect(problemPaths(await refused(jobBody({ price_type: 'Free', quality: 'High' })))).toEqual(['quality']);
    expect(problemPaths(await refused(jobBody({ price_type: 'Free', quality: 'Low', duration_sec: 31 })))).toEqual(['duration_sec']);
    expect(problemPaths(await refused(jobBody({ price_type: 'Snapshot', duration_sec: 2 })))).toEqual(['duration_sec']);
  });

  it('refuses malformed JSON and bodies that are not objects', async () => {
    await refused(undefined, { rawBody: '{"saved_project_id":' });
    await refused([jobBody()]);
    await refused('just a string');
    await refused(undefined, { rawBody: '' });
  });

  it('answers a ValidationError over GraphQL too', async () => {
    const before = await snapshotOf(user.id);
    const result = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', frameRate: 23, durationSec: 10 } },
      user.token,
    );
    const payload = result.data?.submitRenderJob;
    expect(payload?.__typename).toBe('ValidationError');
    if (payload?.__typename === 'ValidationError') expect(payload.problems.map((problem) => problem.path)).toEqual(['frameRate']);
    expect(await snapshotOf(user.id)).toEqual(before);
  });
});

describe('saved project facts', () => {
  async function syncProject(id: string, body: Record<string, unknown>) {
    const response = await t.rest('PUT', `/v1/saved-projects/${id}`, { token: TEST_SERVICE_TOKEN, body });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  it("prices and cuts the job from the studio's facts, not the caller's", async () => {
    const user = await funded(1000);
    const projectId = randomUUID();
    await syncProject(projectId, {
      owner_user_id: user.id,
      name: 'Studio name',
      duration_sec: 20,
      has_voiceover: true,
      aep_file_md5: 'A'.repeat(32),
      ae_version: '24.1',
    });
    const job = await submit(user, {
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
    expect((await wallet(user)).balance).toBe(800);

    // No duration at all is fine once the project is known.
    const again = await submit(user, { saved_project_id: projectId, duration_sec: undefined });
    expect(again.duration_sec).toBe(20);
  });

  it('needs duration_sec when the project is unknown here', async () => {
    const user = await funded(1000);
    const before = await snapshotOf(user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody({ duration_sec: undefined }) });
    expect(response.status).toBe(400);
    expect(problemPaths(response.body)).toEqual(['duration_sec']);
    expect(await snapshotOf(user.id)).toEqual(before);
  });

  it("answers 404 for another user's project, and lets an admin render it", async () => {
    const owner = await funded(1000);
    const stranger = await funded(1000);
    const projectId = randomUUID();
    await syncProject(projectId, { owner_user_id: owner.id, name: 'Private', duration_sec: 10 });
    const before = await snapshotOf(stranger.id);
    const response = await t.rest('POST', '/v1/renders', { token: stranger.token, body: jobBody({ saved_project_id: projectId }) });
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('NOT_FOUND');
    const gql = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: projectId, quality: 'High', resolution: 'HD' } },
      stranger.token,
    );
    expect(gql.data?.submitRenderJob.__typename).toBe('NotFoundError');
    expect(await snapshotOf(stranger.id)).toEqual(before);

    const ownerJob = await submit(owner, { saved_project_id: projectId, duration_sec: undefined });
    expect(ownerJob.name).toBe('Private');

    const boss = await funded(1000, { admin: true });
    const adminJob = await submit(boss, { saved_project_id: projectId, duration_sec: undefined });
    expect(adminJob.name).toBe('Private');
  });

  it('lets anyone render a project without an owner', async () => {
    const user = await funded(1000);
    const projectId = randomUUID();
    await syncProject(projectId, { name: 'Shared', duration_sec: 4 });
    const job = await submit(user, { saved_project_id: projectId });
    expect(job).toMatchObject({ name: 'Shared', duration_sec: 4, paid_price_minor: 50 });
  });
});

describe('discount codes', () => {
  const newCode = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

  it('takes a percentage off the charge and counts a use', async () => {
    const user = await funded(1000);
    const code = newCode('PCT');
    await prisma().discountCode.create({ data: { code, percentOff: 20 } });
    // 5 x 40 = 200, 20% off = 160.
    const job = await submit(user, { duration_sec: 40, discount_code: code });
    expect(job.paid_price_minor).toBe(160);
    expect((await wallet(user)).balance).toBe(840);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(1);
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).discountCode).toBe(code);
    const amount = newCode('AMT');
    await prisma().discountCode.create({ data: { code: amount, amountOffMinor: 30n } });
    const second = await submit(user, { duration_sec: 40, discount_code: amount });
    expect(second.paid_price_minor).toBe(170);
  });

  it('refuses expired, inactive, used-up and unknown codes naming discount_code, charging nothing', async () => {
    const user = await funded(1000);
    const expired = newCode('OLD');
    const inactive = newCode('OFF');
    const usedUp = newCode('USED');
    await prisma().discountCode.createMany({
      data: [
        { code: expired, percentOff: 50, expiresAt: new Date(Date.now() - 60_000) },
        { code: inactive, percentOff: 50, active: false },
        { code: usedUp, percentOff: 50, maxUses: 2, usedCount: 2 },
      ],
    });
    const before = await snapshotOf(user.id);
    for (const code of [expired, inactive, usedUp, newCode('NOPE')]) {
      const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody({ discount_code: code }) });
      expect(response.status, code).toBe(400);
      expect(problemPaths(response.body)).toEqual(['discount_code']);
    }
    const gql = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10, discountCode: expired } },
      user.token,
    );
    expect(gql.data?.submitRenderJob.__typename).toBe('ValidationError');
    expect(await snapshotOf(user.id)).toEqual(before);
    expect((await wallet(user)).balance).toBe(1000);
  });

  it('refuses a discount on a Free render', async () => {
    const user = await funded(1000);
    const code = newCode('FREE');
    await prisma().discountCode.create({ data: { code, percentOff: 10 } });
    const before = await snapshotOf(user.id);
    const response = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: jobBody({ price_type: 'Free', quality: 'Low', discount_code: code }),
    });
    expect(response.status).toBe(400);
    expect(problemPaths(response.body)).toEqual(['discount_code']);
    expect(await snapshotOf(user.id)).toEqual(before);
  });

  it('lets exactly one of two concurrent submits use the last use of a code', async () => {
    const first = await funded(1000);
    const second = await funded(1000);
    const code = newCode('LAST');
    await prisma().discountCode.create({ data: { code, percentOff: 50, maxUses: 1 } });
    const answers = await Promise.all(
      [first, second].map((user) =>
        t.rest('POST', '/v1/renders', { token: user.token, body: jobBody({ duration_sec: 40, discount_code: code }) }),
      ),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 400]);
    const loser = answers.find((answer) => answer.status === 400)!;
    expect(problemPaths(loser.body)).toEqual(['discount_code']);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(1);
    expect(await prisma().renderJob.count({ where: { discountCode: code } })).toBe(1);
    const balances = [(await wallet(first)).balance, (await wallet(second)).balance].sort((a, b) => a - b);
    expect(balances).toEqual([900, 1000]);
  });
});

describe('price types that depend on the caller', () => {
  it('Plan: 403 without a plan claim, charged 0 with one', async () => {
    const user = await funded(1000);
    const before = await snapshotOf(user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody({ price_type: 'Plan' }) });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe('FORBIDDEN');
    const gql = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10, priceType: 'Plan' } },
      user.token,
    );
    expect(gql.data?.submitRenderJob.__typename).toBe('ForbiddenError');
    expect(await snapshotOf(user.id)).toEqual(before);

    const subscriber = { id: user.id, token: await t.token(user.id, { plan: 'pro' }) };
    const job = await submit(subscriber, { price_type: 'Plan', quality: 'Lossless', resolution: 'FourK', duration_sec: 300 });
    expect(job).toMatchObject({ price_type: 'Plan', paid_price_minor: 0, priority_queue: 'Standard' });
    const state = await wallet(subscriber);
    expect(state.balance).toBe(1000);
    expect(state.entries.filter((entry) => entry.kind === 'Charge')).toEqual([]);
    // A plan job needs no money at all.
    const broke = await newUser({ plan: 'pro' });
    expect((await submit(broke, { price_type: 'Plan' })).paid_price_minor).toBe(0);
  });

  it('Reseller: 403 without the role, 70% of the list price with it', async () => {
    const user = await funded(1000);
    const before = await snapshotOf(user.id);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody({ price_type: 'Reseller', duration_sec: 40 }) });
    expect(response.status).toBe(403);
    expect(await snapshotOf(user.id)).toEqual(before);
    const reseller = { id: user.id, token: await t.token(user.id, { roles: ['reseller'] }) };
    // 5 x 40 = 200, 70% = 140.
    const job = await submit(reseller, { price_type: 'Reseller', duration_sec: 40 });
    expect(job).toMatchObject({ price_type: 'Reseller', paid_price_minor: 140, priority_queue: 'Priority' });
    expect((await wallet(reseller)).balance).toBe(860);
  });

  it('Free and Preview cost nothing but a tip, on their queues', async () => {
    const user = await funded(1000);
    const free = await submit(user, { price_type: 'Free', quality: 'Low', duration_sec: 30 });
    expect(free).toMatchObject({ paid_price_minor: 0, priority_queue: 'Background' });
    const preview = await submit(user, { price_type: 'Preview', quality: 'Low', resolution: 'FullHD', duration_sec: 60 });
    expect(preview).toMatchObject({ paid_price_minor: 0, priority_queue: 'Standard' });
    const tipped = await submit(user, { price_type: 'Free', quality: 'Low', support_flatrender: true });
    expect(tipped.paid_price_minor).toBe(100);
    const snapshot = await submit(user, { price_type: 'Snapshot', duration_sec: 1 });
    expect(snapshot).toMatchObject({ paid_price_minor: 25, priority_queue: 'Standard' });
    expect((await wallet(user)).balance).toBe(1000 - 100 - 25);
  });
});

describe('listing render jobs', () => {
  let owner: User;
  let other: User;
  let ownerJobs: string[];
  let otherJob: string;
  let cancelledJob: string;

  beforeAll(async () => {
    owner = await funded(10_000);
    other = await funded(10_000);
    ownerJobs = [];
    for (let index = 0; index < 5; index++) {
      ownerJobs.push((await submit(owner, { name: `Listed ${index}` })).id);
    }
    otherJob = (await submit(other, { name: 'Not yours' })).id;
    // A job that left the queue, to check that filters filter.
    cancelledJob = ownerJobs[1]!;
    await prisma().renderJob.update({ where: { id: cancelledJob }, data: { step: 'Cancelled' } });
  });

  it('pages REST results newest first with page meta', async () => {
    const newestFirst = [...ownerJobs].reverse();
    const first = await t.rest('GET', '/v1/renders?page=1&page_size=2', { token: owner.token });
    expect(first.status).toBe(200);
    expect(first.body.meta).toEqual({ page: 1, page_size: 2, total: 5, has_more: true });
    expect(first.body.data.map((job: { id: string }) => job.id)).toEqual(newestFirst.slice(0, 2));
    expect(first.body.data[0]).toMatchObject({ name: 'Listed 4', step: 'Queued', price_type: 'Cash', paid_price_minor: 50, export_id: null });
    const last = await t.rest('GET', '/v1/renders?page=3&page_size=2', { token: owner.token });
    expect(last.body.meta).toEqual({ page: 3, page_size: 2, total: 5, has_more: false });
    expect(last.body.data.map((job: { id: string }) => job.id)).toEqual(newestFirst.slice(4));
    const beyond = await t.rest('GET', '/v1/renders?page=4&page_size=2', { token: owner.token });
    expect(beyond.status).toBe(200);
    expect(beyond.body).toEqual({ data: [], meta: { page: 4, page_size: 2, total: 5, has_more: false } });
    const defaults = await t.rest('GET', '/v1/renders', { token: owner.token });
    expect(defaults.body.meta).toEqual({ page: 1, page_size: 20, total: 5, has_more: false });
    expect(defaults.body.data.map((job: { id: string }) => job.id)).toEqual(newestFirst);
    const times = defaults.body.data.map((job: { queued_at: string }) => Date.parse(job.queued_at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('filters by status', async () => {
    const queued = await t.rest('GET', '/v1/renders?status=Queued', { token: owner.token });
    expect(queued.status).toBe(200);
    expect(queued.body.meta.total).toBe(4);
    expect(queued.body.data.map((job: { id: string }) => job.id)).not.toContain(cancelledJob);
    const cancelled = await t.rest('GET', '/v1/renders?status=Cancelled', { token: owner.token });
    expect(cancelled.body.data.map((job: { id: string }) => job.id)).toEqual([cancelledJob]);
    expect(cancelled.body.data[0].step).toBe('Cancelled');
    const completed = await t.rest('GET', '/v1/renders?status=Completed', { token: owner.token });
    expect(completed.status).toBe(200);
    expect(completed.body).toEqual({ data: [], meta: { page: 1, page_size: 20, total: 0, has_more: false } });
  });

  it('answers 400 for a bad status, page or page_size', async () => {
    const status = await t.rest('GET', '/v1/renders?status=Sleeping', { token: owner.token });
    expect(status.status).toBe(400);
    expect(problemPaths(status.body)).toEqual(['status']);
    const big = await t.rest('GET', '/v1/renders?page_size=101', { token: owner.token });
    expect(big.status).toBe(400);
    expect(problemPaths(big.body)).toEqual(['page_size']);
    const zero = await t.rest('GET', '/v1/renders?page=0', { token: owner.token });
    expect(zero.status).toBe(400);
    expect(problemPaths(zero.body)).toEqual(['page']);
    const word = await t.rest('GET', '/v1/renders?page=two', { token: owner.token });
    expect(word.status).toBe(400);
    expect(problemPaths(word.body)).toEqual(['page']);
    const empty = await t.rest('GET', '/v1/renders?page_size=0', { token: owner.token });
    expect(empty.status).toBe(400);
  });

  it("shows users their own jobs only, admins everyone's", async () => {
    const mine = await t.rest('GET', '/v1/renders?page_size=100', { token: other.token });
    expect(mine.body.data.map((job: { id: string }) => job.id)).toEqual([otherJob]);
    const all = await t.rest('GET', '/v1/renders?page_size=100', { token: admin });
    expect(all.status).toBe(200);
    const ids = all.body.data.map((job: { id: string }) => job.id);
    expect(ids).toEqual(expect.arrayContaining([...ownerJobs, otherJob]));
    expect(all.body.meta.total).toBe(await prisma().renderJob.count());
  });

  it('refuses anonymous callers with 401 and service tokens with 403', async () => {
    const anonymous = await t.rest('GET', '/v1/renders');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const service = await t.rest('GET', '/v1/renders', { token: TEST_SERVICE_TOKEN });
    expect(service.status).toBe(403);
    expect(service.body.error.code).toBe('FORBIDDEN');
    const gql = await t.gql(RenderJobsDocument, {});
    expect(gql.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const gqlService = await t.gql(RenderJobsDocument, {}, TEST_SERVICE_TOKEN);
    expect(gqlService.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('walks the GraphQL connection page by page without duplicates', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let pageCount = 0; pageCount < 10; pageCount++) {
      const variables: RenderJobsQueryVariables = { first: 2, after };
      const result = await t.gql(RenderJobsDocument, variables, owner.token);
      expect(result.errors).toBeUndefined();
      const connection: RenderJobsQuery['renderJobs'] = result.data!.renderJobs;
      expect(connection.edges.length).toBeLessThanOrEqual(2);
      seen.push(...connection.edges.map((edge) => edge.node.id));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
      expect(after).not.toBeNull();
    }
    expect(seen).toEqual([...ownerJobs].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('filters the GraphQL connection by status and shows only own jobs', async () => {
    const queued = await t.gql(RenderJobsDocument, { status: 'Queued', first: 100 }, owner.token);
    const queuedIds = queued.data!.renderJobs.edges.map((edge) => edge.node.id);
    expect(queuedIds).toEqual([...ownerJobs].reverse().filter((id) => id !== cancelledJob));
    const cancelled = await t.gql(RenderJobsDocument, { status: 'Cancelled' }, owner.token);
    expect(cancelled.data!.renderJobs.edges.map((edge) => edge.node)).toEqual([
      { id: cancelledJob, step: 'Cancelled', name: 'Listed 1', priceType: 'Cash', paidPriceMinor: expect.anything() },
    ]);
    const none = await t.gql(RenderJobsDocument, { status: 'Rendering' }, owner.token);
    expect(none.data!.renderJobs.edges).toEqual([]);
    const theirs = await t.gql(RenderJobsDocument, {}, other.token);
    expect(theirs.data!.renderJobs.edges.map((edge) => edge.node.id)).toEqual([otherJob]);
    const everyone = await t.gql(RenderJobsDocument, { first: 100 }, admin);
    expect(everyone.data!.renderJobs.edges.map((edge) => edge.node.id)).toEqual(expect.arrayContaining([...ownerJobs, otherJob]));
  });
});

describe('reading one render job', () => {
  let owner: User;
  let stranger: User;
  let jobId: string;

  beforeAll(async () => {
    owner = await funded(1000);
    stranger = await funded(1000);
    jobId = (await submit(owner, { name: 'Detail', duration_sec: 8, frame_rate: 24 })).id;
  });

  it('answers the RenderJobDetail shape over REST', async () => {
    const response = await t.rest('GET', `/v1/renders/${jobId}`, { token: owner.token });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      id: jobId,
      name: 'Detail',
      step: 'Queued',
      frame_rate: 24,
      duration_sec: 8,
      paid_price_minor: 50,
      export_id: null,
      retry_count: 0,
      repair_attempts: 0,
      export: null,
    });
    // 192 frames and no node online: two chunks, covering every frame once, waiting for nodes.
    expect(response.body.frame_jobs).toEqual([
      { id: expect.any(String), start_frame: 0, end_frame: 95, order_value: 0, status: 'Pending', frames_rendered: 0, frames_validated: 0, attempt: 0, last_error: null },
      { id: expect.any(String), start_frame: 96, end_frame: 191, order_value: 1, status: 'Pending', frames_rendered: 0, frames_validated: 0, attempt: 0, last_error: null },
    ]);
    const frames = await t.app.services.db.prisma.frame.findMany({ where: { renderJobId: jobId }, orderBy: { frameNumber: 'asc' } });
    expect(frames.map((frame) => frame.frameNumber)).toEqual(Array.from({ length: 192 }, (_, n) => n));
    expect(frames.every((frame) => !frame.rendered && !frame.validated)).toBe(true);
    expect(frames[96]?.frameJobId).toBe(response.body.frame_jobs[1].id);
  });

  it('answers the job over GraphQL', async () => {
    const result = await t.gql(RenderJobDocument, { id: jobId }, owner.token);
    expect(result.errors).toBeUndefined();
    expect(result.data?.renderJob).toMatchObject({
      id: jobId,
      userId: owner.id,
      name: 'Detail',
      step: 'Queued',
      frameRate: 24,
      durationSec: 8,
      totalFrames: 192,
      priceType: 'Cash',
      priorityQueue: 'Priority',
    });
    expect(result.data?.renderJob.frameJobs.map((chunk) => [chunk.startFrame, chunk.endFrame])).toEqual([
      [0, 95],
      [96, 191],
    ]);
    expect(Number(result.data?.renderJob.paidPriceMinor)).toBe(50);
  });

  it("hides another user's job as 404 (REST) and NOT_FOUND (GraphQL), and shows it to admins", async () => {
    const rest = await t.rest('GET', `/v1/renders/${jobId}`, { token: stranger.token });
    expect(rest.status).toBe(404);
    expect(rest.body.error.code).toBe('NOT_FOUND');
    const gql = await t.gql(RenderJobDocument, { id: jobId }, stranger.token);
    expect(gql.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(gql.data?.renderJob ?? null).toBeNull();
    const adminRest = await t.rest('GET', `/v1/renders/${jobId}`, { token: admin });
    expect(adminRest.status).toBe(200);
    expect(adminRest.body.id).toBe(jobId);
    const adminGql = await t.gql(RenderJobDocument, { id: jobId }, admin);
    expect(adminGql.data?.renderJob.userId).toBe(owner.id);
  });

  it('answers 400 for a non-uuid id, 404 for an unknown one, 401/403 for the wrong callers', async () => {
    const notUuid = await t.rest('GET', '/v1/renders/not-a-uuid', { token: owner.token });
    expect(notUuid.status).toBe(400);
    expect(notUuid.body.error.code).toBe('VALIDATION_FAILED');
    const unknown = await t.rest('GET', `/v1/renders/${randomUUID()}`, { token: owner.token });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    const gqlUnknown = await t.gql(RenderJobDocument, { id: randomUUID() }, owner.token);
    expect(gqlUnknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await t.rest('GET', `/v1/renders/${jobId}`)).status).toBe(401);
    expect((await t.rest('GET', `/v1/renders/${jobId}`, { token: TEST_SERVICE_TOKEN })).status).toBe(403);
  });
});
