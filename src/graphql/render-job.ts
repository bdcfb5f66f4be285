import type { GraphQLResolveInfo } from 'graphql';
import { ConflictError, ForbiddenError, InvalidStateError, NotFoundError, PaymentRequiredError, ValidationError } from '../domain/errors.ts';
import type { JobChanged } from '../domain/events.ts';
import { groupedBy } from '../domain/grouping.ts';
import { CHUNK_COLUMNS, type ChunkProperty, MAX_LOG_LINES, NEWEST_JOBS_FIRST } from '../domain/jobs/job-service.ts';
import type { SequencedProgress } from '../domain/jobs/job-events.ts';
import { percentDone } from '../domain/jobs/progress.ts';
import { MAX_SUBMISSION_KEY_LENGTH, SUBMISSION_KEY_RETENTION_HOURS } from '../domain/jobs/submission-keys.ts';
import { ACTIVE_CHUNK, LATEST_ASSIGNED_FIRST } from '../domain/work/leases.ts';
import type { FrameJob, JobNodeBlock } from '../generated/prisma/client.ts';
import type { JobStep } from '../generated/prisma/enums.ts';
import { builder, type GraphQLContext, idOfRow } from './builder.ts';
import { entityLoader, loadersPerRequest } from './entity-loaders.ts';
import { FrameJobStatusEnum, JobStepEnum, LogLevelEnum, PriceTypeEnum, PriorityQueueEnum, QualityEnum, ResolutionEnum } from './enums.ts';
import { withoutNulls } from './inputs.ts';
import { renderNodeById, RenderNodeRef } from './render-node.ts';
import { selectedFieldNames } from './selections.ts';

const isAdmin = (ctx: GraphQLContext) => ctx.actor.kind === 'user' && ctx.actor.isAdmin;

/** Whether a field's selection is its object's `id` alone (and `__typename`). */
function asksIdOnly(info: GraphQLResolveInfo): boolean {
  for (const name of selectedFieldNames(info)) if (name !== 'id' && name !== '__typename') return false;
  return true;
}

/**
 * The `node` of a row with a `nodeId` (a chunk, a job's failures on a node), for admins: what the
 * fleet is made of is not the job owner's to see. Nothing is read for other callers, and a node
 * asked for its id alone is the row's own `nodeId`. Otherwise the nodes of all the rows are read
 * in one query, as federation references are. No `select` of its own on purpose: the Prisma
 * plugin wraps such a field to look up, row by row, which query loaded the row, and a listing of
 * 600 chunks spent an eighth of its CPU there.
 */
const nodeForAdmins = {
  type: RenderNodeRef,
  nullable: true,
  resolve: (row: { nodeId: string | null }, _args: unknown, ctx: GraphQLContext, info: GraphQLResolveInfo) => {
    if (!isAdmin(ctx) || !row.nodeId) return null;
    return asksIdOnly(info) ? { id: row.nodeId } : renderNodeById({ id: row.nodeId }, ctx, info);
  },
} as const;

/**
 * What each FrameJob field reads of the chunk's row, where that is not the property of its own
 * name: a job's chunks are read with these columns and no others (chunksOf below).
 */
const CHUNK_FIELD_READS: Record<string, readonly ChunkProperty[]> = { node: ['nodeId'] };

/** The chunk properties a field's selection of FrameJob fields reads. */
export function chunkPropertiesOf(fieldNames: Iterable<string>): ChunkProperty[] {
  const properties = new Set<ChunkProperty>();
  for (const name of fieldNames) {
    for (const property of CHUNK_FIELD_READS[name] ?? (name in CHUNK_COLUMNS ? [name as ChunkProperty] : [])) properties.add(property);
  }
  return [...properties];
}

/** One of the lists a job holds, for one job, and how it is read for many. */
interface JobListLoad {
  /** Names the list and what its rows carry: loads of one list and shape are read together. */
  list: string;
  jobId: string;
  read(jobIds: readonly string[]): Promise<Map<string, unknown[]>>;
}

const jobListLoaders = loadersPerRequest<unknown[], JobListLoad>();

/**
 * A list a job holds (its chunks, the nodes that failed it), read for every job of the request at
 * once. One loader serves every list, so the lists of a page arrive together and what their rows
 * ask for next (their nodes) is read in one query too.
 */
function jobList<T>(ctx: GraphQLContext, load: JobListLoad): Promise<T[]> {
  const loader = jobListLoaders(ctx, 'job lists', async (loads) => {
    // Loads of one list share its read; a job shown twice on a page is read once.
    const byList = groupedBy(loads, (load) => load.list);
    const lists = new Map(
      await Promise.all(
        [...byList].map(async ([list, same]) => {
          const jobIds = new Set(same.map((load) => load.jobId));
          return [list, await same[0]!.read([...jobIds])] as const;
        }),
      ),
    );
    return loads.map(({ list, jobId }) => lists.get(list)?.get(jobId) ?? []);
  });
  return loader.load(load) as Promise<T[]>;
}

/**
 * A job's chunks, with the columns the request's selection reads. The chunks are the most
 * numerous rows of a listing (a page of 50 jobs holds 600), and read through the driver they cost
 * a fraction of what the Prisma plugin's planned relation costs, which maps every row of Prisma's
 * result and looks up, row by row, which query loaded it.
 */
function chunksOf(job: { id: string }, ctx: GraphQLContext, info: GraphQLResolveInfo): Promise<FrameJob[]> {
  const properties = chunkPropertiesOf(selectedFieldNames(info));
  // Typed as whole rows for the Prisma object type: its fields read only what they declared above.
  return jobList<FrameJob>(ctx, {
    list: `chunks:${properties.join()}`,
    jobId: job.id,
    read: (jobIds) => ctx.services.jobs.chunksOfJobs(jobIds, properties),
  });
}

// No type-level `select`: its fields read their row's properties straight, wherever the row was
// read (the chunks of a job, the chunk a node holds, an entity reference).
export const FrameJobRef = builder.prismaObject('FrameJob', {
  description: 'A chunk of consecutive frames of a render job, rendered by one node at a time.',
  fields: (t) => ({
    id: t.field(idOfRow),
    renderJobId: t.expose('renderJobId', { type: 'UUID' }),
    nodeId: t.expose('nodeId', { type: 'UUID', nullable: true }),
    node: t.field({ ...nodeForAdmins, description: 'The node rendering this chunk; null for callers who are not admins.' }),
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

// Defined here rather than with the node's other fields: FrameJob's module imports the node's.
builder.prismaObjectField(RenderNodeRef, 'currentFrameJob', (t) =>
  t.field({
    type: FrameJobRef,
    nullable: true,
    description: 'The chunk the node holds now (Assigned or Rendering); null when it holds none.',
    select: (_args, _ctx, nestedSelection) => ({
      frameJobs: nestedSelection({ where: { status: { in: ACTIVE_CHUNK } }, orderBy: LATEST_ASSIGNED_FIRST, take: 1 }),
    }),
    resolve: (node) => node.frameJobs[0] ?? null,
  }),
);

const JobNodeBlockRef = builder.prismaObject('JobNodeBlock', {
  description: "A node's failures on a job's chunks. At the failure policy's limit the node is kept off the job.",
  fields: (t) => ({
    nodeId: t.expose('nodeId', { type: 'UUID' }),
    failures: t.exposeInt('failures'),
    blockedAt: t.expose('blockedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the node was kept off the job; null while it may still be given its chunks.',
    }),
    node: t.field({ ...nodeForAdmins, description: 'The node; null for callers who are not admins.' }),
  }),
});

export const RenderJobRef = builder.prismaObject('RenderJob', {
  description: 'A render of a saved project into a video, from queue to export.',
  select: { id: true },
  fields: (t) => ({
    id: t.field(idOfRow),
    userId: t.expose('userId', { type: 'UUID' }),
    savedProjectId: t.expose('savedProjectId', { type: 'UUID' }),
    name: t.exposeString('name'),
    step: t.expose('step', { type: JobStepEnum }),
    renderProgress: t.int({
      description: 'Percent of frames rendered, 0 to 100.',
      select: { step: true, totalFrames: true, framesRendered: true },
      resolve: percentDone,
    }),
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
    frameJobs: t.field({ type: [FrameJobRef], resolve: (job, _args, ctx, info) => chunksOf(job, ctx, info) }),
    nodeBlocks: t.field({
      type: [JobNodeBlockRef],
      description: "The nodes that failed this job's chunks, the most failures first.",
      resolve: (job, _args, ctx) =>
        jobList<JobNodeBlock>(ctx, { list: 'blocks', jobId: job.id, read: (jobIds) => ctx.services.jobs.blocksOfJobs(jobIds) }),
    }),
  }),
});

builder.asEntity(RenderJobRef, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: entityLoader('render job', (ctx, ids, query) => ctx.services.jobs.getMany(ctx.actor, ids, query), 'RenderJob'),
});

builder.asEntity(FrameJobRef, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: entityLoader('frame job', (ctx, ids, query) => ctx.services.jobs.getFrameJobs(ctx.actor, ids, query), 'FrameJob'),
});

builder.queryFields((t) => ({
  renderJobs: t.prismaConnection({
    type: RenderJobRef,
    cursor: 'id',
    description: "The caller's render jobs, newest first (admins and services see everyone's).",
    args: { status: t.arg({ type: JobStepEnum, required: false }) },
    defaultSize: 20,
    maxSize: 100,
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.renderJob.findMany({
        ...query,
        where: ctx.services.jobs.listWhere(ctx.actor, args.status ?? undefined),
        orderBy: NEWEST_JOBS_FIRST,
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
    idempotencyKey: t.string({
      description: `Up to ${MAX_SUBMISSION_KEY_LENGTH} visible ASCII characters, kept ${SUBMISSION_KEY_RETENTION_HOURS} hours at least. Sent again with the same input, answers the job the first submission made, created and charged once; with another input, a ConflictError.`,
    }),
  }),
});

builder.mutationFields((t) => ({
  submitRenderJob: t.prismaField({
    type: RenderJobRef,
    description: 'Prices the render, charges the wallet and queues the job.',
    args: { input: t.arg({ type: SubmitRenderJobInput, required: true }) },
    errors: { types: [ValidationError, PaymentRequiredError, NotFoundError, ForbiddenError, ConflictError] },
    resolve: async (query, _root, { input }, ctx) => {
      const { idempotencyKey, ...fields } = withoutNulls(input);
      const job = await ctx.services.jobs.submit(ctx.actor, fields, { idempotencyKey });
      return ctx.prisma.renderJob.findUniqueOrThrow({ ...query, where: { id: job.id } });
    },
  }),
}));

const RenderProgressRef = builder.objectRef<SequencedProgress>('RenderProgress').implement({
  description: 'Where a render job stands, derived from its frame records.',
  fields: (t) => ({
    jobId: t.expose('jobId', { type: 'UUID' }),
    seq: t.exposeInt('seq', {
      description: "The number of the job's latest change shown here; each change of a job gets the next one.",
    }),
    step: t.expose('step', { type: JobStepEnum }),
    progress: t.exposeInt('progress', {
      description: 'Percent of frames rendered (currentFrame of totalFrames, rounded down); at most 99 until Completed, then 100.',
    }),
    currentFrame: t.exposeInt('currentFrame', {
      nullable: true,
      description:
        'How many frames are rendered, whatever their numbers (chunks render in parallel, out of order): 0 at first, totalFrames once Completed.',
    }),
    totalFrames: t.exposeInt('totalFrames', { nullable: true }),
    etaSeconds: t.exposeInt('etaSeconds', {
      nullable: true,
      description:
        'Seconds until every frame is rendered, at the rate frames completed over the last minute; null outside Rendering or while no frame completed in that minute, 0 once Completed.',
    }),
    previewB64: t.exposeString('previewB64', { nullable: true }),
    activeNodes: t.exposeInt('activeNodes'),
    message: t.exposeString('message', { nullable: true }),
  }),
});

const JobLogRef = builder.prismaObject('JobLog', {
  fields: (t) => ({
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
    level: t.expose('level', { type: LogLevelEnum }),
    nodeId: t.expose('nodeId', { type: 'UUID', nullable: true }),
    message: t.exposeString('message'),
    meta: t.field({ type: 'JSONObject', resolve: (line) => line.meta as Record<string, unknown> }),
  }),
});

builder.queryFields((t) => ({
  renderProgress: t.field({
    type: RenderProgressRef,
    args: { jobId: t.arg({ type: 'UUID', required: true }) },
    resolve: (_root, args, ctx) => ctx.services.jobs.progress(ctx.actor, args.jobId),
  }),
  renderJobLogs: t.field({
    type: [JobLogRef],
    description: `The job's log, oldest first, from the given level up (at most ${MAX_LOG_LINES} latest lines).`,
    args: {
      jobId: t.arg({ type: 'UUID', required: true }),
      level: t.arg({ type: LogLevelEnum, required: false }),
    },
    resolve: (_root, args, ctx) => ctx.services.jobs.logs(ctx.actor, args.jobId, { level: args.level ?? undefined }),
  }),
}));

const CancelledRenderJob = builder
  .objectRef<{ cancelled: boolean; refundAmountMinor: bigint; job: { id: string } }>('CancelledRenderJob')
  .implement({
    fields: (t) => ({
      cancelled: t.exposeBoolean('cancelled'),
      refundAmountMinor: t.field({ type: 'BigInt', resolve: (result) => result.refundAmountMinor }),
      job: t.prismaField({
        type: RenderJobRef,
        resolve: (query, result, _args, ctx) => ctx.prisma.renderJob.findUniqueOrThrow({ ...query, where: { id: result.job.id } }),
      }),
    }),
  });

builder.mutationFields((t) => ({
  cancelRenderJob: t.field({
    type: CancelledRenderJob,
    description: 'Cancels the job and refunds the share of frames not rendered yet.',
    args: { id: t.arg({ type: 'UUID', required: true }), reason: t.arg.string({ required: false }) },
    errors: { types: [NotFoundError, InvalidStateError, ValidationError] },
    resolve: (_root, args, ctx) => ctx.services.jobs.cancel(ctx.actor, args.id, { reason: args.reason ?? undefined }),
  }),
  retryRenderJob: t.prismaField({
    type: RenderJobRef,
    description: 'Starts a new job with the configuration of a Failed or Cancelled one, priced and charged again.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    errors: { types: [NotFoundError, InvalidStateError, PaymentRequiredError, ForbiddenError, ValidationError] },
    resolve: async (query, _root, args, ctx) => {
      const job = await ctx.services.jobs.retry(ctx.actor, args.id);
      return ctx.prisma.renderJob.findUniqueOrThrow({ ...query, where: { id: job.id } });
    },
  }),
}));

builder.subscriptionFields((t) => ({
  renderProgress: t.field({
    type: RenderProgressRef,
    description:
      "Every change of a job's progress, exactly once and in order, starting with where it stands now; " +
      'with afterSeq, starting with the changes after that seq (a client resuming where it left off). ' +
      'Completes right after Completed, Failed or Cancelled.',
    args: { jobId: t.arg({ type: 'UUID', required: true }), afterSeq: t.arg.int({ required: false }) },
    subscribe: (_root, args, ctx) => ctx.services.jobs.watchProgress(ctx.actor, args.jobId, { afterSeq: args.afterSeq ?? undefined }),
    resolve: (progress: SequencedProgress) => progress,
  }),
  renderJobUpdated: t.prismaField({
    type: RenderJobRef,
    description: "The caller's jobs as they change; an admin may watch one user (userId) or everyone (no userId).",
    args: { userId: t.arg({ type: 'UUID', required: false }) },
    subscribe: (_root, args, ctx) => ctx.services.jobs.watchJobs(ctx.actor, { userId: args.userId ?? undefined }),
    resolve: async (query, event: JobChanged, _args, ctx) => ({
      ...(await ctx.prisma.renderJob.findUniqueOrThrow({ ...query, where: { id: event.jobId } })),
      step: event.step as JobStep,
    }),
  }),
}));
