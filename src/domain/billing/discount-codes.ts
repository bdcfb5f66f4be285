// Discount codes, managed by admins: a percentage or a fixed amount off, with an optional expiry
// and an optional limit on uses. Submissions redeem them (see job-service.ts).
import { z } from 'zod';
import type { PrismaClient } from '../../generated/prisma/client.ts';
import type { Actor } from '../actor.ts';
import { isUniqueViolation } from '../db.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { requireAdmin } from '../guards.ts';
import { parseInput } from '../validation.ts';

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
