// The billing ledger: one wallet per user and an append-only list of entries. Every change is
// written once per idempotency key, inside the caller's transaction, so a charge or refund lands
// together with the state change it pays for, or not at all.
import { z } from 'zod';
import type { LedgerEntry, LedgerEntryKind, PrismaClient } from '../../generated/prisma/client.ts';
import { isUniqueViolation, type Tx } from '../db.ts';
import type { Actor } from '../actor.ts';
import { PaymentRequiredError } from '../errors.ts';
import { requireAdmin, requireUser } from '../guards.ts';
import { parseInput, uuid } from '../validation.ts';



export interface LedgerChange {
  userId: string;
  amountMinor: bigint;
  idempotencyKey: string;
  description: string;
  renderJobId?: string;
  exportId?: string;
}

async function ensureWallet(tx: Tx, userId: string): Promise<void> {
  // ON CONFLICT rather than an upsert: two first payments of one user may arrive together.
  await tx.$executeRaw`INSERT INTO wallets (user_id, updated_at) VALUES (${userId}::uuid, now()) ON CONFLICT (user_id) DO NOTHING`;
}

async function append(tx: Tx, kind: LedgerEntryKind, change: LedgerChange, signedAmount: bigint): Promise<LedgerEntry> {
  const existing = await tx.ledgerEntry.findUnique({ where: { idempotencyKey: change.idempotencyKey } });
  if (existing) return existing;
  await ensureWallet(tx, change.userId);
  if (signedAmount < 0n) {
    const { count } = await tx.wallet.updateMany({
      where: { userId: change.userId, balanceMinor: { gte: -signedAmount } },
      data: { balanceMinor: { increment: signedAmount } },
    });
    if (count === 0) {
      const wallet = await tx.wallet.findUniqueOrThrow({ where: { userId: change.userId } });
      throw new PaymentRequiredError(-signedAmount, wallet.balanceMinor);
    }
  } else {
    await tx.wallet.update({ where: { userId: change.userId }, data: { balanceMinor: { increment: signedAmount } } });
  }
  const wallet = await tx.wallet.findUniqueOrThrow({ where: { userId: change.userId } });
  return tx.ledgerEntry.create({
    data: {
      userId: change.userId,
      kind,
      amountMinor: signedAmount,
      balanceAfterMinor: wallet.balanceMinor,
      idempotencyKey: change.idempotencyKey,
      description: change.description,
      renderJobId: change.renderJobId,
      exportId: change.exportId,
    },
  });
}

/** Takes money; PaymentRequiredError when the balance is short. Zero amounts write nothing. */
export async function charge(tx: Tx, change: LedgerChange): Promise<LedgerEntry | null> {
  if (change.amountMinor === 0n) return null;
  return append(tx, 'Charge', change, -change.amountMinor);
}

export async function refund(tx: Tx, change: LedgerChange): Promise<LedgerEntry | null> {
  if (change.amountMinor === 0n) return null;
  return append(tx, 'Refund', change, change.amountMinor);
}

export const creditSchema = z.strictObject({
  userId: uuid,
  // GraphQL's BigInt scalar hands over small values as numbers.
  amountMinor: z.coerce.bigint().min(1n).max(100_000_000_00n),
  idempotencyKey: z.string().trim().min(8).max(200),
  description: z.string().trim().max(500).default('Admin credit'),
});
export type CreditInput = z.input<typeof creditSchema>;

export function createBillingService({ prisma }: { prisma: PrismaClient }) {
  return {
    /** An admin tops up a wallet; repeating the same idempotency key credits once. */
    async credit(actor: Actor, input: CreditInput): Promise<LedgerEntry> {
      requireAdmin(actor);
      const data = parseInput(creditSchema, input, 'credit');
      try {
        return await prisma.$transaction((tx) => append(tx, 'Credit', data, data.amountMinor));
      } catch (error) {
        // The same key arrived twice at once: the other request wrote the entry, which is the answer.
        if (isUniqueViolation(error)) {
          const existing = await prisma.ledgerEntry.findUnique({ where: { idempotencyKey: data.idempotencyKey } });
          if (existing) return existing;
        }
        throw error;
      }
    },

    async wallet(actor: Actor) {
      const user = requireUser(actor);
      const wallet = await prisma.wallet.findUnique({ where: { userId: user.userId } });
      return wallet ?? { userId: user.userId, balanceMinor: 0n, currency: 'USD', updatedAt: new Date(0) };
    },
  };
}

export type BillingService = ReturnType<typeof createBillingService>;
