import { NotFoundError, ValidationError } from '../domain/errors.ts';
import { SNAPSHOT_TTL_DAYS, type SnapshotView } from '../domain/snapshots/snapshot-service.ts';
import { SnapshotStatus } from '../generated/prisma/enums.ts';
import { builder } from './builder.ts';
import { entityLoader } from './entity-loaders.ts';

const SnapshotStatusEnum = builder.enumType(SnapshotStatus, { name: 'SnapshotStatus' });

const SnapshotRef = builder.objectRef<SnapshotView>('Snapshot').implement({
  description: `A still of one frame of a saved project's scene. Once Cached it serves identical requests for ${SNAPSHOT_TTL_DAYS} days.`,
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    userId: t.expose('userId', { type: 'UUID' }),
    savedProjectId: t.expose('savedProjectId', { type: 'UUID' }),
    sceneKey: t.exposeString('sceneKey'),
    frameNumber: t.exposeInt('frameNumber'),
    status: t.expose('status', { type: SnapshotStatusEnum }),
    imageUrl: t.exposeString('imageUrl', {
      nullable: true,
      description: 'A short-lived URL of the image while it is Cached and not expired; ask again for a fresh one.',
    }),
    thumbnailUrl: t.exposeString('thumbnailUrl', { nullable: true, description: 'Like imageUrl, for the thumbnail.' }),
    width: t.exposeInt('width', { nullable: true }),
    height: t.exposeInt('height', { nullable: true }),
    durationMs: t.exposeInt('durationMs', { nullable: true, description: 'How long the node took to render it.' }),
    failedMessage: t.exposeString('failedMessage', { nullable: true }),
    requestedAt: t.expose('requestedAt', { type: 'DateTime' }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'Null until Cached.' }),
  }),
});

builder.asEntity(SnapshotRef, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: entityLoader('snapshot', (ctx, ids) => ctx.services.snapshots.getMany(ctx.actor, ids)),
});

const RequestSnapshotInput = builder.inputType('RequestSnapshotInput', {
  fields: (t) => ({
    savedProjectId: t.field({ type: 'UUID', required: true }),
    sceneKey: t.string({ required: true }),
    frameNumber: t.int({ required: true }),
  }),
});

builder.queryFields((t) => ({
  snapshot: t.field({
    type: SnapshotRef,
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: (_root, args, ctx) => ctx.services.snapshots.get(ctx.actor, args.id),
  }),
}));

builder.mutationFields((t) => ({
  requestSnapshot: t.field({
    type: SnapshotRef,
    description:
      'Asks for a still of one frame. Answers at once: Cached with image URLs when a valid image exists, else Pending (or Rendering) until a node renders it; watch it with snapshotUpdated.',
    args: { input: t.arg({ type: RequestSnapshotInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError] },
    resolve: (_root, { input }, ctx) => ctx.services.snapshots.request(ctx.actor, input),
  }),
}));

builder.subscriptionFields((t) => ({
  snapshotUpdated: t.field({
    type: SnapshotRef,
    description: 'Every change of a snapshot, starting with where it stands now; completes after Cached or Failed.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    subscribe: (_root, args, ctx) => ctx.services.snapshots.watch(ctx.actor, args.id),
    // The row is re-read rather than taken from the event, so a subscriber whose events queued
    // up, or that subscribed as the render finished, still ends on the final state.
    resolve: (_event, args, ctx) => ctx.services.snapshots.get(ctx.actor, args.id),
  }),
}));
