// What admins do to a node besides registering it: change its settings, restart it, take its
// work away, close After Effects, and read its health, crashes and commands.
//
// Settings never stop work that is running: a node made inactive, closed to new jobs or given a
// maintenance time finishes what it holds, and the scheduler simply gives it nothing new. Taking
// work away is explicit (release, restart), and re-cuts the node's chunks so that only frames
// never rendered are rendered again elsewhere.
import { z } from 'zod';
import { CommandStatus, CommandType, NodeKind, NodeStatus, type Prisma, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import type { Tx } from '../db.ts';
import { InvalidStateError, NotFoundError, ValidationError } from '../errors.ts';
import { type NodeChanged, topicEvents, topics } from '../events.ts';
import { requireAdmin, type UserActor } from '../guards.ts';
import { jobChanges } from '../jobs/job-changes.ts';
import { releaseNodeWork } from '../work/recut.ts';
import { MAX_PAGE_SIZE, parseInput, uuid } from '../validation.ts';
import { type HealthSample, healthHistory, type NodeHealth } from './health-history.ts';
import { moveNode, publishNodeMoves } from './node-status.ts';

/** Crash records answered per node, newest first. */
export const MAX_CRASHES = 200;
/** Commands answered per node when the caller names no number. */
export const DEFAULT_COMMANDS = 50;
const HOUR_MS = 3600_000;

// REST sends ISO strings, GraphQL's DateTime scalar sends Dates: both are checked as ISO.
const isoDate = z
  .preprocess((value) => (value instanceof Date && !Number.isNaN(value.getTime()) ? value.toISOString() : value), z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time' }))
  .transform((value) => new Date(value));

export const updateNodeSchema = z
  .strictObject({
    priority: z.number().int().min(-1000).max(1000).optional(),
    isActive: z.boolean().optional(),
    acceptsNewJobs: z.boolean().optional(),
    nodeKind: z.enum(NodeKind).optional(),
    ownerUserId: uuid.nullable().optional(),
    nextMaintenanceAt: isoDate.nullable().optional(),
    maintenanceReason: z.string().trim().max(500).nullable().optional(),
  })
  .refine((input) => Object.values(input).some((value) => value !== undefined), {
    message: 'name at least one field to change',
  });
export type UpdateNodeInput = z.input<typeof updateNodeSchema>;

export const maintenanceSchema = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });
export type MaintenanceInput = z.input<typeof maintenanceSchema>;

const historySchema = z.strictObject({ from: isoDate.optional(), to: isoDate.optional() });
export type HealthHistoryInput = z.input<typeof historySchema>;

// A node is sent a command per chunk it renders, so its list only grows: it is read a page at a
// time, capped as every page is.
const commandsSchema = z.strictObject({ first: z.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_COMMANDS) });
export type NodeCommandsInput = z.input<typeof commandsSchema>;

type NodeArgs = { include?: Prisma.RenderNodeInclude; select?: Prisma.RenderNodeSelect };
type CommandArgs = { include?: Prisma.NodeCommandInclude; select?: Prisma.NodeCommandSelect };

export interface NodeActionResult {
  nodeId: string;
  /** The command queued for the node, when the action sends one. */
  commandId: string | null;
  /** Chunks taken from the node and cut again for other nodes. */
  recutChunks: number;
}

export interface NodeAdminServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  clock: Clock;
}

export function createNodeAdminService({ prisma, bus, clock }: NodeAdminServiceDeps) {
  const changeJobs = jobChanges({ prisma, bus, clock });

  async function existingNode(actor: Actor, id: string) {
    const admin = requireAdmin(actor);
    const nodeId = parseInput(uuid, id, 'node id');
    const node = await prisma.renderNode.findUnique({ where: { id: nodeId } });
    if (!node) throw new NotFoundError('render node', nodeId);
    return { admin, node };
  }

  /** The node's row as the transport that asked shapes it. */
  async function shaped<A extends NodeArgs>(nodeId: string, args?: A): Promise<Prisma.RenderNodeGetPayload<A>> {
    const node = await prisma.renderNode.findUniqueOrThrow({ ...args, where: { id: nodeId } });
    return node as Prisma.RenderNodeGetPayload<A>;
  }

  /**
   * Queues a control command, replacing one of the same type still waiting: two clicks on
   * "restart" must not reboot the machine twice.
   */
  async function queueControl(tx: Tx, nodeId: string, type: CommandType, admin: UserActor) {
    await tx.nodeCommand.updateMany({
      where: { nodeId, type, status: CommandStatus.Pending },
      data: { status: CommandStatus.Superseded },
    });
    return tx.nodeCommand.create({ data: { nodeId, type, payload: { requested_by: admin.userId } } });
  }

  return {
    /** Changes the node's settings; work it is running carries on whatever they become. */
    async update<A extends NodeArgs = {}>(actor: Actor, id: string, input: UpdateNodeInput, args?: A) {
      const { node } = await existingNode(actor, id);
      const data = parseInput(updateNodeSchema, input, 'node changes');
      const updated = await prisma.renderNode.update({ ...args, where: { id: node.id }, data });
      return updated as Prisma.RenderNodeGetPayload<A>;
    },

    /**
     * Puts the node into maintenance (Maintenance): the work it runs carries on, and it is given
     * nothing new until maintenance ends, whatever it or its agent reports meanwhile. Asking again
     * changes nothing; a node installing an update is refused until its update ends.
     */
    async startMaintenance<A extends NodeArgs = {}>(actor: Actor, id: string, input: MaintenanceInput = {}, args?: A) {
      const { node } = await existingNode(actor, id);
      const { reason } = parseInput(maintenanceSchema, input, 'maintenance');
      const moved = await prisma.$transaction(async (tx) => {
        const moved = await moveNode(tx, node.id, 'maintenanceStarted');
        if (moved.to !== NodeStatus.Maintenance) {
          throw new InvalidStateError(`Render node ${node.id} is ${moved.from}; its maintenance can start once its update ends`, {
            node_id: node.id,
            status: moved.from,
          });
        }
        if (moved.from !== moved.to) {
          await tx.renderNode.update({ where: { id: node.id }, data: { lastMaintenanceAt: clock.now(), ...(reason ? { maintenanceReason: reason } : {}) } });
        }
        return moved;
      });
      await publishNodeMoves(bus, [moved]);
      return shaped(node.id, args);
    },

    /** Ends the node's maintenance: it is Online and takes work again once its agent heartbeats. */
    async endMaintenance<A extends NodeArgs = {}>(actor: Actor, id: string, args?: A) {
      const { node } = await existingNode(actor, id);
      const moved = await prisma.$transaction((tx) => moveNode(tx, node.id, 'maintenanceEnded'));
      if (moved.from === moved.to) {
        throw new InvalidStateError(`Render node ${node.id} is ${moved.from}, not in maintenance`, { node_id: node.id, status: moved.from });
      }
      await publishNodeMoves(bus, [moved]);
      return shaped(node.id, args);
    },

    /** Reboots the machine: its work moves to other nodes now, in the same transaction as the command. */
    async restart(actor: Actor, id: string): Promise<NodeActionResult> {
      const { admin, node } = await existingNode(actor, id);
      const { command, released } = await changeJobs(async (changes) => {
        const command = await queueControl(changes.tx, node.id, CommandType.restart, admin);
        const released = await releaseNodeWork(changes, node.id, 'the node is being restarted by an administrator');
        return { command, released };
      });
      return { nodeId: node.id, commandId: command.id, recutChunks: released.recutChunks };
    },

    /** Takes every piece of work away from the node; its late reports are refused as stale. */
    async release(actor: Actor, id: string): Promise<NodeActionResult> {
      const { node } = await existingNode(actor, id);
      const released = await changeJobs((changes) => releaseNodeWork(changes, node.id, 'released by an administrator'));
      return { nodeId: node.id, commandId: null, recutChunks: released.recutChunks };
    },

    /** Kills After Effects on the node. Its work stays assigned: the agent reports how it ends. */
    async closeAe(actor: Actor, id: string): Promise<NodeActionResult> {
      const { admin, node } = await existingNode(actor, id);
      const command = await prisma.$transaction((tx) => queueControl(tx, node.id, CommandType.close_ae, admin));
      return { nodeId: node.id, commandId: command.id, recutChunks: 0 };
    },

    /** The health the node reported last, as kept on the node row. */
    async health(actor: Actor, id: string): Promise<NodeHealth> {
      const { node } = await existingNode(actor, id);
      return {
        nodeId: node.id,
        recordedAt: node.lastHeartbeatAt,
        status: node.status,
        cpuPct: node.lastCpuPct,
        ramAvailableMb: node.lastRamAvailableMb,
        aeRunning: node.aeRunning,
        aeMemoryMb: node.lastAeMemoryMb,
        currentJobId: node.currentJobId,
        currentFrame: node.currentFrame,
        cacheUsedGb: node.cacheUsedGb,
      };
    },

    /** Samples between `from` and `to` (the last hour by default), oldest first, at whatever resolution is kept. */
    async healthHistory(actor: Actor, id: string, input: HealthHistoryInput = {}): Promise<HealthSample[]> {
      const { node } = await existingNode(actor, id);
      const range = parseInput(historySchema, input, 'health history range');
      const to = range.to ?? clock.now();
      const from = range.from ?? new Date(to.getTime() - HOUR_MS);
      if (from > to) throw new ValidationError('Invalid health history range', [{ path: 'from', message: 'must not be after `to`' }]);
      return healthHistory(prisma, node.id, from, to);
    },

    async crashes(actor: Actor, id: string) {
      const { node } = await existingNode(actor, id);
      return prisma.nodeCrash.findMany({
        where: { nodeId: node.id },
        orderBy: [{ crashedAt: 'desc' }, { id: 'desc' }],
        take: MAX_CRASHES,
      });
    },

    /** The node's latest commands, newest first, as the transport that asked shapes them. */
    async commands<A extends CommandArgs = {}>(actor: Actor, id: string, input: NodeCommandsInput = {}, args?: A) {
      const { node } = await existingNode(actor, id);
      const { first } = parseInput(commandsSchema, input, 'command listing');
      const commands = await prisma.nodeCommand.findMany({
        ...args,
        where: { nodeId: node.id },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: first,
      });
      return commands as Prisma.NodeCommandGetPayload<A>[];
    },

    /**
     * Every change of any node's status, for admins. Events naming a node this database does not
     * hold (another deployment sharing the bus) are skipped, so subscribers only hear of real nodes.
     */
    async watchStatus(actor: Actor): Promise<AsyncIterableIterator<NodeChanged>> {
      requireAdmin(actor);
      const events = await topicEvents<NodeChanged>(bus, topics.nodeStatusChanged);
      const known = async (event: NodeChanged) =>
        uuid.safeParse(event.nodeId).success && (await prisma.renderNode.count({ where: { id: event.nodeId } })) > 0;
      const iterator: AsyncIterableIterator<NodeChanged> = {
        async next() {
          for (;;) {
            const result = await events.next();
            if (result.done || (await known(result.value))) return result;
          }
        },
        // Straight to the source, so that a consumer leaving while no event comes still unsubscribes.
        return: () => events.return?.() ?? Promise.resolve({ value: undefined, done: true }),
        throw: (error) => events.throw?.(error) ?? Promise.reject(error),
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    },
  };
}

export type NodeAdminService = ReturnType<typeof createNodeAdminService>;
