import { z } from 'zod';
import { type FrameJob, JobStep, LogLevel, PriceType, Prisma, type PrismaClient, Quality, type RenderJob, Resolution } from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import { redeemDiscount, usableDiscount } from '../billing/discount-codes.ts';
import { charge } from '../billing/ledger.ts';
import { type Discount, type Entitlements, entitlementsActingFor, entitlementsOf, quoteRender } from '../billing/pricing.ts';
import type { Read, Tx } from '../db.ts';
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.ts';
import { type JobChanged, type JobEvent, topicEvents, topics } from '../events.ts';
import { firstPages, type Owner, readableSql, shapeWithOwner } from '../first-pages.ts';
import { groupedBy } from '../grouping.ts';
import { readScope, requireAdmin, requireUser } from '../guards.ts';
import { nodesAvailableFor } from '../nodes/node-status.ts';
import { CHUNK_ORDER_SQL } from '../work/recut.ts';
import { type PageInput, pageMeta, pageSchema, parseInput, uuid, uuidsAmong } from '../validation.ts';
import { chunkSizeFor, cutRange, MAX_DURATION_SEC } from './chunking.ts';
import { endJob } from './endings.ts';
import { jobChanges } from './job-changes.ts';
import { writeJobLog } from './job-log.ts';
import { currentJobEvent, followProgress, latestEventSeqs, recordedJobEvents, type SequencedProgress, tailWatch } from './job-events.ts';
import type { Move } from './state-machine.ts';
import { claimSubmission, earlierAnswer, recordSubmission, type SubmissionClaim, submissionClaim } from './submission-keys.ts';

export const FRAME_RATES = [24, 25, 30, 60] as const;
const SUBMIT_TIMEOUT_MS = 60_000;

export const submitJobSchema = z
  .strictObject({
    savedProjectId: uuid,
    quality: z.enum(Quality),
    resolution: z.enum(Resolution),
    frameRate: z
      .number()
      .int()
      .refine((rate) => (FRAME_RATES as readonly number[]).includes(rate), `must be one of ${FRAME_RATES.join(', ')}`)
      .optional(),
    is60Fps: z.boolean().optional(),
    priceType: z.enum(PriceType).default('Cash'),
    discountCode: z.string().trim().min(1).max(64).optional(),
    supportFlatrender: z.boolean().default(false),
    tellMeWhenDone: z.boolean().default(false),
    preferredRegion: z.string().trim().min(1).max(50).optional(),
    name: z.string().trim().min(1).max(200).optional(),
    durationSec: z.number().positive().max(MAX_DURATION_SEC).optional(),
    hasVoiceover: z.boolean().optional(),
    aepFileMd5: z
      .string()
      .regex(/^[a-f0-9]{32}$/i, 'must be an md5 hex digest')
      .transform((md5) => md5.toLowerCase())
      .optional(),
    aeVersion: z.string().trim().min(1).max(40).optional(),
  })
  .refine((input) => !(input.is60Fps === true && input.frameRate !== undefined && input.frameRate !== 60), {
    path: ['frameRate'],
    message: 'contradicts is_60_fps',
  });
export type SubmitJobInput = z.input<typeof submitJobSchema>;

export type ListJobsInput = PageInput & { status?: string };

/** Every list of jobs, in every door, shows the newest first; the id breaks ties for stable pages. */
export const NEWEST_JOBS_FIRST = [{ queuedAt: 'desc' }, { id: 'desc' }] satisfies Prisma.RenderJobOrderByWithRelationInput[];

// Built once: a listing checks its filters on every request.
const jobFiltersSchema = z.object({ status: z.enum(JobStep).optional() });

export const cancelJobSchema = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });
export type CancelJobInput = z.input<typeof cancelJobSchema>;

const LOG_LEVELS = [LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error];
export const MAX_LOG_LINES = 1000;
export const jobLogsSchema = z.strictObject({ level: z.enum(LogLevel).optional() });
export type JobLogsInput = z.input<typeof jobLogsSchema>;

/** A level filter keeps that level and the more severe ones, as log viewers do. */
function levelsFrom(level: LogLevel | undefined): LogLevel[] {
  return level === undefined ? LOG_LEVELS : LOG_LEVELS.slice(LOG_LEVELS.indexOf(level));
}

/** Everything a job is created from, resolved from a submission or from the job it retries. */
interface JobSpec {
  userId: string;
  savedProjectId: string;
  name: string;
  quality: Quality;
  resolution: Resolution;
  frameRate: number;
  durationSec: number;
  hasVoiceover: boolean;
  aepFileMd5: string | null;
  aeVersion: string | null;
  priceType: PriceType;
  supportFlatrender: boolean;
  tellMeWhenDone: boolean;
  preferredRegion: string | null;
  discount: Discount | null;
  entitlements: Entitlements;
  retriedFromId?: string;
  retryCount?: number;
}

export interface JobServiceDeps {
  prisma: PrismaClient;
  /** The listings' widest reads, beside Prisma (chunksOfJobs). */
  read: Read;
  bus: EventBus;
  clock: Clock;
}

/**
 * The columns of a chunk that a listing may read, by the property Prisma names them with. A
 * listing reads only those its fields ask for: every column a row carries costs the driver work
 * per row, and a page's chunks are its most numerous rows.
 */
export const CHUNK_COLUMNS = {
  id: 'id',
  renderJobId: 'render_job_id',
  nodeId: 'node_id',
  startFrame: 'start_frame',
  endFrame: 'end_frame',
  orderValue: 'order_value',
  status: 'status',
  framesRendered: 'frames_rendered',
  framesValidated: 'frames_validated',
  attempt: 'attempt',
  lastError: 'last_error',
} as const satisfies Partial<Record<keyof FrameJob, string>>;
export type ChunkProperty = keyof typeof CHUNK_COLUMNS;
/** A chunk as a listing reads it: its id and job, and the properties asked for. */
export type ChunkRow<P extends ChunkProperty = ChunkProperty> = Pick<FrameJob, P | 'id' | 'renderJobId'>;

/** The nodes that failed a job, as listings show them. */
const MOST_FAILURES_FIRST = [{ failures: 'desc' }, { nodeId: 'asc' }] satisfies Prisma.JobNodeBlockOrderByWithRelationInput[];

/** Rows of several jobs by job, each job's in the order read. */
const byJob = <R extends { renderJobId: string }>(rows: readonly R[]) => groupedBy(rows, (row) => row.renderJobId);

export function createJobService({ prisma, read, bus, clock }: JobServiceDeps) {
  const changeJobs = jobChanges({ prisma, bus, clock });
  const tail = tailWatch((jobIds) => latestEventSeqs(prisma, jobIds));
  // Subscribers of one job on this replica that miss the same events share one read of them.
  const reads = new Map<string, Promise<JobEvent[]>>();
  function sharedRead(key: string, read: () => Promise<JobEvent[]>): Promise<JobEvent[]> {
    let pending = reads.get(key);
    if (pending === undefined) {
      pending = read().finally(() => reads.delete(key));
      reads.set(key, pending);
    }
    return pending;
  }

  /** Who reads which jobs, as readScope decides; jobs the caller may not read do not exist for it. */
  function visibleTo(actor: Actor): ReturnType<typeof readScope> & Prisma.RenderJobWhereInput {
    return readScope(actor);
  }

  async function activeDiscount(code: string | undefined): Promise<Discount | null> {
    return code === undefined ? null : usableDiscount(prisma, code, clock.now());
  }

  function listWhere(actor: Actor, status: string | undefined): { userId?: string; step?: JobStep } {
    const scope = visibleTo(actor);
    const filters = parseInput(jobFiltersSchema, { status }, 'job filters');
    return { ...scope, step: filters.status };
  }

  /** Cuts the job into chunks and gives every frame its record, in the job's transaction. */
  async function cutIntoChunks(tx: Tx, job: RenderJob): Promise<void> {
    const chunkSize = chunkSizeFor(job.totalFrames, await nodesAvailableFor(tx, clock.now(), job.aeVersion));
    const chunks = cutRange({ startFrame: 0, endFrame: job.totalFrames - 1 }, chunkSize);
    await tx.frameJob.createMany({
      data: chunks.map((chunk, index) => ({ renderJobId: job.id, ...chunk, orderValue: index })),
    });
    // One statement however long the job: the database expands each chunk into its frames.
    await tx.$executeRaw`
      INSERT INTO frames (render_job_id, frame_number, frame_job_id)
      SELECT fj.render_job_id, n, fj.id
      FROM frame_jobs fj, generate_series(fj.start_frame, fj.end_frame) AS n
      WHERE fj.render_job_id = ${job.id}::uuid`;
    await tx.renderJob.update({ where: { id: job.id }, data: { chunkSize } });
  }

  /** With a claim, the job is created only if its key is not taken; else the key's job is answered. */
  async function createJob(actor: Actor, spec: JobSpec, claim: SubmissionClaim | null = null) {
    const quote = quoteRender(spec, spec.entitlements);
    // The longest job (MAX_DURATION_SEC at 60 fps) gets 216,000 frame records, which a busy
    // database needs longer to write than Prisma's 5 s default for a transaction.
    return changeJobs(async ({ tx, now, touch }) => {
      const earlier = claim && (await claimSubmission(tx, claim, now));
      if (earlier) return earlier;
      if (spec.discount) await redeemDiscount(tx, spec.discount.code, now);
      const created = await tx.renderJob.create({
        data: {
          userId: spec.userId,
          savedProjectId: spec.savedProjectId,
          name: spec.name,
          priorityQueue: quote.priorityQueue,
          priceType: spec.priceType,
          paidPriceMinor: quote.chargeMinor,
          tipMinor: quote.tipMinor,
          quality: spec.quality,
          resolution: spec.resolution,
          frameRate: spec.frameRate,
          durationSec: spec.durationSec,
          totalFrames: Math.max(1, Math.round(spec.durationSec * spec.frameRate)),
          hasVoiceover: spec.hasVoiceover,
          aepFileMd5: spec.aepFileMd5,
          aeVersion: spec.aeVersion,
          discountCode: spec.discount?.code ?? null,
          supportFlatrender: spec.supportFlatrender,
          tellMeWhenDone: spec.tellMeWhenDone,
          preferredRegion: spec.preferredRegion,
          retriedFromId: spec.retriedFromId ?? null,
          retryCount: spec.retryCount ?? 0,
          queuedAt: now,
        },
      });
      await cutIntoChunks(tx, created);
      await charge(tx, {
        userId: spec.userId,
        amountMinor: quote.chargeMinor,
        idempotencyKey: `charge:render-job:${created.id}`,
        description: `Render ${created.name} (${spec.priceType}, ${spec.quality}, ${spec.resolution}, ${spec.frameRate} fps)`,
        renderJobId: created.id,
      });
      await writeJobLog(tx, created.id, {
        level: 'info',
        message: spec.retriedFromId ? `Job queued as a retry of ${spec.retriedFromId}` : 'Job queued',
        meta: {
          price_type: spec.priceType,
          list_price_minor: Number(quote.listPriceMinor),
          discount_minor: Number(quote.discountMinor),
          tip_minor: Number(quote.tipMinor),
          charged_minor: Number(quote.chargeMinor),
          submitted_by: actor.kind === 'user' ? actor.userId : actor.kind,
        },
      });
      touch([created.id]);
      const job = await tx.renderJob.findUniqueOrThrow({ where: { id: created.id } });
      if (claim) await recordSubmission(tx, claim, job);
      return job;
    }, { timeout: SUBMIT_TIMEOUT_MS });
  }

  return {
    visibleTo,
    listWhere,

    /**
     * Prices the job, charges the wallet, cuts it into chunks and queues it, in one transaction.
     * A submission with the idempotency key of an earlier one of the user answers that one's job
     * (submission-keys.ts).
     */
    async submit(actor: Actor, input: SubmitJobInput, options: { idempotencyKey?: string } = {}) {
      const user = requireUser(actor);
      const data = parseInput(submitJobSchema, input, 'render job');
      const claim = submissionClaim(user.userId, options.idempotencyKey, data);
      const earlier = claim && (await earlierAnswer(prisma, claim));
      if (earlier) return earlier;
      const project = await prisma.savedProject.findUnique({ where: { id: data.savedProjectId } });
      if (project?.ownerUserId && project.ownerUserId !== user.userId && !user.isAdmin) {
        throw new NotFoundError('saved project', data.savedProjectId);
      }
      // The studio's facts win over the caller's: a caller cannot price a long project as a short one.
      const durationSec = project?.durationSec ?? data.durationSec;
      if (durationSec === undefined) {
        throw new ValidationError('The saved project is unknown to the render service', [
          { path: 'durationSec', message: 'is required when the saved project has not been synced' },
        ]);
      }
      return createJob(actor, {
        userId: user.userId,
        savedProjectId: data.savedProjectId,
        name: project?.name ?? data.name ?? 'Untitled render',
        quality: data.quality,
        resolution: data.resolution,
        frameRate: data.is60Fps ? 60 : (data.frameRate ?? 30),
        durationSec,
        hasVoiceover: project?.hasVoiceover ?? data.hasVoiceover ?? false,
        aepFileMd5: project?.aepFileMd5 ?? data.aepFileMd5 ?? null,
        aeVersion: project?.aeVersion ?? data.aeVersion ?? null,
        priceType: data.priceType,
        supportFlatrender: data.supportFlatrender,
        tellMeWhenDone: data.tellMeWhenDone,
        preferredRegion: data.preferredRegion ?? null,
        discount: await activeDiscount(data.discountCode),
        entitlements: entitlementsOf(actor),
      }, claim);
    },

    /**
     * A new job with the configuration of a Failed or Cancelled one, priced and charged again
     * (its discount code is not used twice). It belongs to the original job's owner.
     */
    async retry(actor: Actor, id: string) {
      // Services may read the job, not render it again.
      requireUser(actor);
      const previous = await this.get(actor, id);
      if (previous.step !== JobStep.Failed && previous.step !== JobStep.Cancelled) {
        throw new InvalidStateError(`Render job ${previous.id} is ${previous.step}; only Failed or Cancelled jobs can be retried`, {
          job_id: previous.id,
          step: previous.step,
        });
      }
      return createJob(actor, {
        userId: previous.userId,
        savedProjectId: previous.savedProjectId,
        name: previous.name,
        quality: previous.quality,
        resolution: previous.resolution,
        frameRate: previous.frameRate,
        durationSec: previous.durationSec,
        hasVoiceover: previous.hasVoiceover,
        aepFileMd5: previous.aepFileMd5,
        aeVersion: previous.aeVersion,
        priceType: previous.priceType,
        supportFlatrender: previous.supportFlatrender,
        tellMeWhenDone: previous.tellMeWhenDone,
        preferredRegion: previous.preferredRegion,
        discount: null,
        // An admin retrying for a user is trusted with the price type the user had.
        entitlements: entitlementsActingFor(actor),
        retriedFromId: previous.id,
        retryCount: previous.retryCount + 1,
      });
    },

    /** Cancels the job and refunds the share of frames not rendered yet, exactly once. */
    async cancel(actor: Actor, id: string, input: CancelJobInput = {}) {
      // Services may read the job, not end it.
      const user = requireUser(actor);
      const job = await this.get(actor, id);
      const data = parseInput(cancelJobSchema, input, 'cancel request');
      const reason = data.reason ?? (user.userId !== job.userId ? 'Cancelled by an administrator' : 'Cancelled by the user');
      const ended = await changeJobs((changes) => endJob(changes, job.id, { to: JobStep.Cancelled, reason }));
      return { cancelled: true, refundAmountMinor: ended.refundMinor, job: ended.job };
    },

    /** Fails the job for good (retries exhausted, unrecoverable error) and refunds it in full. */
    async fail(jobId: string, message: string, nodeId?: string) {
      return (await changeJobs((changes) => endJob(changes, jobId, { to: JobStep.Failed, reason: message, nodeId }))).job;
    },

    /** Moves a job along its steps (the scheduler and agents' reports do this). */
    async move(jobId: string, move: Move) {
      return changeJobs((changes) => changes.move(jobId, move));
    },

    async progress(actor: Actor, id: string): Promise<SequencedProgress> {
      const job = await this.get(actor, id, { select: { id: true } });
      const now = await currentJobEvent(prisma, job.id, clock.now());
      if (!now) throw new NotFoundError('render job', job.id);
      return { ...now.progress, seq: now.seq };
    },

    /** The job's log, oldest first, from the given level up; the latest MAX_LOG_LINES lines. */
    async logs(actor: Actor, id: string, input: JobLogsInput = {}) {
      const job = await this.get(actor, id);
      const { level } = parseInput(jobLogsSchema, input, 'log query');
      const lines = await prisma.jobLog.findMany({
        where: { renderJobId: job.id, level: { in: levelsFrom(level) } },
        orderBy: [{ timestamp: 'desc' }, { id: 'desc' }],
        take: MAX_LOG_LINES,
      });
      return lines.reverse();
    },

    /**
     * One job's progress as it changes: where it stands now (or every event after `afterSeq`),
     * then each change exactly once and in order, whichever replica made it.
     */
    async watchProgress(actor: Actor, id: string, options: { afterSeq?: number } = {}): Promise<AsyncIterableIterator<SequencedProgress>> {
      const job = await this.get(actor, id, { select: { id: true } });
      const afterSeq = options.afterSeq === undefined ? undefined : parseInput(z.number().int().min(0), options.afterSeq, 'afterSeq');
      return followProgress({
        bus,
        topic: topics.renderProgress(job.id),
        jobId: job.id,
        tail,
        afterSeq,
        current: async () => {
          const now = await currentJobEvent(prisma, job.id, clock.now());
          if (!now) throw new NotFoundError('render job', job.id);
          return now;
        },
        recorded: (after) => sharedRead(`${job.id}:${after}`, () => recordedJobEvents(prisma, job.id, after)),
      });
    },

    /** Job changes: a user's own; an admin's for one user (userId) or for everyone. */
    async watchJobs(actor: Actor, input: { userId?: string } = {}) {
      const user = requireUser(actor);
      if (input.userId !== undefined && input.userId !== user.userId) requireAdmin(actor);
      const topic =
        input.userId !== undefined
          ? topics.renderJobUpdated(parseInput(uuid, input.userId, 'user id'))
          : user.isAdmin
            ? topics.renderJobUpdatedAll
            : topics.renderJobUpdated(user.userId);
      return topicEvents<JobChanged>(bus, topic);
    },

    async list<A extends { include?: Prisma.RenderJobInclude } = {}>(actor: Actor, input: ListJobsInput, args?: A) {
      const where = listWhere(actor, input.status);
      const query = parseInput(pageSchema, { page: input.page, pageSize: input.pageSize }, 'job list query');
      const [data, total] = await prisma.$transaction([
        prisma.renderJob.findMany({
          ...args,
          where,
          orderBy: NEWEST_JOBS_FIRST,
          skip: (query.page - 1) * query.pageSize,
          take: query.pageSize,
        }),
        prisma.renderJob.count({ where }),
      ]);
      return { data: data as Prisma.RenderJobGetPayload<A>[], meta: pageMeta(query, total) };
    },

    /** `args` shapes the row (include/select) for the transport that asked. */
    async get<A extends { include?: Prisma.RenderJobInclude; select?: Prisma.RenderJobSelect } = {}>(
      actor: Actor,
      id: string,
      args?: A,
    ): Promise<Prisma.RenderJobGetPayload<A>> {
      const scope = visibleTo(actor);
      const jobId = parseInput(uuid, id, 'render job id');
      const job = await prisma.renderJob.findFirst({ ...args, where: { ...scope, id: jobId } });
      if (!job) throw new NotFoundError('render job', jobId);
      return job as Prisma.RenderJobGetPayload<A>;
    },

    /** The jobs among `ids` the actor may see, in one query; the others are left out. */
    async getMany<A extends { include?: Prisma.RenderJobInclude; select?: Prisma.RenderJobSelect } = {}>(
      actor: Actor,
      ids: readonly string[],
      args?: A,
    ): Promise<Prisma.RenderJobGetPayload<A>[]> {
      const scope = visibleTo(actor);
      const jobs = await prisma.renderJob.findMany({ ...args, where: { ...scope, id: { in: uuidsAmong(ids) } } });
      return jobs as Prisma.RenderJobGetPayload<A>[];
    },

    /**
     * The newest jobs of each owner (users or saved projects) that the caller may see, at most
     * `take` each, keyed by the owner's id as PostgreSQL prints it: one statement ranks them for
     * every owner at once, and one query reads them with the relations `args` selects. A gateway
     * asks for the jobs of many users in one `_entities` request.
     */
    async newestOfOwners<A extends { include?: Prisma.RenderJobInclude; select?: Prisma.RenderJobSelect }>(
      actor: Actor,
      owner: Owner,
      ownerIds: readonly string[],
      options: { status?: string; take: number },
      args?: A,
    ): Promise<Map<string, Prisma.RenderJobGetPayload<A>[]>> {
      // The listing's own filters, spelt in SQL for the ranking; a filter listWhere gains fails
      // to compile here until it is spelt too.
      const { userId, step, ...unspelt } = listWhere(actor, options.status);
      unspelt satisfies Record<string, never>;
      const status = step === undefined ? Prisma.sql`TRUE` : Prisma.sql`step::text = ${step}`;
      const pages = {
        table: Prisma.sql`render_jobs`,
        owner,
        ownerIds,
        order: Prisma.sql`queued_at DESC, id DESC`,
        where: Prisma.sql`${readableSql({ userId })} AND ${status}`,
        take: options.take,
      };
      return firstPages(prisma, pages, async (ids) => {
        const jobs = await prisma.renderJob.findMany({ ...shapeWithOwner(args, owner), where: { id: { in: ids } }, orderBy: NEWEST_JOBS_FIRST });
        return jobs as unknown as Array<Prisma.RenderJobGetPayload<A> & Pick<RenderJob, Owner>>;
      });
    },

    /**
     * The chunks of jobs the caller was shown, in frame order, by job, in one statement through
     * the driver; of each, its id, its job and the `properties` asked for.
     */
    async chunksOfJobs<P extends ChunkProperty>(jobIds: readonly string[], properties: readonly P[]): Promise<Map<string, ChunkRow<P>[]>> {
      const wanted = new Set<ChunkProperty>(['id', 'renderJobId', ...properties]);
      const columns = Prisma.raw([...wanted].map((property) => `${CHUNK_COLUMNS[property]} AS "${property}"`).join(', '));
      const rows = await read<ChunkRow<P>>(Prisma.sql`
        SELECT ${columns} FROM frame_jobs
        WHERE render_job_id = ANY(${uuidsAmong(jobIds)}::uuid[])
        ORDER BY ${CHUNK_ORDER_SQL}`);
      return byJob(rows);
    },

    /** The nodes that failed jobs the caller was shown, the most failures first, by job, in one query. */
    async blocksOfJobs(jobIds: readonly string[]) {
      return byJob(await prisma.jobNodeBlock.findMany({ where: { renderJobId: { in: uuidsAmong(jobIds) } }, orderBy: MOST_FAILURES_FIRST }));
    },

    /** The chunks among `ids` of jobs the actor may see, in one query; the others are left out. */
    async getFrameJobs<A extends { include?: Prisma.FrameJobInclude; select?: Prisma.FrameJobSelect } = {}>(
      actor: Actor,
      ids: readonly string[],
      args?: A,
    ): Promise<Prisma.FrameJobGetPayload<A>[]> {
      const scope = visibleTo(actor);
      const chunks = await prisma.frameJob.findMany({ ...args, where: { id: { in: uuidsAmong(ids) }, renderJob: scope } });
      return chunks as Prisma.FrameJobGetPayload<A>[];
    },
  };
}

export type JobService = ReturnType<typeof createJobService>;
