import { NotFoundError, PaymentRequiredError, ValidationError } from '../domain/errors.ts';
import { DEFAULT_DOWNLOAD_FORMAT, type ExportExtension, NEWEST_EXPORTS_FIRST } from '../domain/exports/export-service.ts';
import type { PresignedUrl } from '../ports.ts';
import { builder } from './builder.ts';
import { entityLoader } from './entity-loaders.ts';
import { QualityEnum } from './enums.ts';

builder.prismaObject('ExportFile', {
  description: 'An additional file of an export, in another format.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    thumbnail: t.exposeString('thumbnail', { description: 'Object key of its thumbnail; empty when there is none.' }),
    path: t.exposeString('path', { description: 'Object key of the file.' }),
    sizeBytes: t.expose('sizeBytes', { type: 'BigInt' }),
    fileType: t.exposeString('fileType', { description: 'Its format, as `exportDownloadUrl` takes it.' }),
  }),
});

export const ExportRef = builder.prismaObject('Export', {
  description: 'The downloadable output of a render, kept until its auto-delete date.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    userId: t.expose('userId', { type: 'UUID' }),
    renderJobId: t.expose('renderJobId', { type: 'UUID', nullable: true }),
    savedProjectId: t.expose('savedProjectId', { type: 'UUID' }),
    path: t.exposeString('path', { description: 'Object key of the main file.' }),
    image: t.exposeString('image', { description: 'Object key of its image; empty when there is none.' }),
    sizeBytes: t.expose('sizeBytes', { type: 'BigInt' }),
    durationSec: t.exposeFloat('durationSec'),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    fileExtension: t.exposeString('fileExtension'),
    fileType: t.exposeString('fileType'),
    renderQuality: t.expose('renderQuality', { type: QualityEnum }),
    createType: t.exposeString('createType'),
    produceDate: t.expose('produceDate', { type: 'DateTime' }),
    autoDeleteDate: t.expose('autoDeleteDate', {
      type: 'DateTime',
      description: 'When the export and its files are deleted, unless extended.',
    }),
    files: t.relation('files', { query: { orderBy: { fileType: 'asc' } } }),
  }),
});

builder.asEntity(ExportRef, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: entityLoader('export', (ctx, ids, query) => ctx.services.exports.getMany(ctx.actor, ids, query), 'Export'),
});

const ExportDownloadUrlRef = builder.objectRef<PresignedUrl>('ExportDownloadUrl').implement({
  description: 'A short-lived URL that downloads one file of an export without other credentials.',
  fields: (t) => ({
    url: t.exposeString('url'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  exports: t.prismaConnection({
    type: ExportRef,
    cursor: 'id',
    description: "The caller's exports, newest first (admins and services see everyone's).",
    defaultSize: 20,
    maxSize: 100,
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.export.findMany({
        ...query,
        where: ctx.services.exports.visibleTo(ctx.actor),
        orderBy: NEWEST_EXPORTS_FIRST,
      }),
  }),
  export: t.prismaField({
    type: ExportRef,
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.exports.get(ctx.actor, args.id, query),
  }),
  // A query, not a mutation: signing a URL changes nothing and is safe to repeat. Each answer
  // carries its expiry, so clients fetch a new one rather than reuse a cached one past it.
  exportDownloadUrl: t.field({
    type: ExportDownloadUrlRef,
    description:
      'A download URL for one format of an export, valid for a few minutes (see expiresAt); the file saves as `<job name>-<short id>.<format>`. NOT_FOUND when the export has no file in that format.',
    args: {
      id: t.arg({ type: 'UUID', required: true }),
      format: t.arg.string({ defaultValue: DEFAULT_DOWNLOAD_FORMAT, description: 'A file type of the export, or its main file extension.' }),
    },
    resolve: (_root, args, ctx) => ctx.services.exports.downloadUrl(ctx.actor, args.id, args.format ?? undefined),
  }),
}));

const DeletedExportRef = builder.objectRef<{ id: string }>('DeletedExport').implement({
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
  }),
});

const ExportExtensionRef = builder.objectRef<ExportExtension>('ExportExtension').implement({
  fields: (t) => ({
    export: t.prismaField({
      type: ExportRef,
      resolve: (query, parent, _args, ctx) => ctx.prisma.export.findUniqueOrThrow({ ...query, where: { id: parent.exportId } }),
    }),
    newAutoDeleteDate: t.expose('newAutoDeleteDate', { type: 'DateTime' }),
    chargedMinor: t.expose('chargedMinor', { type: 'BigInt', description: 'What the wallet was charged.' }),
  }),
});

builder.mutationFields((t) => ({
  deleteExport: t.field({
    type: DeletedExportRef,
    description: 'Deletes the export and its files. An export already deleted is not found.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    errors: { types: [ValidationError, NotFoundError] },
    resolve: async (_root, args, ctx) => {
      await ctx.services.exports.delete(ctx.actor, args.id);
      return { id: args.id };
    },
  }),
  extendExport: t.field({
    type: ExportExtensionRef,
    description: 'Keeps the export `days` (1 to 365) longer and charges the wallet for the storage.',
    args: {
      id: t.arg({ type: 'UUID', required: true }),
      days: t.arg.int({ required: true }),
    },
    errors: { types: [ValidationError, NotFoundError, PaymentRequiredError] },
    resolve: (_root, args, ctx) => ctx.services.exports.extend(ctx.actor, args.id, { days: args.days }),
  }),
}));
