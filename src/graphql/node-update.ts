import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.ts';
import { rolledOutNodeIds, WITH_APPLIED_TARGETS, WITH_WAVE_SENDS, waveDeadlineAt } from '../domain/updates/rollout-service.ts';
import { RolloutSkipReason, RolloutStatus, RolloutTargetStatus } from '../generated/prisma/enums.ts';
import { builder } from './builder.ts';
import { withoutNulls } from './inputs.ts';

const RolloutStatusEnum = builder.enumType(RolloutStatus, { name: 'RolloutStatus' });
const RolloutTargetStatusEnum = builder.enumType(RolloutTargetStatus, { name: 'RolloutTargetStatus' });
const RolloutSkipReasonEnum = builder.enumType(RolloutSkipReason, {
  name: 'RolloutSkipReason',
  description: "Why a rollout went on without a node at its wave's deadline: the node was Offline, or it had not reported the update.",
});

const NodeUpdateRef = builder.prismaObject('NodeUpdate', {
  description: 'A release of the node agent software that can be rolled out to nodes (admin).',
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    updateFileName: t.exposeString('updateFileName'),
    updateNumber: t.exposeInt('updateNumber'),
    description: t.exposeString('description'),
    targetAeVersion: t.exposeString('targetAeVersion'),
    inUpdateQueue: t.exposeBoolean('inUpdateQueue', { description: 'True while a rollout of it is in progress.' }),
    sha256: t.exposeString('sha256', { nullable: true }),
    rolledOutToNodeIds: t.field({
      type: ['UUID'],
      description: 'Nodes that applied this update.',
      select: WITH_APPLIED_TARGETS,
      resolve: (update) => rolledOutNodeIds(update),
    }),
    createDate: t.expose('createDate', { type: 'DateTime' }),
  }),
});

builder.prismaObject('RolloutTarget', {
  fields: (t) => ({
    nodeId: t.expose('nodeId', { type: 'UUID' }),
    node: t.relation('node'),
    wave: t.exposeInt('wave', { description: 'Wave 0 is the canary.' }),
    status: t.expose('status', { type: RolloutTargetStatusEnum }),
    commandId: t.expose('commandId', { type: 'UUID', nullable: true }),
    sentAt: t.expose('sentAt', { type: 'DateTime', nullable: true }),
    appliedAt: t.expose('appliedAt', { type: 'DateTime', nullable: true }),
    skipReason: t.expose('skipReason', {
      type: RolloutSkipReasonEnum,
      nullable: true,
      description: 'Why the node was skipped (status Skipped): the rollout sends it nothing more. Null for other statuses.',
    }),
  }),
});

const RolloutRef = builder.prismaObject('Rollout', {
  description:
    "An update sent to chosen nodes in waves: a canary first, each next wave once the previous one stayed healthy, going on without the nodes that had not reported by the wave's deadline.",
  fields: (t) => ({
    id: t.expose('id', { type: 'UUID' }),
    updateId: t.expose('updateId', { type: 'UUID' }),
    update: t.relation('update'),
    status: t.expose('status', { type: RolloutStatusEnum }),
    currentWave: t.exposeInt('currentWave'),
    createdBy: t.exposeString('createdBy', { nullable: true }),
    haltReason: t.exposeString('haltReason', { nullable: true, description: 'Why it halted, naming the nodes the update could not be applied to.' }),
    waveDeadlineAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        "When the current wave's nodes that have not reported the update are skipped, or the rollout halts (the canary's, or too many silent nodes). Null once the rollout ended.",
      select: WITH_WAVE_SENDS,
      resolve: (rollout) => waveDeadlineAt(rollout),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    targets: t.relation('targets', { query: { orderBy: [{ wave: 'asc' }, { sentAt: 'asc' }, { nodeId: 'asc' }] } }),
  }),
});

builder.queryFields((t) => ({
  nodeUpdates: t.prismaField({
    type: [NodeUpdateRef],
    description: 'Node software updates, newest first (admin).',
    resolve: (query, _root, _args, ctx) => ctx.services.updates.listUpdates(ctx.actor, query),
  }),
  rollouts: t.prismaField({
    type: [RolloutRef],
    description: 'Rollouts of node updates, newest first, of one update when updateId is given (admin).',
    args: { updateId: t.arg({ type: 'UUID', required: false }) },
    resolve: (query, _root, args, ctx) => ctx.services.updates.listRollouts(ctx.actor, { updateId: args.updateId ?? undefined }, query),
  }),
}));

const CreateNodeUpdateInput = builder.inputType('CreateNodeUpdateInput', {
  fields: (t) => ({
    updateFileName: t.string({ required: true }),
    updateNumber: t.int({ required: true }),
    description: t.string(),
    targetAeVersion: t.string({ required: true }),
    downloadKey: t.string({ description: 'Object-store key of the installer. Give this or downloadUrl.' }),
    downloadUrl: t.string({ description: 'Where agents download the installer from. Give this or downloadKey.' }),
    sha256: t.string({ required: true }),
  }),
});

builder.mutationFields((t) => ({
  createNodeUpdate: t.prismaField({
    type: NodeUpdateRef,
    description: 'Publishes a node software update (admin).',
    args: { input: t.arg({ type: CreateNodeUpdateInput, required: true }) },
    errors: { types: [ValidationError, ConflictError] },
    resolve: async (query, _root, { input }, ctx) => {
      const update = await ctx.services.updates.createUpdate(ctx.actor, withoutNulls(input));
      return ctx.prisma.nodeUpdate.findUniqueOrThrow({ ...query, where: { id: update.id } });
    },
  }),
  rolloutNodeUpdate: t.prismaField({
    type: RolloutRef,
    description: 'Rolls the update out to the nodes, the first one as the canary (admin).',
    args: {
      updateId: t.arg({ type: 'UUID', required: true }),
      nodeIds: t.arg({ type: ['UUID'], required: true }),
    },
    errors: { types: [ValidationError, NotFoundError, ConflictError] },
    resolve: (query, _root, args, ctx) => ctx.services.updates.rollout(ctx.actor, args.updateId, { nodeIds: args.nodeIds }, query),
  }),
}));
