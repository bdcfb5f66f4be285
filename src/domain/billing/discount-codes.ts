// Discount codes, managed by admins: a percentage or a fixed amount off, with an optional expiry
// and an optional limit on uses. A submission checks its code before pricing and redeems it in
// the transaction that charges, both by the one rule of usableWhere.
import { z } from 'zod';
import type { Prisma, PrismaClient } from '../../generated/prisma/client.ts';
import type { Actor } from '../actor.ts';
import { isUniqueViolation, type Tx } from '../db.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { requireAdmin } from '../guards.ts';
import { parseInput } from '../validation.ts';
import type { Discount } from './pricing.ts';

export const createDiscountCodeSchema = z
  .strictObject({
    code: z.string().trim().regex(/^[A-Za-z0-9_-]{3,64}$/, 'must be 3 to 64 letters, digits, dashes or underscores'),
    percentOff: z.number().int().min(1).max(100).optional(),
    amountOffMinor: z.coerce.bigint().min(1n).max(100_000_00n).optional(),
    expiresAt: z.coerce.date().optional(),
    maxUses: z.number().int().min(1).max(10_000_000).optional(),
  })
  .refine((input) => (input.percentOff === undefined) !== (input.amountOffMinor === undefined), {
    path: ['percentOff'],
    message: 'give exactly one of percentOff and amountOffMinor',
  });
export type CreateDiscountCodeInput = z.input<typeof createDiscountCodeSchema>;

/** A code is usable while it is active, before its expiry and under its limit of uses. */
function usableWhere(db: PrismaClient | Tx, code: string, now: Date): Prisma.DiscountCodeWhereInput {
  return {
    code,
    active: true,
    AND: [
      { OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
      { OR: [{ maxUses: null }, { usedCount: { lt: db.discountCode.fields.maxUses } }] },
    ],
  };
}

const unusable = () => new ValidationError('Invalid discount code', [{ path: 'discountCode', message: 'is unknown, expired or used up' }]);

/** The code, if it is usable now: what a submission is priced with. */
export async function usableDiscount(db: PrismaClient | Tx, code: string, now: Date): Promise<Discount> {
  const discount = await db.discountCode.findFirst({ where: usableWhere(db, code, now) });
  if (!discount) throw unusable();
  return discount;
}

/** Counts a use in the caller's transaction, atomically, so concurrent submits cannot exceed a code's limit. */
export async function redeemDiscount(tx: Tx, code: string, now: Date): Promise<void> {
  const { count } = await tx.discountCode.updateMany({ where: usableWhere(tx, code, now), data: { usedCount: { increment: 1 } } });
  if (count === 0) throw unusable();
}

export function createDiscountCodeService({ prisma }: { prisma: PrismaClient }) {
  return {
    async list(actor: Actor) {
      requireAdmin(actor);
      return prisma.discountCode.findMany({ orderBy: { createdAt: 'desc' } });
    },

    async create(actor: Actor, input: CreateDiscountCodeInput) {
      requireAdmin(actor);
      const data = parseInput(createDiscountCodeSchema, input, 'discount code');
      try {
        return await prisma.discountCode.create({ data });
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError(`Discount code ${data.code} exists already`, { code: data.code });
        throw error;
      }
    },

    /** Codes are deactivated rather than deleted: jobs keep naming the code they used. */
    async deactivate(actor: Actor, code: string) {
      requireAdmin(actor);
      const existing = await prisma.discountCode.findUnique({ where: { code } });
      if (!existing) throw new NotFoundError('discount code', code);
      return prisma.discountCode.update({ where: { code }, data: { active: false } });
    },
  };
}

export type DiscountCodeService = ReturnType<typeof createDiscountCodeService>;
