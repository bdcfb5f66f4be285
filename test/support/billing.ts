// Money through the doors users and admins have: a wallet as its owner reads it over GraphQL, and
// discount codes as an admin creates, deactivates and users redeem them.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import {
  CreateDiscountCodeDocument,
  type CreateDiscountCodeMutationVariables,
  DeactivateDiscountCodeDocument,
  WalletDocument,
} from '../generated/graphql.ts';
import type { ServiceClient, TestApp } from './app.ts';
import { renderBody } from './jobs.ts';

/** The caller's wallet over GraphQL: its balance and its latest entries. */
export async function walletOf(client: ServiceClient, token: string) {
  const result = await client.gql(WalletDocument, {}, token);
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

/** A code that no test has used yet. */
export const newCode = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

type DiscountCodeInput = Omit<CreateDiscountCodeMutationVariables['input'], 'code'> & { code?: string };

/**
 * A discount code created by an admin through createDiscountCode (an expiry in the past is
 * allowed: the code is then expired); `active: false` deactivates it after, `used` redeems it that
 * many times with submissions of a user of its own. Answers the code.
 */
export async function discountCode(t: TestApp, { active = true, used = 0, ...input }: DiscountCodeInput & { active?: boolean; used?: number }): Promise<string> {
  const code = input.code ?? newCode('CODE');
  const admin = await t.token(randomUUID(), { admin: true });
  const created = await t.gql(CreateDiscountCodeDocument, { input: { ...input, code } }, admin);
  expect(created.data?.createDiscountCode, JSON.stringify(created)).toMatchObject({ __typename: 'DiscountCode', code });
  if (used > 0) {
    const redeemer = await t.user(100_000);
    for (let use = 0; use < used; use++) {
      const redeemed = await t.rest('POST', '/v1/renders', { token: redeemer.token, body: renderBody({ discount_code: code }) });
      expect(redeemed.status, JSON.stringify(redeemed.body)).toBe(201);
    }
  }
  if (!active) {
    const deactivated = await t.gql(DeactivateDiscountCodeDocument, { code }, admin);
    expect(deactivated.data?.deactivateDiscountCode).toMatchObject({ __typename: 'DiscountCode', active: false });
  }
  return code;
}
