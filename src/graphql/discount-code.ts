import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.ts';
import { builder } from './builder.ts';

const DiscountCodeRef = builder.prismaObject('DiscountCode', {
  description: 'A code that takes a percentage or an amount off Cash, Snapshot and Reseller renders (admin).',
  fields: (t) => ({
    code: t.exposeString('code'),
    percentOff: t.exposeInt('percentOff', { nullable: true }),
    amountOffMinor: t.expose('amountOffMinor', { type: 'BigInt', nullable: true }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    maxUses: t.exposeInt('maxUses', { nullable: true }),
    usedCount: t.exposeInt('usedCount'),
    active: t.exposeBoolean('active'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  discountCodes: t.field({
    type: [DiscountCodeRef],
    description: 'Every discount code, newest first (admin).',
    resolve: (_root, _args, ctx) => ctx.services.discountCodes.list(ctx.actor),
  }),
}));

const CreateDiscountCodeInput = builder.inputType('CreateDiscountCodeInput', {
  fields: (t) => ({
    code: t.string({ required: true }),
    percentOff: t.int({ description: 'Give this or amountOffMinor.' }),
    amountOffMinor: t.field({ type: 'BigInt' }),
    expiresAt: t.field({ type: 'DateTime' }),
    maxUses: t.int(),
  }),
});

builder.mutationFields((t) => ({
  createDiscountCode: t.field({
    type: DiscountCodeRef,
    description: 'Creates a discount code (admin).',
    args: { input: t.arg({ type: CreateDiscountCodeInput, required: true }) },
    errors: { types: [ValidationError, ConflictError] },
    resolve: (_root, { input }, ctx) =>
      ctx.services.discountCodes.create(ctx.actor, {
        code: input.code,
        percentOff: input.percentOff ?? undefined,
        amountOffMinor: input.amountOffMinor ?? undefined,
        expiresAt: input.expiresAt ?? undefined,
        maxUses: input.maxUses ?? undefined,
      }),
  }),
  deactivateDiscountCode: t.field({
    type: DiscountCodeRef,
    description: 'Stops a discount code from being redeemed (admin).',
    args: { code: t.arg.string({ required: true }) },
    errors: { types: [NotFoundError] },
    resolve: (_root, args, ctx) => ctx.services.discountCodes.deactivate(ctx.actor, args.code),
  }),
}));
