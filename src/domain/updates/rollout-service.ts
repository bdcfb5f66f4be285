// Node software updates and their rollout in waves.
//
// A rollout sends an update to the chosen nodes in waves. Wave 0 is one canary node (the first
// the admin named); the other nodes follow in waves of a quarter of them (at least one node per
// wave). A wave's nodes get an `update_software` command and are Updating (no new work) until
// they report the update applied or failed.
//
// The next wave goes out only when every node of the current wave has applied the update (or
// was skipped, below), none of the updated nodes has crashed since it applied it, none is
// Offline, and the last of them applied it at least SOAK_SECONDS ago. A failed install, or a
// crash of any node that applied the update, halts the rollout: it is Halted with the reason,
// commands not yet acknowledged are withdrawn, and nothing more is sent. The rollout is Completed
// when the last wave has applied and soaked.
//
// A wave has WAVE_DEADLINE_MINUTES from when it was sent, so that a node that is Offline or never
// reports cannot hold the rollout forever. At the deadline, each node of the wave that has not
// reported is skipped: its target is Skipped with the reason (Offline when the node is Offline,
// else NoReport), its command is withdrawn if the agent has not acknowledged it, and it ends
// Updating (the status table then decides, and the heartbeat sweep finds a silent node Offline).
// A skipped node is sent nothing more by this rollout: one that comes back keeps the software it
// runs until a later rollout sends it the update. One that had taken the update and reports it
// after the deadline is still recorded, Applied or Failed (which halts a rollout in progress).
//
// Skipping must not hide a bad update, so at the deadline the rollout halts instead, its reason
// naming the nodes, when
// - the canary has not applied it: the next waves would go out with no node showing it works;
// - a node of the wave that applied it is Offline: the update may be what took it down;
// - more than MAX_SILENT_SHARE of the wave's nodes that received the update (their agent was
//   handed the command) did not report: then the update is the likely cause of their silence.
// Nodes that never received it (Offline since before their wave, or never asking for commands)
// are skipped however many they are: their silence says nothing about the update.
//
// A halted rollout withdraws the commands no agent took, but a node that took one and never
// reports would stay Updating for good: past its wave's deadline it is skipped the same way, and
// the rollout stays Halted.
//
// An update's file is either an object-store key (presigned when the command is sent) or a URL
// given as is; both are kept in `downloadKey`, a URL being recognised by its scheme (keys are
// validated never to contain one).
import { z } from 'zod';
import {
  CommandStatus,
  CommandType,
  type NodeUpdate,
  NodeStatus,
  type Prisma,
  type PrismaClient,
  type Rollout,
  RolloutSkipReason,
  RolloutStatus,
  type RolloutTarget,
  RolloutTargetStatus,
} from '../../generated/prisma/client.ts';
import type { Clock, EventBus, ObjectStore } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import { isUniqueViolation, type Tx } from '../db.ts';
import { ConflictError, InvalidStateError, NotFoundError, ValidationError } from '../errors.ts';
import { requireAdmin, requireNode } from '../guards.ts';
import { lock } from '../locks.ts';
import { moveNode, type NodeMove, publishNodeMoves } from '../nodes/node-status.ts';
import { parseInput, uuid } from '../validation.ts';

/** How long a wave must stay healthy after its last node applied the update before the next one goes. */
export const SOAK_SECONDS = 60;
/** Share of the non-canary nodes in each later wave. */
export const WAVE_SHARE = 0.25;
/**
 * How long a wave's nodes have to report the update, from when it was sent. An install (download,
 * stop the agent, install, start it again) takes minutes on a healthy node even over a slow link;
 * several times that is no longer slowness, and a fleet's five waves still end within hours
 * when some nodes never answer.
 */
export const WAVE_DEADLINE_MINUTES = 30;
/**
 * The largest share of a wave's nodes that received the update which may stay silent past the
 * deadline and be skipped. A farm loses the odd machine to its own troubles (switched off
 * mid-install, a network cut); more than a quarter of those that took the update is not chance.
 */
export const MAX_SILENT_SHARE = 0.25;
export const DOWNLOAD_URL_TTL_SECONDS = 24 * 3600;
export const MAX_ROLLOUT_NODES = 1000;

const OBJECT_KEY = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const isUrl = (location: string) => /^https?:\/\//i.test(location);

export const createUpdateSchema = z
  .strictObject({
    updateFileName: z.string().trim().min(1).max(255),
    updateNumber: z.number().int().min(1).max(2_147_483_647),
    description: z.string().trim().max(2000).optional(),
    targetAeVersion: z.string().trim().min(1).max(40),
    downloadKey: z.string().max(1024).regex(OBJECT_KEY, 'must be an object key (letters, digits, . _ - and /)').optional(),
    downloadUrl: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(2048).optional(),
    sha256: z
      .string()
      .regex(/^[a-f0-9]{64}$/i, 'must be a SHA-256 hex digest')
      .transform((value) => value.toLowerCase()),
  })
  .refine((input) => (input.downloadKey === undefined) !== (input.downloadUrl === undefined), {
    message: 'give either download_key or download_url',
    path: ['downloadKey'],
  });
export type CreateUpdateInput = z.input<typeof createUpdateSchema>;

export const rolloutSchema = z.strictObject({
  nodeIds: z.array(uuid).min(1).max(MAX_ROLLOUT_NODES),
});
export type RolloutInput = z.input<typeof rolloutSchema>;

const appliedSchema = z.strictObject({ nodeAgentVersion: z.string().trim().min(1).max(40) });
export type UpdateAppliedInput = z.input<typeof appliedSchema>;

const failedSchema = z.strictObject({ error: z.string().trim().min(1).max(4000) });
export type UpdateFailedInput = z.input<typeof failedSchema>;

/** Wave 0 is the first node alone; the rest go in waves of WAVE_SHARE of them, at least one each. */
export function planWaves(nodeIds: readonly string[]): string[][] {
  const [canary, ...rest] = nodeIds;
  if (canary === undefined) return [];
  const size = Math.max(1, Math.ceil(rest.length * WAVE_SHARE));
  const waves = [[canary]];
  for (let start = 0; start < rest.length; start += size) waves.push(rest.slice(start, start + size));
  return waves;
}

/** When the current wave's deadline passes (WAVE_DEADLINE_MINUTES after it was sent); null once the rollout ended. */
export function waveDeadlineAt(rollout: Pick<Rollout, 'status' | 'currentWave'> & { targets: Pick<RolloutTarget, 'wave' | 'sentAt'>[] }): Date | null {
  if (rollout.status !== RolloutStatus.InProgress) return null;
  const sentAt = rollout.targets.find((target) => target.wave === rollout.currentWave && target.sentAt)?.sentAt;
  return sentAt ? new Date(sentAt.getTime() + WAVE_DEADLINE_MINUTES * 60_000) : null;
}

/** The targets' fields waveDeadlineAt reads. */
export const WITH_WAVE_SENDS = { targets: { select: { wave: true, sentAt: true } } } satisfies Prisma.RolloutInclude;

/** Statuses of a target whose agent's report still counts: one skipped at its deadline may have installed the update all the same. */
const REPORTABLE: readonly RolloutTargetStatus[] = [RolloutTargetStatus.Sent, RolloutTargetStatus.Skipped];

type WaveTarget = Pick<RolloutTarget, 'nodeId' | 'status' | 'commandId'> & { node: { status: NodeStatus } };

/** A node of the wave that has not reported the update by the deadline. */
interface LateTarget {
  nodeId: string;
  commandId: string | null;
  reason: RolloutSkipReason;
  /** Its agent was handed the update command. */
  received: boolean;
}

/** A node of the wave that has not reported by the deadline, as a skip or a halt names it. */
function lateTarget(target: Pick<WaveTarget, 'nodeId' | 'commandId' | 'node'>, received: boolean): LateTarget {
  const reason = target.node.status === NodeStatus.Offline ? RolloutSkipReason.Offline : RolloutSkipReason.NoReport;
  return { nodeId: target.nodeId, commandId: target.commandId, reason, received };
}

const SKIP_WORDS: Record<RolloutSkipReason, string> = { Offline: 'offline', NoReport: 'no report' };

/** Why the rollout halts at the wave's deadline instead of skipping the late nodes (see the top); null when it skips them. */
function deadlineHaltReason(updateNumber: number, waveIndex: number, wave: readonly WaveTarget[], late: readonly LateTarget[]): string | null {
  const notUpdated = late.length > 0 ? ` Not updated: ${late.map((target) => `${target.nodeId} (${SKIP_WORDS[target.reason]})`).join(', ')}.` : '';
  const down = wave.filter((target) => target.status === RolloutTargetStatus.Applied && target.node.status === NodeStatus.Offline);
  if (down.length > 0) {
    const nodes = down.map((target) => target.nodeId).join(', ');
    return `Wave ${waveIndex} reached its deadline with nodes Offline after applying update ${updateNumber}: ${nodes}.${notUpdated}`;
  }
  if (waveIndex === 0 && late.length > 0) return `The canary did not apply update ${updateNumber} by its deadline.${notUpdated}`;
  const silent = late.filter((target) => target.received).length;
  const received = wave.length - (late.length - silent);
  if (silent > MAX_SILENT_SHARE * received) {
    return `${silent} of the ${received} nodes of wave ${waveIndex} that received update ${updateNumber} did not report it by the deadline.${notUpdated}`;
  }
  return null;
}

/** An update with the nodes that applied it, in any of its rollouts (see rolledOutNodeIds). */
export const WITH_APPLIED_TARGETS = {
  rollouts: {
    select: {
      targets: {
        where: { status: RolloutTargetStatus.Applied },
        select: { nodeId: true },
        orderBy: [{ appliedAt: 'asc' }, { nodeId: 'asc' }],
      },
    },
    orderBy: { createdAt: 'asc' },
  },
} satisfies Prisma.NodeUpdateInclude;

export function rolledOutNodeIds(update: { rollouts: { targets: { nodeId: string }[] }[] }): string[] {
  return [...new Set(update.rollouts.flatMap((rollout) => rollout.targets.map((target) => target.nodeId)))];
}

/** A rollout with its targets in wave order, as the transports show it. */
export const WITH_TARGETS = {
  targets: { orderBy: [{ wave: 'asc' }, { sentAt: 'asc' }, { nodeId: 'asc' }] },
} satisfies Prisma.RolloutInclude;
type RolloutArgs = { include?: Prisma.RolloutInclude; select?: Prisma.RolloutSelect };

export interface AdvanceResult {
  /** Rollouts that sent their next wave. */
  advanced: number;
  completed: number;
  halted: number;
  /** Nodes skipped at their wave's deadline. */
  skipped: number;
}

export interface RolloutServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  clock: Clock;
  store: ObjectStore;
}

export function createRolloutService({ prisma, bus, clock, store }: RolloutServiceDeps) {
  async function downloadUrl(update: NodeUpdate): Promise<string | null> {
    if (!update.downloadKey) return null;
    if (isUrl(update.downloadKey)) return update.downloadKey;
    return (await store.presignGet(update.downloadKey, DOWNLOAD_URL_TTL_SECONDS)).url;
  }

  async function lockRollout(tx: Tx, rolloutId: string) {
    await tx.$queryRaw`SELECT id FROM rollouts WHERE id = ${rolloutId}::uuid FOR UPDATE`;
  }

  /** Sends the update to one wave's nodes; answers the moves of those that became Updating. */
  async function sendWave(tx: Tx, rolloutId: string, update: NodeUpdate, wave: number, url: string | null, now: Date) {
    const targets = await tx.rolloutTarget.findMany({
      where: { rolloutId, wave, status: RolloutTargetStatus.Waiting },
      // In id order, as heartbeats lock nodes.
      orderBy: { nodeId: 'asc' },
    });
    const updating: NodeMove[] = [];
    for (const target of targets) {
      const command = await tx.nodeCommand.create({
        data: {
          nodeId: target.nodeId,
          type: CommandType.update_software,
          payload: {
            update_id: update.id,
            update_number: update.updateNumber,
            update_file_name: update.updateFileName,
            download_url: url,
            sha256: update.sha256,
          },
        },
      });
      await tx.rolloutTarget.update({
        where: { rolloutId_nodeId: { rolloutId, nodeId: target.nodeId } },
        data: { status: RolloutTargetStatus.Sent, commandId: command.id, sentAt: now },
      });
      // A node that is not running (Offline, Registered) or kept aside (Maintenance) keeps its
      // status, so the fleet view stays true; it gets the command when it next heartbeats.
      const moved = await moveNode(tx, target.nodeId, 'updateStarted');
      updating.push(moved);
    }
    return updating;
  }

  /** Withdraws those of the update commands no agent has acknowledged yet; answers them. */
  async function withdraw(tx: Tx, commandIds: string[]) {
    const unacknowledged = await tx.nodeCommand.findMany({
      where: { type: CommandType.update_software, status: CommandStatus.Pending, id: { in: commandIds } },
      select: { id: true, nodeId: true, deliveryCount: true },
    });
    await tx.nodeCommand.updateMany({
      where: { id: { in: unacknowledged.map((command) => command.id) } },
      data: { status: CommandStatus.Superseded },
    });
    return unacknowledged;
  }

  /** Ends the update of these nodes, in id order as heartbeats lock nodes, so the two never wait on each other in a cycle. */
  async function endUpdates(tx: Tx, nodeIds: Iterable<string>): Promise<NodeMove[]> {
    const moves: NodeMove[] = [];
    for (const nodeId of [...new Set(nodeIds)].sort()) moves.push(await endUpdating(tx, nodeId));
    return moves;
  }

  /**
   * Halts the rollout and withdraws its commands no node has acknowledged yet. `late` are the
   * nodes of a wave past its deadline, whose update ends whatever they received.
   */
  async function halt(tx: Tx, rolloutId: string, reason: string, late: readonly string[] = []) {
    await tx.rollout.update({ where: { id: rolloutId }, data: { status: RolloutStatus.Halted, haltReason: reason } });
    const unacknowledged = await withdraw(tx, await sentCommandIds(tx, rolloutId));
    // Nodes that never received the command are not installing anything, and late ones are not
    // waited for; the others are Updating until they report.
    const undelivered = unacknowledged.filter((command) => command.deliveryCount === 0).map((command) => command.nodeId);
    const reverted = await endUpdates(tx, [...undelivered, ...late]);
    await finishUpdateQueue(tx, rolloutId);
    return reverted;
  }

  /** Skips the late nodes of a wave: the rollout goes on without them. */
  async function skip(tx: Tx, rolloutId: string, late: readonly LateTarget[]) {
    await withdraw(tx, late.flatMap((target) => (target.commandId ? [target.commandId] : [])));
    for (const { nodeId, reason } of late) {
      await tx.rolloutTarget.update({
        where: { rolloutId_nodeId: { rolloutId, nodeId } },
        data: { status: RolloutTargetStatus.Skipped, skipReason: reason },
      });
    }
    return endUpdates(tx, late.map((target) => target.nodeId));
  }

  /**
   * At a wave's deadline: skips its nodes that have not reported the update, or halts the
   * rollout (see the top). Answers the nodes skipped, or null when it halted, and the node moves.
   */
  async function passDeadline(
    tx: Tx,
    rollout: { id: string; currentWave: number; update: NodeUpdate },
    wave: WaveTarget[],
  ): Promise<{ skipped: string[] | null; moves: NodeMove[] }> {
    const sent = wave.filter((target) => target.status === RolloutTargetStatus.Sent).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    const commandIds = sent.flatMap((target) => (target.commandId ? [target.commandId] : []));
    const received = new Set(
      (await tx.nodeCommand.findMany({ where: { id: { in: commandIds }, deliveryCount: { gt: 0 } }, select: { id: true } })).map((command) => command.id),
    );
    const late = sent.map((target) => lateTarget(target, target.commandId !== null && received.has(target.commandId)));
    const reason = deadlineHaltReason(rollout.update.updateNumber, rollout.currentWave, wave, late);
    const lateIds = late.map((target) => target.nodeId);
    if (reason) return { skipped: null, moves: await halt(tx, rollout.id, reason, lateIds) };
    return { skipped: lateIds, moves: await skip(tx, rollout.id, late) };
  }

  async function sentCommandIds(tx: Tx, rolloutId: string): Promise<string[]> {
    const targets = await tx.rolloutTarget.findMany({
      where: { rolloutId, commandId: { not: null } },
      select: { commandId: true },
    });
    return targets.map((target) => target.commandId as string);
  }

  async function finishUpdateQueue(tx: Tx, rolloutId: string) {
    const rollout = await tx.rollout.findUniqueOrThrow({ where: { id: rolloutId }, select: { updateId: true } });
    await tx.nodeUpdate.update({ where: { id: rollout.updateId }, data: { inUpdateQueue: false } });
  }

  /** The target of the latest rollout of this update to this node, locked with its rollout. */
  async function reportedTarget(tx: Tx, nodeId: string, updateId: string) {
    const target = await tx.rolloutTarget.findFirst({
      where: { nodeId, rollout: { updateId } },
      orderBy: { rollout: { createdAt: 'desc' } },
      select: { rolloutId: true },
    });
    if (!target) throw new NotFoundError('rollout of update to node', `${updateId}/${nodeId}`);
    await lockRollout(tx, target.rolloutId);
    return tx.rolloutTarget.findUniqueOrThrow({
      where: { rolloutId_nodeId: { rolloutId: target.rolloutId, nodeId } },
      include: { rollout: { include: { update: true } } },
    });
  }

  function parseReportIds(actor: Actor, nodeId: string, updateId: string) {
    requireNode(actor, nodeId);
    return { nodeId: parseInput(uuid, nodeId, 'node id'), updateId: parseInput(uuid, updateId, 'update id') };
  }

  /** Ends an Updating node's update: it runs (the new or the old software) and may take work again. */
  function endUpdating(tx: Tx, nodeId: string): Promise<NodeMove> {
    return moveNode(tx, nodeId, 'updateEnded');
  }

  return {
    async listUpdates<A extends { include?: Prisma.NodeUpdateInclude } = {}>(actor: Actor, args?: A) {
      requireAdmin(actor);
      const updates = await prisma.nodeUpdate.findMany({ ...args, orderBy: [{ updateNumber: 'desc' }] });
      return updates as Prisma.NodeUpdateGetPayload<A>[];
    },

    async createUpdate(actor: Actor, input: CreateUpdateInput) {
      requireAdmin(actor);
      const data = parseInput(createUpdateSchema, input, 'node update');
      try {
        return await prisma.nodeUpdate.create({
          data: {
            updateFileName: data.updateFileName,
            updateNumber: data.updateNumber,
            description: data.description ?? '',
            targetAeVersion: data.targetAeVersion,
            downloadKey: data.downloadKey ?? data.downloadUrl,
            sha256: data.sha256,
          },
        });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new ConflictError(`Update number ${data.updateNumber} already exists`, { update_number: data.updateNumber });
        }
        throw error;
      }
    },

    /** Plans the waves and sends the update to the canary. */
    async rollout<A extends RolloutArgs = {}>(actor: Actor, id: string, input: RolloutInput, args?: A) {
      const admin = requireAdmin(actor);
      const updateId = parseInput(uuid, id, 'update id');
      const { nodeIds } = parseInput(rolloutSchema, input, 'rollout');
      const problems = nodeIds.flatMap((nodeId, index) =>
        nodeIds.indexOf(nodeId) !== index ? [{ path: `nodeIds.${index}`, message: 'names a node already in the list' }] : [],
      );
      if (problems.length > 0) throw new ValidationError('Invalid rollout', problems);
      const known = new Set(
        (await prisma.renderNode.findMany({ where: { id: { in: nodeIds } }, select: { id: true } })).map((node) => node.id),
      );
      const unknown = nodeIds.flatMap((nodeId, index) =>
        known.has(nodeId) ? [] : [{ path: `nodeIds.${index}`, message: 'is not a registered node' }],
      );
      if (unknown.length > 0) throw new ValidationError('Invalid rollout', unknown);

      const update = await prisma.nodeUpdate.findUnique({ where: { id: updateId } });
      if (!update) throw new NotFoundError('node update', updateId);
      const url = await downloadUrl(update);
      const now = clock.now();
      const { rolloutId, updating } = await prisma.$transaction(async (tx) => {
        // Starting rollouts one at a time keeps both checks below true until this one is written.
        await lock(tx, 'rolloutStart');
        const running = await tx.rollout.findFirst({ where: { updateId, status: RolloutStatus.InProgress }, select: { id: true } });
        if (running) {
          throw new ConflictError(`Update ${update.updateNumber} is already rolling out`, { rollout_id: running.id });
        }
        const busy = await tx.rolloutTarget.findMany({
          where: { nodeId: { in: nodeIds }, rollout: { status: RolloutStatus.InProgress } },
          select: { nodeId: true },
        });
        if (busy.length > 0) {
          throw new ConflictError('Some nodes are in another rollout that is in progress', {
            node_ids: busy.map((target) => target.nodeId),
          });
        }
        const created = await tx.rollout.create({
          data: {
            updateId,
            createdBy: admin.userId,
            targets: {
              create: planWaves(nodeIds).flatMap((wave, index) => wave.map((nodeId) => ({ nodeId, wave: index }))),
            },
          },
        });
        await tx.nodeUpdate.update({ where: { id: updateId }, data: { inUpdateQueue: true } });
        const updating = await sendWave(tx, created.id, update, 0, url, now);
        return { rolloutId: created.id, updating };
      });
      await publishNodeMoves(bus, updating);
      const rollout = await prisma.rollout.findUniqueOrThrow({ ...args, where: { id: rolloutId } });
      return rollout as Prisma.RolloutGetPayload<A>;
    },

    async listRollouts<A extends RolloutArgs = {}>(actor: Actor, input: { updateId?: string } = {}, args?: A) {
      requireAdmin(actor);
      const updateId = input.updateId === undefined ? undefined : parseInput(uuid, input.updateId, 'update id');
      const rollouts = await prisma.rollout.findMany({ ...args, where: { updateId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
      return rollouts as Prisma.RolloutGetPayload<A>[];
    },

    /** The agent installed the update. Reporting it twice is harmless. */
    async applied(actor: Actor, node: string, update: string, input: UpdateAppliedInput): Promise<void> {
      const { nodeId, updateId } = parseReportIds(actor, node, update);
      const data = parseInput(appliedSchema, input, 'update report');
      const now = clock.now();
      const changed = await prisma.$transaction(async (tx) => {
        const target = await reportedTarget(tx, nodeId, updateId);
        if (target.status === RolloutTargetStatus.Applied) return null;
        if (!REPORTABLE.includes(target.status)) {
          throw new InvalidStateError(`The update was ${target.status === RolloutTargetStatus.Failed ? 'reported failed' : 'not sent'} to this node`, {
            status: target.status,
          });
        }
        await tx.rolloutTarget.update({
          where: { rolloutId_nodeId: { rolloutId: target.rolloutId, nodeId } },
          data: { status: RolloutTargetStatus.Applied, appliedAt: now, skipReason: null },
        });
        if (target.commandId) {
          await tx.nodeCommand.update({
            where: { id: target.commandId },
            data: { status: CommandStatus.Completed, completedAt: now, result: { node_agent_version: data.nodeAgentVersion } },
          });
        }
        await tx.renderNode.update({ where: { id: nodeId }, data: { nodeAgentVersion: data.nodeAgentVersion } });
        return endUpdating(tx, nodeId);
      });
      await publishNodeMoves(bus, [changed]);
    },

    /** The agent could not install the update: the rollout halts. Reporting it twice is harmless. */
    async failed(actor: Actor, node: string, update: string, input: UpdateFailedInput): Promise<void> {
      const { nodeId, updateId } = parseReportIds(actor, node, update);
      const data = parseInput(failedSchema, input, 'update report');
      const now = clock.now();
      const changed = await prisma.$transaction(async (tx) => {
        const target = await reportedTarget(tx, nodeId, updateId);
        if (target.status === RolloutTargetStatus.Failed) return [];
        if (!REPORTABLE.includes(target.status)) {
          throw new InvalidStateError(`The update was ${target.status === RolloutTargetStatus.Applied ? 'reported applied' : 'not sent'} to this node`, {
            status: target.status,
          });
        }
        await tx.rolloutTarget.update({
          where: { rolloutId_nodeId: { rolloutId: target.rolloutId, nodeId } },
          data: { status: RolloutTargetStatus.Failed, skipReason: null },
        });
        if (target.commandId) {
          await tx.nodeCommand.update({
            where: { id: target.commandId },
            data: { status: CommandStatus.Failed, completedAt: now, result: { error: data.error } },
          });
        }
        const released = await endUpdating(tx, nodeId);
        const withdrawn =
          target.rollout.status === RolloutStatus.InProgress
            ? await halt(tx, target.rolloutId, `Node ${nodeId} failed to apply update ${target.rollout.update.updateNumber}: ${data.error}`)
            : [];
        return [released, ...withdrawn];
      });
      await publishNodeMoves(bus, changed);
    },

    /** One pass over the rollouts in progress: halt, skip the late nodes of a wave, send the next wave, or finish. */
    async advanceRollouts(now: Date = clock.now()): Promise<AdvanceResult> {
      const result: AdvanceResult = { advanced: 0, completed: 0, halted: 0, skipped: 0 };
      const changed: NodeMove[] = [];
      await prisma.$transaction(async (tx) => {
        // Another replica's pass (or a report) holding a rollout takes care of it.
        const ids = await tx.$queryRaw<{ id: string }[]>`
          SELECT id FROM rollouts WHERE status = 'InProgress'::"RolloutStatus" ORDER BY created_at FOR UPDATE SKIP LOCKED`;
        for (const { id } of ids) {
          const rollout = await tx.rollout.findUniqueOrThrow({
            where: { id },
            include: { update: true, targets: { include: { node: { select: { status: true } } } } },
          });
          // A failed install halts the rollout when it is reported; crashes are only seen here.
          const applied = rollout.targets.filter((target) => target.status === RolloutTargetStatus.Applied);
          const crash =
            applied.length === 0
              ? null
              : await tx.nodeCrash.findFirst({
                  where: { OR: applied.map((target) => ({ nodeId: target.nodeId, crashedAt: { gte: target.appliedAt ?? undefined } })) },
                  orderBy: { crashedAt: 'asc' },
                });
          if (crash) {
            const reason = `Node ${crash.nodeId} crashed at ${crash.crashedAt.toISOString()} after applying update ${rollout.update.updateNumber}`;
            changed.push(...(await halt(tx, id, reason)));
            result.halted++;
            continue;
          }
          const wave = rollout.targets.filter((target) => target.wave === rollout.currentWave);
          const healthy = (target: (typeof wave)[number]) =>
            target.status === RolloutTargetStatus.Applied && target.node.status !== NodeStatus.Offline;
          const skipped = new Set(wave.filter((target) => target.status === RolloutTargetStatus.Skipped).map((target) => target.nodeId));
          const deadline = waveDeadlineAt(rollout);
          if (deadline && deadline <= now && wave.some((target) => !healthy(target) && !skipped.has(target.nodeId))) {
            const passed = await passDeadline(tx, rollout, wave);
            changed.push(...passed.moves);
            if (!passed.skipped) {
              result.halted++;
              continue;
            }
            for (const nodeId of passed.skipped) skipped.add(nodeId);
            result.skipped += passed.skipped.length;
          }
          const settled = wave.every(
            (target) =>
              skipped.has(target.nodeId) ||
              (healthy(target) && (target.appliedAt?.getTime() ?? Infinity) + SOAK_SECONDS * 1000 <= now.getTime()),
          );
          if (!settled) continue;
          const next = rollout.currentWave + 1;
          if (!rollout.targets.some((target) => target.wave === next)) {
            await tx.rollout.update({ where: { id }, data: { status: RolloutStatus.Completed } });
            await finishUpdateQueue(tx, id);
            result.completed++;
            continue;
          }
          await tx.rollout.update({ where: { id }, data: { currentWave: next } });
          changed.push(...(await sendWave(tx, id, rollout.update, next, await downloadUrl(rollout.update), now)));
          result.advanced++;
        }
        const overdue = new Date(now.getTime() - WAVE_DEADLINE_MINUTES * 60_000);
        const halted = await tx.$queryRaw<{ id: string }[]>`
          SELECT r.id FROM rollouts r
          WHERE r.status = 'Halted'::"RolloutStatus" AND EXISTS (
            SELECT 1 FROM rollout_targets t WHERE t.rollout_id = r.id AND t.status = 'Sent'::"RolloutTargetStatus" AND t.sent_at <= ${overdue})
          ORDER BY r.created_at FOR UPDATE SKIP LOCKED`;
        for (const { id } of halted) {
          const stranded = await tx.rolloutTarget.findMany({
            where: { rolloutId: id, status: RolloutTargetStatus.Sent, sentAt: { lte: overdue } },
            select: { nodeId: true, commandId: true, node: { select: { status: true } } },
          });
          // Whether each received the command matters only to the halt rule, which has ruled already.
          const late = stranded.map((target) => lateTarget(target, true));
          changed.push(...(await skip(tx, id, late)));
          result.skipped += late.length;
        }
      });
      await publishNodeMoves(bus, changed);
      return result;
    },
  };
}

export type RolloutService = ReturnType<typeof createRolloutService>;
