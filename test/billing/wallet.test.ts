// The wallet: empty until credited, credited by admins through creditWallet exactly once per
// idempotency key (also when the same key or two credits arrive together), and read by its owner.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreditWalletDocument } from '../generated/graphql.ts';
import { startTestApp, TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';
import { walletOf } from '../support/billing.ts';

let t: TestApp;
let admin: string;
const prisma = () => t.app.services.db.prisma;

/** Credits through the admin GraphQL mutation, as the playground does. */
async function credit(userId: string, amountMinor: number, idempotencyKey = `test-credit-${randomUUID()}`) {
  const result = await t.gql(CreditWalletDocument, { input: { userId, amountMinor, idempotencyKey } }, admin);
  expect(result.errors).toBeUndefined();
  expect(result.data?.creditWallet, JSON.stringify(result.data)).toMatchObject({ __typename: 'LedgerEntry' });
  return result.data!.creditWallet;
}

beforeAll(async () => {
  t = await startTestApp();
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t?.close());

describe('the wallet', () => {
  it('is empty for a user nobody has credited', async () => {
    const user = await t.user();
    expect(await walletOf(t, user.token)).toEqual({ balance: 0, entries: [] });
  });

  it('is credited by an admin through creditWallet', async () => {
    const user = await t.user();
    const entry = await credit(user.id, 1234);
    expect(entry).toMatchObject({ __typename: 'LedgerEntry' });
    if (entry.__typename !== 'LedgerEntry') return;
    expect(Number(entry.amountMinor)).toBe(1234);
    expect(Number(entry.balanceAfterMinor)).toBe(1234);
    expect(await walletOf(t, user.token)).toEqual({
      balance: 1234,
      entries: [{ kind: 'Credit', amountMinor: 1234, balanceAfterMinor: 1234, renderJobId: null }],
    });
  });

  it('credits once for a repeated idempotency key', async () => {
    const user = await t.user();
    const key = `credit-once-${randomUUID()}`;
    const first = await credit(user.id, 500, key);
    const second = await credit(user.id, 500, key);
    expect(second).toEqual(first);
    const state = await walletOf(t, user.token);
    expect(state.balance).toBe(500);
    expect(state.entries).toHaveLength(1);
  });

  it('credits once, and answers both callers, when the same key arrives twice at the same time', async () => {
    const user = await t.user();
    await credit(user.id, 100);
    const key = `credit-race-${randomUUID()}`;
    const input = { userId: user.id, amountMinor: 700, idempotencyKey: key };
    const results = await Promise.all([t.gql(CreditWalletDocument, { input }, admin), t.gql(CreditWalletDocument, { input }, admin)]);
    for (const result of results) {
      expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
      expect(result.data?.creditWallet.__typename).toBe('LedgerEntry');
    }
    expect((await walletOf(t, user.token)).balance).toBe(800);
  });

  it('lands both of two different credits arriving together for a user without a wallet', async () => {
    const user = await t.user();
    const inputs = [300, 400].map((amountMinor) => ({ userId: user.id, amountMinor, idempotencyKey: `first-credits-${randomUUID()}` }));
    const results = await Promise.all(inputs.map((input) => t.gql(CreditWalletDocument, { input }, admin)));
    for (const result of results) {
      expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
      expect(result.data?.creditWallet.__typename).toBe('LedgerEntry');
    }
    expect((await walletOf(t, user.token)).balance).toBe(700);
  });

  it('refuses non-admins and bad input without crediting anything', async () => {
    const user = await t.user();
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
    expect(await walletOf(t, user.token)).toEqual({ balance: 0, entries: [] });
    expect(await prisma().ledgerEntry.count({ where: { userId: user.id } })).toBe(0);
  });
});
