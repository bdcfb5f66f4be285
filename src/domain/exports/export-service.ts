// Exports: the downloadable files of finished renders, kept until their auto-delete date. Users
// see their own exports (admins and services all, as readScope decides); someone else's export is
// answered as not found. Only users delete or extend.
//
// Whatever removes an export (a user's delete, the expiry sweep) locks its row, deletes its
// objects, then deletes the row, in one transaction. A failure part-way leaves the row, so the
// removal can be retried, and never leaves an object that no row points at. Extending locks the
// same row, so it either lands before a removal (which then sees the new date) or finds nothing.
//
// A delete of an export that no longer exists answers not found, like an id that never existed:
// the two cannot be told apart without remembering deletions, and answering "deleted" for unknown
// ids while another user's export answers "not found" would tell callers which ids exist. Delete
// stays idempotent in its effect: a retry after a failure finishes the removal, and a repeat
// after success changes nothing.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { type Export, type ExportFile, Prisma, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Clock, PresignedUrl } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import { charge } from '../billing/ledger.ts';
import { MAX_EXTENSION_DAYS, MIN_EXTENSION_DAYS, quoteExtension } from '../billing/storage-pricing.ts';
import type { Tx } from '../db.ts';
import { NotFoundError } from '../errors.ts';
import { firstPages, type Owner, readableSql, shapeWithOwner } from '../first-pages.ts';
import { readScope, requireUser, type UserActor } from '../guards.ts';
import { type DownloadStore, downloadDisposition } from './download-name.ts';
import { type PageInput, pageMeta, pageSchema, parseInput, uuid, uuidsAmong } from '../validation.ts';

export const DEFAULT_DOWNLOAD_FORMAT = 'mp4';
export const DOWNLOAD_URL_TTL_SECONDS = 300;
export const SWEEP_BATCH_SIZE = 25;
/** Every list of exports shows the newest first; the id breaks ties for stable pages. */
export const NEWEST_EXPORTS_FIRST = [{ produceDate: 'desc' }, { id: 'desc' }] satisfies Prisma.ExportOrderByWithRelationInput[];

const DAY_MS = 24 * 3600 * 1000;
// Objects are deleted while rows stay locked, so the transaction must outlast a batch of store calls.
const REMOVAL_TIMEOUT_MS = 60_000;

export const extendExportSchema = z.strictObject({
  days: z.number().int().min(MIN_EXTENSION_DAYS).max(MAX_EXTENSION_DAYS),
});
export type ExtendExportInput = z.input<typeof extendExportSchema>;

const downloadSchema = z.object({
  format: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^\.?[a-z0-9]{1,16}$/, 'must be a file format such as mp4')
    .transform(normalizeFormat)
    .default(DEFAULT_DOWNLOAD_FORMAT),
});

type ExportArgs = { include?: Prisma.ExportInclude; select?: Prisma.ExportSelect };
type ExportWithFiles = Export & { files: ExportFile[] };

export interface ExportExtension {
  exportId: string;
  newAutoDeleteDate: Date;
  chargedMinor: bigint;
}

export interface ExportServiceDeps {
  prisma: PrismaClient;
  store: DownloadStore;
  clock: Clock;
  downloadUrlTtlSeconds?: number;
  sweepBatchSize?: number;
}

function normalizeFormat(format: string): string {
  return format.trim().toLowerCase().replace(/^\./, '');
}

/** Every object an export owns; an empty string is a file that was never produced. */
function objectKeysOf(exported: ExportWithFiles): string[] {
  const keys = [exported.path, exported.image, ...exported.files.flatMap((file) => [file.path, file.thumbnail])];
  return [...new Set(keys.filter((key) => key !== ''))];
}

export function createExportService({
  prisma,
  store,
  clock,
  downloadUrlTtlSeconds = DOWNLOAD_URL_TTL_SECONDS,
  sweepBatchSize = SWEEP_BATCH_SIZE,
}: ExportServiceDeps) {
  /** Who reads which exports, as readScope decides; exports the caller may not read do not exist for it. */
  function visibleTo(actor: Actor): { userId?: string } {
    return readScope(actor);
  }

  /** Locks the export's row until the transaction ends; others' exports are not found. */
  async function lockVisible(tx: Tx, user: UserActor, exportId: string): Promise<ExportWithFiles> {
    const owned = user.isAdmin ? Prisma.empty : Prisma.sql`AND user_id = ${user.userId}::uuid`;
    const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM exports WHERE id = ${exportId}::uuid ${owned} FOR UPDATE`;
    if (locked.length === 0) throw new NotFoundError('export', exportId);
    return tx.export.findUniqueOrThrow({ where: { id: exportId }, include: { files: true } });
  }

  async function deleteObjects(exported: ExportWithFiles): Promise<void> {
    await Promise.all(objectKeysOf(exported).map((key) => store.delete(key)));
  }

  async function get<A extends ExportArgs = {}>(actor: Actor, id: string, args?: A): Promise<Prisma.ExportGetPayload<A>> {
    const scope = visibleTo(actor);
    const exportId = parseInput(uuid, id, 'export id');
    const found = await prisma.export.findFirst({ ...args, where: { ...scope, id: exportId } });
    if (!found) throw new NotFoundError('export', exportId);
    return found as Prisma.ExportGetPayload<A>;
  }

  /** The exports among `ids` the actor may see, in one query; the others are left out. */
  async function getMany<A extends ExportArgs = {}>(actor: Actor, ids: readonly string[], args?: A): Promise<Prisma.ExportGetPayload<A>[]> {
    const scope = visibleTo(actor);
    const found = await prisma.export.findMany({ ...args, where: { ...scope, id: { in: uuidsAmong(ids) } } });
    return found as Prisma.ExportGetPayload<A>[];
  }

  /**
   * The newest exports of each owner (users or saved projects) that the caller may see, at most
   * `take` each, keyed by the owner's id as PostgreSQL prints it: one statement ranks them for
   * every owner at once, and one query reads them with what `args` selects.
   */
  async function newestOfOwners<A extends ExportArgs>(
    actor: Actor,
    owner: Owner,
    ownerIds: readonly string[],
    take: number,
    args?: A,
  ): Promise<Map<string, Prisma.ExportGetPayload<A>[]>> {
    // Who may read, spelt in SQL for the ranking; a filter visibleTo gains fails to compile here
    // until it is spelt too.
    const { userId, ...unspelt } = visibleTo(actor);
    unspelt satisfies Record<string, never>;
    const order = Prisma.sql`produce_date DESC, id DESC`;
    const pages = { table: Prisma.sql`exports`, owner, ownerIds, order, where: readableSql({ userId }), take };
    return firstPages(prisma, pages, async (ids) => {
      const found = await prisma.export.findMany({ ...shapeWithOwner(args, owner), where: { id: { in: ids } }, orderBy: NEWEST_EXPORTS_FIRST });
      return found as unknown as Array<Prisma.ExportGetPayload<A> & Pick<Export, Owner>>;
    });
  }

  /** One batch of the sweep: locks expired rows no other sweeper holds and removes them. */
  async function sweepBatch(now: Date, skipIds: string[]) {
    return prisma.$transaction(
      async (tx) => {
        const rows = await tx.$queryRaw<{ id: string }[]>`
          SELECT id FROM exports
          WHERE auto_delete_date <= ${now}::timestamptz AND NOT (id = ANY(${skipIds}::uuid[]))
          ORDER BY auto_delete_date, id
          LIMIT ${sweepBatchSize}
          FOR UPDATE SKIP LOCKED`;
        const expired = await tx.export.findMany({ where: { id: { in: rows.map((row) => row.id) } }, include: { files: true } });
        const outcomes = await Promise.allSettled(expired.map(deleteObjects));
        const removed = expired.filter((_, index) => outcomes[index]?.status === 'fulfilled').map((row) => row.id);
        await tx.export.deleteMany({ where: { id: { in: removed } } });
        const failures = expired.flatMap((row, index) => {
          const outcome = outcomes[index];
          return outcome?.status === 'rejected' ? [{ id: row.id, error: outcome.reason as unknown }] : [];
        });
        return { locked: rows.length, removed: removed.length, failures };
      },
      { timeout: REMOVAL_TIMEOUT_MS },
    );
  }

  return {
    visibleTo,
    get,
    getMany,
    newestOfOwners,

    /** The caller's exports, newest first, a page at a time (the contract has no page size). */
    async list<A extends ExportArgs = {}>(actor: Actor, input: Pick<PageInput, 'page'> = {}, args?: A) {
      const where = visibleTo(actor);
      const query = parseInput(pageSchema, { page: input.page }, 'export list query');
      const [data, total] = await prisma.$transaction([
        prisma.export.findMany({
          ...args,
          where,
          orderBy: NEWEST_EXPORTS_FIRST,
          skip: (query.page - 1) * query.pageSize,
          take: query.pageSize,
        }),
        prisma.export.count({ where }),
      ]);
      return { data: data as Prisma.ExportGetPayload<A>[], meta: pageMeta(query, total) };
    },

    /** Removes the export's objects, then its rows. */
    async delete(actor: Actor, id: string): Promise<void> {
      const user = requireUser(actor);
      const exportId = parseInput(uuid, id, 'export id');
      await prisma.$transaction(
        async (tx) => {
          const exported = await lockVisible(tx, user, exportId);
          await deleteObjects(exported);
          await tx.export.delete({ where: { id: exportId } });
        },
        { timeout: REMOVAL_TIMEOUT_MS },
      );
    },

    /**
     * Keeps the export `days` longer, counted from the later of now and its auto-delete date, and
     * charges the caller for it in the same transaction. `requestId` names the request: a retry
     * that passes the same one charges and extends once; by default every call is a new request.
     */
    async extend(actor: Actor, id: string, input: ExtendExportInput, requestId: string = randomUUID()): Promise<ExportExtension> {
      const user = requireUser(actor);
      const exportId = parseInput(uuid, id, 'export id');
      const { days } = parseInput(extendExportSchema, input, 'export extension');
      const idempotencyKey = `charge:export-extension:${exportId}:${requestId}`;
      return prisma.$transaction(async (tx) => {
        const exported = await lockVisible(tx, user, exportId);
        const earlier = await tx.ledgerEntry.findUnique({ where: { idempotencyKey } });
        if (earlier) return { exportId, newAutoDeleteDate: exported.autoDeleteDate, chargedMinor: -earlier.amountMinor };

        const storedBytes = exported.files.reduce((sum, file) => sum + file.sizeBytes, exported.sizeBytes);
        const quote = quoteExtension(storedBytes, days);
        const now = clock.now();
        const from = exported.autoDeleteDate > now ? exported.autoDeleteDate : now;
        const newAutoDeleteDate = new Date(from.getTime() + days * DAY_MS);
        await charge(tx, {
          userId: user.userId,
          amountMinor: quote.chargeMinor,
          idempotencyKey,
          description: `Keep export ${exportId} ${days} more day(s) (${quote.billedGb} GB)`,
          exportId,
        });
        await tx.export.update({ where: { id: exportId }, data: { autoDeleteDate: newAutoDeleteDate } });
        return { exportId, newAutoDeleteDate, chargedMinor: quote.chargeMinor };
      });
    },

    /**
     * A short-lived URL for one format of the export: the additional file of that type, else the
     * main file when its extension matches. It saves as the job's name (the saved project's when
     * the job is gone) and a short id (see download-name.ts).
     */
    async downloadUrl(actor: Actor, id: string, format?: string): Promise<PresignedUrl> {
      const scope = visibleTo(actor);
      const exportId = parseInput(uuid, id, 'export id');
      const wanted = parseInput(downloadSchema, { format }, 'download request').format;
      const exported = await prisma.export.findFirst({
        where: { ...scope, id: exportId },
        include: { files: true, renderJob: { select: { name: true } } },
      });
      if (!exported) throw new NotFoundError('export', exportId);
      const file = exported.files.find((candidate) => normalizeFormat(candidate.fileType) === wanted);
      const key = file ? file.path : normalizeFormat(exported.fileExtension) === wanted ? exported.path : '';
      if (key === '') throw new NotFoundError(`export ${exportId} in format`, wanted);
      const name =
        exported.renderJob?.name ??
        (await prisma.savedProject.findUnique({ where: { id: exported.savedProjectId }, select: { name: true } }))?.name ??
        '';
      return store.presignGet(key, downloadUrlTtlSeconds, {
        contentDisposition: downloadDisposition(name, exported.renderJobId ?? exported.id, wanted),
      });
    },

    /**
     * Removes exports whose auto-delete date has passed, a batch per transaction, and answers how
     * many. Any number of replicas may sweep at once: each locks rows the others skip. An export
     * whose objects cannot be deleted keeps its row for the next pass, and the pass then fails
     * so that the failure is logged.
     */
    async sweepExpired(now: Date = clock.now()): Promise<number> {
      let removed = 0;
      const failures: { id: string; error: unknown }[] = [];
      for (;;) {
        const batch = await sweepBatch(now, failures.map((failure) => failure.id));
        removed += batch.removed;
        failures.push(...batch.failures);
        if (batch.locked < sweepBatchSize) break;
      }
      if (failures.length > 0) {
        throw new AggregateError(
          failures.map((failure) => failure.error),
          `Kept ${failures.length} expired export(s) whose objects could not be deleted (${removed} removed): ${failures
            .map((failure) => failure.id)
            .join(', ')}`,
        );
      }
      return removed;
    },
  };
}

export type ExportService = ReturnType<typeof createExportService>;
