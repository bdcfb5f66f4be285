import { InvalidStateError, NotFoundError, ValidationError } from '../domain/errors.ts';
import type { NodeChanged } from '../domain/events.ts';
import type { HealthSample, NodeHealth } from '../domain/nodes/health-history.ts';
import { DEFAULT_COMMANDS, MAX_CRASHES, type NodeActionResult } from '../domain/nodes/node-admin-service.ts';
import { MAX_PAGE_SIZE } from '../domain/validation.ts';
import { builder, idOfRow } from './builder.ts';
import { CrashActionEnum, NodeCommandStatusEnum, NodeCommandTypeEnum, NodeKindEnum, NodeStatusEnum } from './enums.ts';
import { withoutNulls } from './inputs.ts';
import { AE_MEMORY_DESCRIPTION, RenderNodeRef } from './render-node.ts';

const NodeHealthRef = builder.objectRef<NodeHealth>('NodeHealth').implement({
  description: 'What a node reported in its last heartbeat.',
  fields: (t) => ({
    nodeId: t.expose('nodeId', { type: 'UUID' }),
    recordedAt: t.expose('recordedAt', { type: 'DateTime', nullable: true, description: 'Null until the first heartbeat.' }),
    status: t.expose('status', { type: NodeStatusEnum }),
    cpuPct: t.exposeInt('cpuPct'),
    ramAvailableMb: t.exposeInt('ramAvailableMb'),
    aeRunning: t.exposeBoolean('aeRunning'),
    aeMemoryMb: t.exposeInt('aeMemoryMb', { nullable: true, description: AE_MEMORY_DESCRIPTION }),
    currentJobId: t.expose('currentJobId', { type: 'UUID', nullable: true }),
    currentFrame: t.exposeInt('currentFrame', { nullable: true }),
    cacheUsedGb: t.exposeInt('cacheUsedGb'),
  }),
});

const NodeHealthSampleRef = builder.objectRef<HealthSample>('NodeHealthSample').implement({
  description:
    'A health sample: raw (bucketSeconds 0, kept 1 hour), a 1-minute bucket (kept 24 hours) or a 1-hour bucket (kept 30 days). ' +
    'A bucket starts at recordedAt and holds average CPU, RAM and After Effects memory (over the samples that report it), ' +
    'the last status and whether After Effects ran at all.',
  fields: (t) => ({
    nodeId: t.expose('nodeId', { type: 'UUID' }),
    recordedAt: t.expose('recordedAt', { type: 'DateTime' }),
    bucketSeconds: t.exposeInt('bucketSeconds'),
    status: t.expose('status', { type: NodeStatusEnum }),
    cpuPct: t.exposeInt('cpuPct'),
    ramAvailableMb: t.exposeInt('ramAvailableMb'),
    aeRunning: t.exposeBoolean('aeRunning'),
    aeMemoryMb: t.exposeInt('aeMemoryMb', { nullable: true, description: AE_MEMORY_DESCRIPTION }),
    currentJobId: t.expose('currentJobId', { type: 'UUID', nullable: true }),
    currentFrame: t.exposeInt('currentFrame', { nullable: true }),
    cacheUsedGb: t.exposeInt('cacheUsedGb'),
  }),
});

const NodeCrashRef = builder.prismaObject('NodeCrash', {
  description: 'After Effects crashing on a node, as its agent reported it.',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    nodeId: t.expose('nodeId', { type: 'UUID' }),
    renderJobId: t.expose('renderJobId', { type: 'UUID', nullable: true }),
    frameJobId: t.expose('frameJobId', { type: 'UUID', nullable: true }),
    crashedAt: t.expose('crashedAt', { type: 'DateTime' }),
    lastKnownFrame: t.exposeInt('lastKnownFrame', { nullable: true }),
    crashSignal: t.exposeString('crashSignal'),
    aeVersion: t.exposeString('aeVersion', { nullable: true }),
    errorLog: t.exposeString('errorLog'),
    logFileUrl: t.exposeString('logFileUrl'),
    autoRecovered: t.exposeBoolean('autoRecovered'),
    recoveryAction: t.expose('recoveryAction', { type: CrashActionEnum, nullable: true }),
    reassignedToNodeId: t.expose('reassignedToNodeId', { type: 'UUID', nullable: true }),
    recoveredAt: t.expose('recoveredAt', { type: 'DateTime', nullable: true }),
  }),
});

// No payload and no lease: a payload may carry download URLs, and a lease is what lets an agent
// report on its work. `select` leaves them unread.
const NodeCommandRef = builder.prismaObject('NodeCommand', {
  description: 'A work or control message for a node, delivered in its heartbeat answers until it acknowledges it.',
  select: { id: true },
  fields: (t) => ({
    id: t.field(idOfRow),
    nodeId: t.expose('nodeId', { type: 'UUID' }),
    type: t.expose('type', { type: NodeCommandTypeEnum }),
    status: t.expose('status', { type: NodeCommandStatusEnum }),
    renderJobId: t.expose('renderJobId', { type: 'UUID', nullable: true }),
    frameJobId: t.expose('frameJobId', { type: 'UUID', nullable: true }),
    deliveryCount: t.exposeInt('deliveryCount', { description: 'Heartbeat answers that carried the command.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true, description: 'The latest delivery.' }),
    acknowledgedAt: t.expose('acknowledgedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    result: t.field({
      type: 'JSONObject',
      nullable: true,
      description: 'What the node reported when the command ended, for the commands that report something.',
      select: { result: true },
      resolve: (command) => command.result as Record<string, unknown> | null,
    }),
  }),
});

const RenderNodeActionRef = builder.objectRef<NodeActionResult>('RenderNodeAction').implement({
  description: 'What an admin action on a node did.',
  fields: (t) => ({
    node: t.prismaField({
      type: RenderNodeRef,
      resolve: (query, result, _args, ctx) => ctx.prisma.renderNode.findUniqueOrThrow({ ...query, where: { id: result.nodeId } }),
    }),
    commandId: t.expose('commandId', {
      type: 'UUID',
      nullable: true,
      description: 'The command queued for the node; it is delivered with its next heartbeat.',
    }),
    recutChunks: t.exposeInt('recutChunks', { description: 'Chunks taken from the node and cut again for other nodes.' }),
  }),
});

builder.queryFields((t) => ({
  renderNodeHealth: t.field({
    type: NodeHealthRef,
    description: "A node's latest health (admin).",
    args: { nodeId: t.arg({ type: 'UUID', required: true }) },
    resolve: (_root, args, ctx) => ctx.services.nodeAdmin.health(ctx.actor, args.nodeId),
  }),
  renderNodeHealthHistory: t.field({
    type: [NodeHealthSampleRef],
    description: "A node's health samples between from and to (default: the last hour), oldest first (admin).",
    args: {
      nodeId: t.arg({ type: 'UUID', required: true }),
      from: t.arg({ type: 'DateTime', required: false }),
      to: t.arg({ type: 'DateTime', required: false }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.nodeAdmin.healthHistory(ctx.actor, args.nodeId, { from: args.from ?? undefined, to: args.to ?? undefined }),
  }),
  renderNodeCrashes: t.field({
    type: [NodeCrashRef],
    description: `A node's crashes, newest first, at most the latest ${MAX_CRASHES} (admin).`,
    args: { nodeId: t.arg({ type: 'UUID', required: true }) },
    resolve: (_root, args, ctx) => ctx.services.nodeAdmin.crashes(ctx.actor, args.nodeId),
  }),
  renderNodeCommands: t.prismaField({
    type: [NodeCommandRef],
    description: `A node's latest commands, newest first: \`first\` of them, 1 to ${MAX_PAGE_SIZE} (admin).`,
    args: {
      nodeId: t.arg({ type: 'UUID', required: true }),
      first: t.arg.int({ defaultValue: DEFAULT_COMMANDS }),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.services.nodeAdmin.commands(ctx.actor, args.nodeId, { first: args.first ?? undefined }, query),
  }),
}));

const UpdateRenderNodeInput = builder.inputType('UpdateRenderNodeInput', {
  description: 'The settings to change; omitted fields stay as they are. Null clears the owner, the maintenance time and its reason.',
  fields: (t) => ({
    priority: t.int(),
    isActive: t.boolean(),
    acceptsNewJobs: t.boolean(),
    nodeKind: t.field({ type: NodeKindEnum }),
    ownerUserId: t.field({ type: 'UUID' }),
    nextMaintenanceAt: t.field({ type: 'DateTime' }),
    maintenanceReason: t.string(),
  }),
});

builder.mutationFields((t) => ({
  updateRenderNode: t.prismaField({
    type: RenderNodeRef,
    description: "Changes a node's settings (admin). Work it is running carries on.",
    args: { id: t.arg({ type: 'UUID', required: true }), input: t.arg({ type: UpdateRenderNodeInput, required: true }) },
    errors: { types: [ValidationError, NotFoundError] },
    resolve: (query, _root, { id, input }, ctx) => {
      const { ownerUserId, nextMaintenanceAt, maintenanceReason, ...settings } = input;
      return ctx.services.nodeAdmin.update(
        ctx.actor,
        id,
        { ...withoutNulls(settings), ownerUserId, nextMaintenanceAt, maintenanceReason },
        query,
      );
    },
  }),
  startRenderNodeMaintenance: t.prismaField({
    type: RenderNodeRef,
    description:
      'Puts a node into maintenance (admin): the work it runs carries on, it is given nothing new until maintenance ends. ' +
      'A node a rollout is updating is refused until its update ends.',
    args: { id: t.arg({ type: 'UUID', required: true }), reason: t.arg.string() },
    errors: { types: [ValidationError, NotFoundError, InvalidStateError] },
    resolve: (query, _root, { id, reason }, ctx) => ctx.services.nodeAdmin.startMaintenance(ctx.actor, id, { reason: reason ?? undefined }, query),
  }),
  endRenderNodeMaintenance: t.prismaField({
    type: RenderNodeRef,
    description: "Ends a node's maintenance (admin): it is Online and takes work again once its agent heartbeats.",
    args: { id: t.arg({ type: 'UUID', required: true }) },
    errors: { types: [ValidationError, NotFoundError, InvalidStateError] },
    resolve: (query, _root, { id }, ctx) => ctx.services.nodeAdmin.endMaintenance(ctx.actor, id, query),
  }),
  restartRenderNode: t.field({
    type: RenderNodeActionRef,
    description: 'Reboots the node (admin); its work moves to other nodes at once.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    errors: { types: [ValidationError, NotFoundError] },
    resolve: (_root, args, ctx) => ctx.services.nodeAdmin.restart(ctx.actor, args.id),
  }),
  releaseRenderNode: t.field({
    type: RenderNodeActionRef,
    description: 'Takes all work away from the node (admin): only frames it never rendered are rendered again.',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    errors: { types: [ValidationError, NotFoundError] },
    resolve: (_root, args, ctx) => ctx.services.nodeAdmin.release(ctx.actor, args.id),
  }),
  closeRenderNodeAe: t.field({
    type: RenderNodeActionRef,
    description: 'Kills After Effects on the node (admin).',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    errors: { types: [ValidationError, NotFoundError] },
    resolve: (_root, args, ctx) => ctx.services.nodeAdmin.closeAe(ctx.actor, args.id),
  }),
}));

builder.subscriptionFields((t) => ({
  nodeStatusChanged: t.prismaField({
    type: RenderNodeRef,
    description: "Every change of any render node's status (admin).",
    subscribe: (_root, _args, ctx) => ctx.services.nodeAdmin.watchStatus(ctx.actor),
    resolve: (query, event: NodeChanged, _args, ctx) =>
      ctx.prisma.renderNode.findUniqueOrThrow({ ...query, where: { id: event.nodeId } }),
  }),
}));
