import { ValidationError } from '../domain/errors.ts';
import { builder } from './builder.ts';
import { LedgerEntryKindEnum } from './enums.ts';

const LedgerEntryRef = builder.prismaObject('LedgerEntry', {
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    kind: t.expose('kind', { type: LedgerEntryKindEnum }),
    amountMinor: t.expose('amountMinor', { type: 'BigInt', description: 'Signed: charges are negative.' }),
    balanceAfterMinor: t.expose('balanceAfterMinor', { type: 'BigInt' }),
    description: t.exposeString('description'),
    renderJobId: t.expose('renderJobId', { type: 'UUID', nullable: true }),
    exportId: t.expose('exportId', { type: 'UUID', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.prismaObject('Wallet', {
  fields: (t) => ({
    userId: t.expose('userId', { type: 'UUID' }),
    balanceMinor: t.expose('balanceMinor', { type: 'BigInt' }),
    currency: t.exposeString('currency'),
    entries: t.relatedConnection('entries', { cursor: 'id', query: { orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] } }),
  }),
});

builder.queryFields((t) => ({
  wallet: t.prismaField({
    type: 'Wallet',
    description: "The caller's balance and ledger entries.",
    resolve: async (query, _root, _args, ctx) => {
      const wallet = await ctx.services.billing.wallet(ctx.actor);
      return (
        (await ctx.prisma.wallet.findUnique({ ...query, where: { userId: wallet.userId } })) ??
        // Nobody has paid or been credited yet: an empty wallet, not an error.
        { ...wallet, entries: [] }
      );
    },
  }),
}));

const CreditWalletInput = builder.inputType('CreditWalletInput', {
  fields: (t) => ({
    userId: t.field({ type: 'UUID', required: true }),
    amountMinor: t.field({ type: 'BigInt', required: true }),
    idempotencyKey: t.string({ required: true, description: 'Repeating a key credits once.' }),
    description: t.string(),
  }),
});

builder.mutationFields((t) => ({
  creditWallet: t.prismaField({
    type: LedgerEntryRef,
    description: "Adds money to a user's wallet (admin).",
    args: { input: t.arg({ type: CreditWalletInput, required: true }) },
    errors: { types: [ValidationError] },
    resolve: async (query, _root, { input }, ctx) => {
      const entry = await ctx.services.billing.credit(ctx.actor, {
        ...input,
        description: input.description ?? undefined,
      });
      return ctx.prisma.ledgerEntry.findUniqueOrThrow({ ...query, where: { id: entry.id } });
    },
  }),
}));
