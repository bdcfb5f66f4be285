// Discount codes: an admin creates percentage and amount codes through GraphQL, with an expiry
// and a limit on uses, and deactivates them; submissions redeem them, refusing expired, inactive,
// used-up and unknown codes and codes on free renders, and a code's last use goes to one of two
// submissions arriving together.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateDiscountCodeDocument,
  DeactivateDiscountCodeDocument,
  DiscountCodesDocument,
  SubmitRenderJobDocument,
} from '../generated/graphql.ts';
import { problemPaths, startTestApp, TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';
import { discountCode, newCode, walletOf } from '../support/billing.ts';
import { balanceOf, renderBody, submissionStateOf, submitRender } from '../support/jobs.ts';

let t: TestApp;
let admin: string;
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t?.close());

describe('discount codes (admin GraphQL)', () => {
  it('creates percentage and amount codes that submissions redeem', async () => {
    const percent = newCode('PCT');
    const created = await t.gql(CreateDiscountCodeDocument, { input: { code: percent, percentOff: 25, maxUses: 3 } }, admin);
    expect(created.errors).toBeUndefined();
    expect(created.data?.createDiscountCode).toMatchObject({
      __typename: 'DiscountCode',
      code: percent,
      percentOff: 25,
      amountOffMinor: null,
      expiresAt: null,
      maxUses: 3,
      usedCount: 0,
      active: true,
    });
    const amount = newCode('AMT');
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const byAmount = await t.gql(CreateDiscountCodeDocument, { input: { code: amount, amountOffMinor: 30, expiresAt } }, admin);
    expect(byAmount.data?.createDiscountCode).toMatchObject({ __typename: 'DiscountCode', percentOff: null, expiresAt });
    if (byAmount.data?.createDiscountCode.__typename === 'DiscountCode') {
      expect(Number(byAmount.data.createDiscountCode.amountOffMinor)).toBe(30);
    }

    const user = await t.user(1000);
    // 5 x 40 = 200: 25% off = 150; 30 off = 170.
    expect((await submitRender(t, user.token, { duration_sec: 40, discount_code: percent })).paid_price_minor).toBe(150);
    expect((await submitRender(t, user.token, { duration_sec: 40, discount_code: amount })).paid_price_minor).toBe(170);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code: percent } })).usedCount).toBe(1);

    const list = await t.gql(DiscountCodesDocument, {}, admin);
    expect(list.data?.discountCodes.map((code) => code.code)).toEqual(expect.arrayContaining([percent, amount]));
  });

  it('refuses both or neither of percentOff and amountOffMinor, and bad values, creating nothing', async () => {
    const before = await prisma().discountCode.count();
    const both = await t.gql(CreateDiscountCodeDocument, { input: { code: newCode('BOTH'), percentOff: 10, amountOffMinor: 10 } }, admin);
    expect(both.data?.createDiscountCode).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    if (both.data?.createDiscountCode.__typename === 'ValidationError') {
      expect(both.data.createDiscountCode.problems.map((problem) => problem.path)).toEqual(['percentOff']);
    }
    const neither = await t.gql(CreateDiscountCodeDocument, { input: { code: newCode('NONE') } }, admin);
    expect(neither.data?.createDiscountCode.__typename).toBe('ValidationError');
    const tooMuch = await t.gql(CreateDiscountCodeDocument, { input: { code: newCode('BIG'), percentOff: 101 } }, admin);
    expect(tooMuch.data?.createDiscountCode.__typename).toBe('ValidationError');
    const badCode = await t.gql(CreateDiscountCodeDocument, { input: { code: 'no spaces allowed', percentOff: 10 } }, admin);
    expect(badCode.data?.createDiscountCode.__typename).toBe('ValidationError');
    expect(await prisma().discountCode.count()).toBe(before);
  });

  it('answers ConflictError for a duplicate code', async () => {
    const code = newCode('DUP');
    expect((await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 10 } }, admin)).data?.createDiscountCode.__typename).toBe(
      'DiscountCode',
    );
    const again = await t.gql(CreateDiscountCodeDocument, { input: { code, amountOffMinor: 5 } }, admin);
    expect(again.errors).toBeUndefined();
    expect(again.data?.createDiscountCode).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    const stored = await prisma().discountCode.findUniqueOrThrow({ where: { code } });
    expect(stored).toMatchObject({ percentOff: 10, amountOffMinor: null });
  });

  it('deactivates a code, which submissions then refuse', async () => {
    const code = newCode('STOP');
    await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 10 } }, admin);
    const result = await t.gql(DeactivateDiscountCodeDocument, { code }, admin);
    expect(result.data?.deactivateDiscountCode).toEqual({ __typename: 'DiscountCode', code, active: false });
    const user = await t.user(1000);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ discount_code: code }) });
    expect(response.status).toBe(400);
    expect(problemPaths(response.body)).toEqual(['discount_code']);
    expect(await balanceOf(t, user.id)).toBe(1000);
    const unknown = await t.gql(DeactivateDiscountCodeDocument, { code: newCode('GHOST') }, admin);
    expect(unknown.data?.deactivateDiscountCode).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  it('refuses non-admins with FORBIDDEN and anonymous callers with UNAUTHENTICATED', async () => {
    const user = await t.user();
    const code = newCode('MINE');
    const create = await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 90 } }, user.token);
    expect(create.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await prisma().discountCode.findUnique({ where: { code } })).toBeNull();
    const existing = newCode('KEEP');
    await t.gql(CreateDiscountCodeDocument, { input: { code: existing, percentOff: 10 } }, admin);
    const deactivate = await t.gql(DeactivateDiscountCodeDocument, { code: existing }, user.token);
    expect(deactivate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code: existing } })).active).toBe(true);
    const list = await t.gql(DiscountCodesDocument, {}, user.token);
    expect(list.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const service = await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 90 } }, TEST_SERVICE_TOKEN);
    expect(service.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 90 } });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await prisma().discountCode.findUnique({ where: { code } })).toBeNull();
  });
});

describe('redeeming discount codes at submission', () => {
  it('takes a percentage off the charge and counts a use', async () => {
    const user = await t.user(1000);
    const code = await discountCode(t, { code: newCode('PCT'), percentOff: 20 });
    // 5 x 40 = 200, 20% off = 160.
    const job = await submitRender(t, user.token, { duration_sec: 40, discount_code: code });
    expect(job.paid_price_minor).toBe(160);
    expect((await walletOf(t, user.token)).balance).toBe(840);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(1);
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).discountCode).toBe(code);
    const amount = await discountCode(t, { code: newCode('AMT'), amountOffMinor: 30 });
    const second = await submitRender(t, user.token, { duration_sec: 40, discount_code: amount });
    expect(second.paid_price_minor).toBe(170);
  });

  it('refuses expired, inactive, used-up and unknown codes naming discount_code, charging nothing', async () => {
    const user = await t.user(1000);
    const expired = await discountCode(t, { code: newCode('OLD'), percentOff: 50, expiresAt: new Date(Date.now() - 60_000).toISOString() });
    const inactive = await discountCode(t, { code: newCode('OFF'), percentOff: 50, active: false });
    const usedUp = await discountCode(t, { code: newCode('USED'), percentOff: 50, maxUses: 2, used: 2 });
    const before = await submissionStateOf(t, user.id);
    for (const code of [expired, inactive, usedUp, newCode('NOPE')]) {
      const response = await t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ discount_code: code }) });
      expect(response.status, code).toBe(400);
      expect(problemPaths(response.body)).toEqual(['discount_code']);
    }
    const gql = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'High', resolution: 'HD', durationSec: 10, discountCode: expired } },
      user.token,
    );
    expect(gql.data?.submitRenderJob.__typename).toBe('ValidationError');
    expect(await submissionStateOf(t, user.id)).toEqual(before);
    expect((await walletOf(t, user.token)).balance).toBe(1000);
  });

  it('refuses a discount on a Free render', async () => {
    const user = await t.user(1000);
    const code = await discountCode(t, { code: newCode('FREE'), percentOff: 10 });
    const before = await submissionStateOf(t, user.id);
    const response = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: renderBody({ price_type: 'Free', quality: 'Low', discount_code: code }),
    });
    expect(response.status).toBe(400);
    expect(problemPaths(response.body)).toEqual(['discount_code']);
    expect(await submissionStateOf(t, user.id)).toEqual(before);
  });

  it('lets exactly one of two concurrent submits use the last use of a code', async () => {
    const first = await t.user(1000);
    const second = await t.user(1000);
    const code = await discountCode(t, { code: newCode('LAST'), percentOff: 50, maxUses: 1 });
    const answers = await Promise.all(
      [first, second].map((user) =>
        t.rest('POST', '/v1/renders', { token: user.token, body: renderBody({ duration_sec: 40, discount_code: code }) }),
      ),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 400]);
    const loser = answers.find((answer) => answer.status === 400)!;
    expect(problemPaths(loser.body)).toEqual(['discount_code']);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(1);
    expect(await prisma().renderJob.count({ where: { discountCode: code } })).toBe(1);
    const balances = [(await walletOf(t, first.token)).balance, (await walletOf(t, second.token)).balance].sort((a, b) => a - b);
    expect(balances).toEqual([900, 1000]);
  });
});
