import { ForbiddenError, NotFoundError, PaymentRequiredError, ValidationError } from '../domain/errors.ts';
import { builder } from './builder.ts';
import { FrameJobStatusEnum, JobStepEnum, PriceTypeEnum, PriorityQueueEnum, QualityEnum, ResolutionEnum } from './enums.ts';
import { withoutNulls } from './inputs.ts';
import { RenderNodeRef } from './render-node.ts';

export const FrameJobRef = builder.prismaObject('FrameJob', {
  description: 'A chunk of consecutive frames of a render job, rendered by one node at a time.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    renderJobId: t.expose('renderJobId', { type: 'UUID' }),
    nodeId: t.expose('nodeId', { type: 'UUID', nullable: true }),
    node: t.field({
      type: RenderNodeRef,
      nullable: true,
      description: 'The node rendering this chunk; null for callers who are not admins.',
      select: (_args, _ctx, nestedSelection) => ({ node: nestedSelection(true) }),
      resolve: (frameJob, _args, ctx) => (ctx.actor.kind === 'user' && ctx.actor.isAdmin ? frameJob.node : null),
    }),
    startFrame: t.exposeInt('startFrame'),
    endFrame: t.exposeInt('endFrame'),
    orderValue: t.exposeInt('orderValue'),
    status: t.expose('status', { type: FrameJobStatusEnum }),
    framesRendered: t.exposeInt('framesRendered'),
    framesValidated: t.exposeInt('framesValidated'),
    attempt: t.exposeInt('attempt'),
    lastError: t.exposeString('lastError', { nullable: true }),
  }),
});

export const RenderJobRef = builder.prismaObject('RenderJob', {
  description: 'A render of a saved project into a video, from queue to export.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    userId: t.expose('userId', { type: 'UUID' }),
    savedProjectId: t.expose('savedProjectId', { type: 'UUID' }),
    name: t.exposeString('name'),
    step: t.expose('step', { type: JobStepEnum }),
    renderProgress: t.exposeInt('renderProgress', { description: 'Percent of frames rendered, 0 to 100.' }),
    priorityQueue: t.expose('priorityQueue', { type: PriorityQueueEnum }),
    priceType: t.expose('priceType', { type: PriceTypeEnum }),
    paidPriceMinor: t.expose('paidPriceMinor', { type: 'BigInt' }),
    quality: t.expose('quality', { type: QualityEnum }),
    resolution: t.expose('resolution', { type: ResolutionEnum }),
    frameRate: t.exposeInt('frameRate'),
    durationSec: t.exposeFloat('durationSec'),
    totalFrames: t.exposeInt('totalFrames'),
    hasVoiceover: t.exposeBoolean('hasVoiceover'),
    imagePreviewB64: t.exposeString('imagePreviewB64', { nullable: true }),
    failedMessage: t.exposeString('failedMessage', { nullable: true }),
    exportId: t.field({
      type: 'UUID',
      nullable: true,
      select: { export: { select: { id: true } } },
      resolve: (job) => job.export?.id ?? null,
    }),
    retryCount: t.exposeInt('retryCount'),
    repairAttempts: t.exposeInt('repairAttempts'),
    preferredRegion: t.exposeString('preferredRegion', { nullable: true }),
    queuedAt: t.expose('queuedAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    frameJobs: t.relation('frameJobs', { query: { orderBy: { orderValue: 'asc' } } }),
  }),
});

builder.asEntity(RenderJobRef, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: ({ id }, ctx) => ctx.services.jobs.get(ctx.actor, id),
});

builder.asEntity(FrameJobRef, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: async ({ id }, ctx) => {
    const frameJob = await ctx.prisma.frameJob.findUnique({ where: { id }, select: { renderJobId: true } });
    if (!frameJob) throw new NotFoundError('frame job', id);
    await ctx.services.jobs.get(ctx.actor, frameJob.renderJobId);
    return ctx.prisma.frameJob.findUniqueOrThrow({ where: { id } });
  },
});

builder.queryFields((t) => ({
  renderJobs: t.prismaConnection({
    type: RenderJobRef,
    cursor: 'id',
    description: "The caller's render jobs, newest first (admins see everyone's).",
    args: { status: t.arg({ type: JobStepEnum, required: false }) },
    defaultSize: 20,
    maxSize: 100,
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.renderJob.findMany({
        ...query,
        where: ctx.services.jobs.listWhere(ctx.actor, args.status ?? undefined),
        orderBy: [{ queuedAt: 'desc' }, { id: 'desc' }],
      }),
  }),
  renderJob: t.prismaField({
    type: RenderJobRef,
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.jobs.get(ctx.actor, args.id, query),
  }),
}));

const SubmitRenderJobInput = builder.inputType('SubmitRenderJobInput', {
  fields: (t) => ({
    savedProjectId: t.field({ type: 'UUID', required: true }),
    quality: t.field({ type: QualityEnum, required: true }),
    resolution: t.field({ type: ResolutionEnum, required: true }),
    frameRate: t.int({ description: '24, 25, 30 (default) or 60.' }),
    is60Fps: t.boolean(),
    priceType: t.field({ type: PriceTypeEnum, description: 'Cash when omitted.' }),
    discountCode: t.string(),
    supportFlatrender: t.boolean({ description: 'Adds a tip for FlatRender to the charge.' }),
    tellMeWhenDone: t.boolean(),
    preferredRegion: t.string(),
    name: t.string({ description: "Defaults to the saved project's name." }),
    durationSec: t.float({ description: 'Required when the saved project has not been synced to this service.' }),
    hasVoiceover: t.boolean(),
    aepFileMd5: t.string(),
    aeVersion: t.string(),
  }),
});

builder.mutationFields((t) => ({
  submitRenderJob: t.prismaField({
    type: RenderJobRef,
    description: 'Prices the render, charges the wallet and queues the job.',
    args: { input: t.arg({ type: SubmitRenderJobInput, required: true }) },
    errors: { types: [ValidationError, PaymentRequiredError, NotFoundError, ForbiddenError] },
    resolve: async (query, _root, { input }, ctx) => {
      const job = await ctx.services.jobs.submit(ctx.actor, withoutNulls(input));
      return ctx.prisma.renderJob.findUniqueOrThrow({ ...query, where: { id: job.id } });
    },
  }),
}));
