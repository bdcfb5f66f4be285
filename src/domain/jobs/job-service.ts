import { z } from 'zod';
import { JobStep, PriceType, type Prisma, type PrismaClient, Quality, Resolution } from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import { charge } from '../billing/ledger.ts';
import type { Tx } from '../db.ts';
import { type Discount, type Entitlements, quoteRender } from '../billing/pricing.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { publishJobUpdated } from '../events.ts';
import { requireUser } from '../guards.ts';
import { type PageInput, pageMeta, pageSchema, parseInput, uuid } from '../validation.ts';
import { writeJobLog } from './job-log.ts';

export const FRAME_RATES = [24, 25, 30, 60] as const;
export const MAX_DURATION_SEC = 3600;

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

export interface JobServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  clock: Clock;
  entitlementsOf: (actor: Actor) => Entitlements;
}

export function createJobService({ prisma, bus, clock, entitlementsOf }: JobServiceDeps) {
  /** Who sees which jobs: users their own, admins all. Others' jobs do not exist for them. */
  function visibleTo(actor: Actor): Prisma.RenderJobWhereInput {
    const user = requireUser(actor);
    return user.isAdmin ? {} : { userId: user.userId };
  }

  async function activeDiscount(code: string | undefined): Promise<Discount | null> {
    if (code === undefined) return null;
    const discount = await prisma.discountCode.findUnique({ where: { code } });
    const now = clock.now();
    const usable =
      discount?.active &&
      (discount.expiresAt === null || discount.expiresAt > now) &&
      (discount.maxUses === null || discount.usedCount < discount.maxUses);
    if (!discount || !usable) {
      throw new ValidationError('Invalid discount code', [{ path: 'discountCode', message: 'is unknown, expired or used up' }]);
    }
    return discount;
  }

  /** Counts a use atomically, so concurrent submits cannot exceed a code's limit. */
  async function redeemDiscount(tx: Tx, code: string): Promise<void> {
    const now = clock.now();
    const { count } = await tx.discountCode.updateMany({
      where: {
        code,
        active: true,
        AND: [
          { OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
          { OR: [{ maxUses: null }, { usedCount: { lt: prisma.discountCode.fields.maxUses } }] },
        ],
      },
      data: { usedCount: { increment: 1 } },
    });
    if (count === 0) {
      throw new ValidationError('Invalid discount code', [{ path: 'discountCode', message: 'is unknown, expired or used up' }]);
    }
  }

  function listWhere(actor: Actor, status: string | undefined): Prisma.RenderJobWhereInput {
    const scope = visibleTo(actor);
    const filters = parseInput(z.object({ status: z.enum(JobStep).optional() }), { status }, 'job filters');
    return { ...scope, step: filters.status };
  }

  return {
    visibleTo,
    listWhere,

    /** Prices the job, charges the wallet and queues the job, all in one transaction. */
    async submit(actor: Actor, input: SubmitJobInput) {
      const user = requireUser(actor);
      const data = parseInput(submitJobSchema, input, 'render job');
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
      const frameRate = data.is60Fps ? 60 : (data.frameRate ?? 30);
      const hasVoiceover = project?.hasVoiceover ?? data.hasVoiceover ?? false;
      const discount = await activeDiscount(data.discountCode);
      const quote = quoteRender(
        {
          quality: data.quality,
          resolution: data.resolution,
          frameRate,
          durationSec,
          hasVoiceover,
          priceType: data.priceType,
          supportFlatrender: data.supportFlatrender,
          discount,
        },
        entitlementsOf(actor),
      );

      const job = await prisma.$transaction(async (tx) => {
        if (discount) await redeemDiscount(tx, discount.code);
        const created = await tx.renderJob.create({
          data: {
            userId: user.userId,
            savedProjectId: data.savedProjectId,
            name: project?.name ?? data.name ?? 'Untitled render',
            priorityQueue: quote.priorityQueue,
            priceType: data.priceType,
            paidPriceMinor: quote.chargeMinor,
            tipMinor: quote.tipMinor,
            quality: data.quality,
            resolution: data.resolution,
            frameRate,
            durationSec,
            totalFrames: Math.max(1, Math.round(durationSec * frameRate)),
            hasVoiceover,
            aepFileMd5: project?.aepFileMd5 ?? data.aepFileMd5 ?? null,
            aeVersion: project?.aeVersion ?? data.aeVersion ?? null,
            discountCode: discount?.code ?? null,
            supportFlatrender: data.supportFlatrender,
            tellMeWhenDone: data.tellMeWhenDone,
            preferredRegion: data.preferredRegion ?? null,
            queuedAt: clock.now(),
          },
        });
        await charge(tx, {
          userId: user.userId,
          amountMinor: quote.chargeMinor,
          idempotencyKey: `charge:render-job:${created.id}`,
          description: `Render ${created.name} (${data.priceType}, ${data.quality}, ${data.resolution}, ${frameRate} fps)`,
          renderJobId: created.id,
        });
        await writeJobLog(tx, created.id, {
          level: 'info',
          message: 'Job queued',
          meta: {
            price_type: data.priceType,
            list_price_minor: Number(quote.listPriceMinor),
            discount_minor: Number(quote.discountMinor),
            tip_minor: Number(quote.tipMinor),
            charged_minor: Number(quote.chargeMinor),
          },
        });
        return created;
      });
      await publishJobUpdated(bus, { jobId: job.id, userId: job.userId, step: job.step });
      return job;
    },

    async list<A extends { include?: Prisma.RenderJobInclude } = {}>(actor: Actor, input: ListJobsInput, args?: A) {
      const where = listWhere(actor, input.status);
      const query = parseInput(pageSchema, { page: input.page, pageSize: input.pageSize }, 'job list query');
      const [data, total] = await prisma.$transaction([
        prisma.renderJob.findMany({
          ...args,
          where,
          orderBy: [{ queuedAt: 'desc' }, { id: 'desc' }],
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
  };
}

export type JobService = ReturnType<typeof createJobService>;
