// Snapshots: a still of one frame of a saved project's scene, for previews while a person waits.
// A render node renders it (a render_snapshot command), uploads the image and a thumbnail to the
// object store, and the still then serves every identical request until SNAPSHOT_TTL_DAYS pass.
//
// Each request is a row of its own user, so that a snapshot id never shows one user's request to
// another; the rows of one render (same template md5, scene and frame: see snapshot-renders.ts)
// point at the same objects. A request takes the render's advisory lock, then returns the
// caller's own valid or in-flight row, or makes a new row that reuses a valid cached image, joins
// the render in flight, or starts one. The start, completion and failure of a render take the
// same lock and move every in-flight row of the render at once, so a request either joins before
// the outcome (and shares it) or sees the outcome.
import { z } from 'zod';
import {
  CommandType,
  type Prisma,
  type PrismaClient,
  type Snapshot,
  SnapshotStatus,
} from '../../generated/prisma/client.ts';
import type { Clock, EventBus, ObjectStore } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import type { Tx } from '../db.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { publishSnapshotUpdated, type SnapshotChanged, topicEvents, topics } from '../events.ts';
import { readScope, requireNode, requireUser } from '../guards.ts';
import { finishWork, heldCommand } from '../work/leases.ts';
import { parseInput, uuid, uuidsAmong } from '../validation.ts';
import { IN_FLIGHT, lockRender, moveRender, type RenderKey, type SnapshotFile, snapshotObjectKey } from './snapshot-renders.ts';

/** How long a rendered still serves identical requests; a request after that renders it again. */
export const SNAPSHOT_TTL_DAYS = 7;
/** The longest an image URL lives; never past the image's own expiry. */
export const SNAPSHOT_URL_TTL_SECONDS = 3600;

const DAY_MS = 24 * 3600 * 1000;
const SNAPSHOT_FILES: SnapshotFile[] = ['image', 'thumbnail'];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const lease = z.string().trim().min(1).max(100);

export const requestSnapshotSchema = z.strictObject({
  savedProjectId: uuid,
  sceneKey: z.string().trim().min(1).max(200),
  frameNumber: z.number().int().min(0).max(10_000_000),
});
export type RequestSnapshotInput = z.input<typeof requestSnapshotSchema>;

export const completeSnapshotSchema = z.strictObject({
  lease,
  width: z.number().int().min(1).max(16384),
  height: z.number().int().min(1).max(16384),
  durationMs: z.number().int().min(0).max(3_600_000),
});
export const failSnapshotSchema = z.strictObject({ lease, error: z.string().trim().min(1).max(10_000) });
const uploadSchema = z.object({ lease });

export interface SnapshotView extends Snapshot {
  /** Presigned URLs while the image is cached and not expired, else null. */
  imageUrl: string | null;
  thumbnailUrl: string | null;
}

export interface SnapshotServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  clock: Clock;
  store: ObjectStore;
  urlTtlSeconds?: number;
}

// Stored with the type browsers need to show it; agents send bytes without naming the format.
function imageContentType(bytes: Buffer): string {
  if (bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  return 'application/octet-stream';
}

export function createSnapshotService({ prisma, bus, clock, store, urlTtlSeconds = SNAPSHOT_URL_TTL_SECONDS }: SnapshotServiceDeps) {
  /** Who reads which snapshots, as readScope decides; snapshots the caller may not read do not exist for it. */
  function visibleTo(actor: Actor): Prisma.SnapshotWhereInput {
    return readScope(actor);
  }

  async function findVisible(scope: Prisma.SnapshotWhereInput, id: string): Promise<Snapshot> {
    const snapshotId = parseInput(uuid, id, 'snapshot id');
    const found = await prisma.snapshot.findFirst({ where: { id: snapshotId, ...scope } });
    if (!found) throw new NotFoundError('snapshot', snapshotId);
    return found;
  }

  async function view(snapshot: Snapshot): Promise<SnapshotView> {
    const now = clock.now();
    const { imageKey, thumbnailKey, expiresAt } = snapshot;
    if (snapshot.status !== SnapshotStatus.Cached || !imageKey || !thumbnailKey || !expiresAt || expiresAt <= now) {
      return { ...snapshot, imageUrl: null, thumbnailUrl: null };
    }
    const ttl = Math.max(1, Math.min(urlTtlSeconds, Math.floor((expiresAt.getTime() - now.getTime()) / 1000)));
    const [image, thumbnail] = await Promise.all([store.presignGet(imageKey, ttl), store.presignGet(thumbnailKey, ttl)]);
    return { ...snapshot, imageUrl: image.url, thumbnailUrl: thumbnail.url };
  }

  async function announce(changes: SnapshotChanged[]): Promise<void> {
    await Promise.all(changes.map((change) => publishSnapshotUpdated(bus, change)));
  }

  /** The snapshot a node reports on, its render locked until the transaction ends. */
  async function lockReported(tx: Tx, snapshotId: string): Promise<Snapshot> {
    const snapshot = await tx.snapshot.findUnique({ where: { id: snapshotId } });
    if (!snapshot) throw new NotFoundError('snapshot', snapshotId);
    await lockRender(tx, snapshot);
    return snapshot;
  }

  return {
    /**
     * A still of one frame of a scene of the caller's saved project. Answers at once: Cached
     * with image URLs when a valid image exists, else Pending (or Rendering, when it joins a
     * render already under way).
     */
    async request(actor: Actor, input: RequestSnapshotInput): Promise<SnapshotView> {
      const user = requireUser(actor);
      const data = parseInput(requestSnapshotSchema, input, 'snapshot request');
      const project = await prisma.savedProject.findUnique({
        where: { id: data.savedProjectId },
        select: { ownerUserId: true, aepFileMd5: true },
      });
      // The studio's facts decide what is rendered, so a project they do not name is unknown.
      if (!project || (project.ownerUserId !== null && project.ownerUserId !== user.userId && !user.isAdmin)) {
        throw new NotFoundError('saved project', data.savedProjectId);
      }
      if (!project.aepFileMd5) {
        throw new ValidationError('The saved project has no template to render yet', [
          { path: 'savedProjectId', message: 'has no aep_file_md5 yet' },
        ]);
      }
      const key: RenderKey = {
        savedProjectId: data.savedProjectId,
        aepFileMd5: project.aepFileMd5,
        sceneKey: data.sceneKey,
        frameNumber: data.frameNumber,
      };
      const mine = { userId: user.userId, ...key };
      const now = clock.now();
      const valid = { status: SnapshotStatus.Cached, expiresAt: { gt: now } } satisfies Prisma.SnapshotWhereInput;
      const snapshot = await prisma.$transaction(async (tx) => {
        await lockRender(tx, key);
        const own = await tx.snapshot.findFirst({
          where: { ...mine, OR: [valid, { status: { in: IN_FLIGHT } }] },
          orderBy: { requestedAt: 'desc' },
        });
        if (own) return own;
        // At most one of the two exists: a render starts only when no valid image does.
        const source =
          (await tx.snapshot.findFirst({ where: { ...key, ...valid }, orderBy: { expiresAt: 'desc' } })) ??
          (await tx.snapshot.findFirst({ where: { ...key, status: { in: IN_FLIGHT } } }));
        return tx.snapshot.create({
          data: {
            ...mine,
            requestedAt: now,
            ...(source && {
              status: source.status,
              nodeId: source.nodeId,
              imageKey: source.imageKey,
              thumbnailKey: source.thumbnailKey,
              width: source.width,
              height: source.height,
              durationMs: source.durationMs,
              expiresAt: source.expiresAt,
              completedAt: source.status === SnapshotStatus.Cached ? now : null,
            }),
          },
        });
      });
      return view(snapshot);
    },

    async get(actor: Actor, id: string): Promise<SnapshotView> {
      return view(await findVisible(visibleTo(actor), id));
    },

    /** The snapshots among `ids` the actor may see, in one query; the others are left out. */
    async getMany(actor: Actor, ids: readonly string[]): Promise<SnapshotView[]> {
      const scope = visibleTo(actor);
      const found = await prisma.snapshot.findMany({ where: { ...scope, id: { in: uuidsAmong(ids) } } });
      return Promise.all(found.map(view));
    },

    /**
     * Changes of one snapshot the caller may see, with its current status, until it is Cached or
     * Failed (a snapshot never leaves those).
     */
    async watch(actor: Actor, id: string) {
      const scope = visibleTo(actor);
      const snapshotId = parseInput(uuid, id, 'snapshot id');
      return topicEvents<SnapshotChanged>(bus, topics.snapshotUpdated(snapshotId), {
        current: async () => {
          const snapshot = await findVisible(scope, snapshotId);
          return { snapshotId: snapshot.id, status: snapshot.status };
        },
        isLast: (change) => !IN_FLIGHT.includes(change.status as SnapshotStatus),
      });
    },

    /** The rendered image or its thumbnail, uploaded by the node that holds the render. */
    async upload(actor: Actor, id: string, file: SnapshotFile, givenLease: unknown, bytes: Buffer): Promise<void> {
      const node = requireNode(actor);
      const snapshotId = parseInput(uuid, id, 'snapshot id');
      const { lease: held } = parseInput(uploadSchema, { lease: givenLease }, 'snapshot upload');
      if (bytes.length === 0) throw new ValidationError(`The ${file} is empty`, [{ path: 'body', message: 'must hold the file bytes' }]);
      if (!(await prisma.snapshot.findUnique({ where: { id: snapshotId }, select: { id: true } }))) {
        throw new NotFoundError('snapshot', snapshotId);
      }
      const command = await heldCommand(prisma, node.nodeId, { type: CommandType.render_snapshot, snapshotId }, held);
      await store.put(snapshotObjectKey(snapshotId, command.id, file), bytes, imageContentType(bytes));
    },

    /** The image and thumbnail are uploaded: every snapshot of the render is Cached. */
    async complete(actor: Actor, id: string, input: z.input<typeof completeSnapshotSchema>): Promise<void> {
      const node = requireNode(actor);
      const snapshotId = parseInput(uuid, id, 'snapshot id');
      const report = parseInput(completeSnapshotSchema, input, 'snapshot report');
      const now = clock.now();
      const changes = await prisma.$transaction(async (tx) => {
        const snapshot = await lockReported(tx, snapshotId);
        const command = await heldCommand(tx, node.nodeId, { type: CommandType.render_snapshot, snapshotId }, report.lease);
        const uploaded = await Promise.all(SNAPSHOT_FILES.map((file) => store.exists(snapshotObjectKey(snapshotId, command.id, file))));
        const missing = SNAPSHOT_FILES.filter((_, index) => !uploaded[index]);
        if (missing.length > 0) {
          throw new ValidationError(
            'Upload the image and the thumbnail before completing',
            missing.map((file) => ({ path: file, message: 'was not uploaded' })),
          );
        }
        const changed = await moveRender(tx, snapshot, IN_FLIGHT, {
          status: SnapshotStatus.Cached,
          nodeId: node.nodeId,
          imageKey: snapshotObjectKey(snapshotId, command.id, 'image'),
          thumbnailKey: snapshotObjectKey(snapshotId, command.id, 'thumbnail'),
          width: report.width,
          height: report.height,
          durationMs: report.durationMs,
          failedMessage: null,
          completedAt: now,
          expiresAt: new Date(now.getTime() + SNAPSHOT_TTL_DAYS * DAY_MS),
        });
        await finishWork(tx, node.nodeId, command.id, true, now);
        return changed;
      });
      await announce(changes);
    },

    /** The node could not render the still: every snapshot waiting for it is Failed. */
    async fail(actor: Actor, id: string, input: z.input<typeof failSnapshotSchema>): Promise<void> {
      const node = requireNode(actor);
      const snapshotId = parseInput(uuid, id, 'snapshot id');
      const report = parseInput(failSnapshotSchema, input, 'snapshot report');
      const now = clock.now();
      const { changes, commandId } = await prisma.$transaction(async (tx) => {
        const snapshot = await lockReported(tx, snapshotId);
        const command = await heldCommand(tx, node.nodeId, { type: CommandType.render_snapshot, snapshotId }, report.lease);
        const changed = await moveRender(tx, snapshot, IN_FLIGHT, {
          status: SnapshotStatus.Failed,
          nodeId: node.nodeId,
          failedMessage: report.error,
          completedAt: now,
        });
        await finishWork(tx, node.nodeId, command.id, false, now);
        return { changes: changed, commandId: command.id };
      });
      // No row points at a failed attempt's uploads.
      await Promise.all(SNAPSHOT_FILES.map((file) => store.delete(snapshotObjectKey(snapshotId, commandId, file))));
      await announce(changes);
    },
  };
}

export type SnapshotService = ReturnType<typeof createSnapshotService>;
