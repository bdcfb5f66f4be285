import { ConflictError, ValidationError } from '../domain/errors.ts';
import { HELD_TEMPLATES } from '../domain/nodes/templates.ts';
import { builder, idOfRow } from './builder.ts';
import { entityLoader } from './entity-loaders.ts';
import { NodeKindEnum, NodeStatusEnum } from './enums.ts';
import { withoutNulls } from './inputs.ts';

/** One wording for the figure wherever it shows (the node, its health, its history), so all three read alike. */
export const AE_MEMORY_DESCRIPTION = 'Megabytes of memory After Effects uses; null when the agent does not report it.';

export const RenderNodeRef = builder.prismaObject('RenderNode', {
  description: 'A render machine running After Effects and the node agent. Visible to admins only.',
  // Only the columns the query's fields need (see FrameJobRef).
  select: { id: true },
  fields: (t) => ({
    id: t.field(idOfRow),
    name: t.exposeString('name'),
    region: t.exposeString('region'),
    nodeIp: t.exposeString('nodeIp'),
    workerPort: t.exposeInt('workerPort'),
    status: t.expose('status', { type: NodeStatusEnum }),
    nodeKind: t.expose('nodeKind', { type: NodeKindEnum }),
    ownerUserId: t.expose('ownerUserId', { type: 'UUID', nullable: true }),
    currentAeVersion: t.exposeString('currentAeVersion'),
    availableAeVersions: t.exposeStringList('availableAeVersions'),
    nodeAgentVersion: t.exposeString('nodeAgentVersion', { nullable: true }),
    ramGb: t.exposeInt('ramGb'),
    cpuCores: t.exposeInt('cpuCores'),
    priority: t.exposeInt('priority'),
    isActive: t.exposeBoolean('isActive'),
    acceptsNewJobs: t.exposeBoolean('acceptsNewJobs'),
    lastHeartbeatAt: t.expose('lastHeartbeatAt', { type: 'DateTime', nullable: true }),
    currentJobId: t.expose('currentJobId', { type: 'UUID', nullable: true }),
    currentFrame: t.exposeInt('currentFrame', { nullable: true }),
    lastCpuPct: t.exposeInt('lastCpuPct'),
    lastRamAvailableMb: t.exposeInt('lastRamAvailableMb'),
    aeRunning: t.exposeBoolean('aeRunning'),
    lastAeMemoryMb: t.exposeInt('lastAeMemoryMb', { nullable: true, description: AE_MEMORY_DESCRIPTION }),
    cacheUsedGb: t.exposeInt('cacheUsedGb'),
    cachedTemplateCount: t.relationCount('templates', { where: HELD_TEMPLATES }),
    cachedTemplateMd5s: t.stringList({
      select: { templates: { where: HELD_TEMPLATES, select: { aepFileMd5: true }, orderBy: { aepFileMd5: 'asc' } } },
      resolve: (node) => node.templates.map((template) => template.aepFileMd5),
    }),
    lifetimeTaskCount: t.expose('lifetimeTaskCount', { type: 'BigInt' }),
    lifetimeCrashCount: t.exposeInt('lifetimeCrashCount'),
    consecutiveFailures: t.exposeInt('consecutiveFailures'),
    lastMaintenanceAt: t.expose('lastMaintenanceAt', { type: 'DateTime', nullable: true }),
    nextMaintenanceAt: t.expose('nextMaintenanceAt', { type: 'DateTime', nullable: true }),
    maintenanceReason: t.exposeString('maintenanceReason', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

/** Nodes by id, as many as a request asks for in one tick read in one query with the fields it selects. */
export const renderNodeById = entityLoader('render node', (ctx, ids, query) => ctx.services.nodes.getMany(ctx.actor, ids, query), 'RenderNode');

builder.asEntity(RenderNodeRef, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: renderNodeById,
});

builder.queryFields((t) => ({
  renderNodes: t.prismaField({
    type: [RenderNodeRef],
    description: 'Render nodes, by region and name (admin).',
    args: {
      region: t.arg.string({ required: false }),
      status: t.arg({ type: NodeStatusEnum, required: false }),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.prisma.renderNode.findMany({
        ...query,
        where: ctx.services.nodes.listWhere(ctx.actor, { region: args.region ?? undefined, status: args.status ?? undefined }),
        orderBy: [{ region: 'asc' }, { name: 'asc' }],
      }),
  }),
  renderNode: t.prismaField({
    type: RenderNodeRef,
    description: 'One render node (admin).',
    args: { id: t.arg({ type: 'UUID', required: true }) },
    resolve: (query, _root, args, ctx) => ctx.services.nodes.get(ctx.actor, args.id, query),
  }),
}));

const RegisterRenderNodeInput = builder.inputType('RegisterRenderNodeInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    region: t.string({ required: true }),
    nodeIp: t.string({ required: true }),
    workerPort: t.int({ required: true }),
    currentAeVersion: t.string({ required: true }),
    ramGb: t.int(),
    cpuCores: t.int(),
    nodeKind: t.field({ type: NodeKindEnum }),
    ownerUserId: t.field({ type: 'UUID' }),
    priority: t.int(),
  }),
});

const RegisteredRenderNode = builder
  .objectRef<{ node: { id: string }; agentKey: string }>('RegisteredRenderNode')
  .implement({
    fields: (t) => ({
      node: t.prismaField({
        type: RenderNodeRef,
        resolve: (query, parent, _args, ctx) =>
          ctx.prisma.renderNode.findUniqueOrThrow({ ...query, where: { id: parent.node.id } }),
      }),
      agentKey: t.exposeString('agentKey', {
        description: 'The key the node agent signs its requests with. Shown only in this answer.',
      }),
    }),
  });

builder.mutationFields((t) => ({
  registerRenderNode: t.field({
    type: RegisteredRenderNode,
    description: 'Registers a render node (admin).',
    args: { input: t.arg({ type: RegisterRenderNodeInput, required: true }) },
    errors: { types: [ValidationError, ConflictError] },
    resolve: (_root, { input }, ctx) =>
      ctx.services.nodes.register(ctx.actor, withoutNulls(input)),
  }),
}));
