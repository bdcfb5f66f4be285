import { z } from 'zod';
import { deriveAgentKey } from '../../adapters/auth/agent-signature.ts';
import { FrameJobStatus, JobStep, NodeKind, NodeStatus, Prisma, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import { isUniqueViolation } from '../db.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts';
import { publishNodeStatusChanged } from '../events.ts';
import { requireAdmin, requireNode } from '../guards.ts';
import { parseInput, uuid, uuidsAmong } from '../validation.ts';

export const DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 5;
/** While work waits for a free node, or a node was just given commands, it checks back sooner. */
export const BUSY_HEARTBEAT_INTERVAL_SECONDS = 1;
/** How long one replica trusts its last look at the queue when answering heartbeats. */
const WORK_WAITING_CACHE_MS = 1000;

/** Templates a node can render from its cache right now (a failed download does not count). */
export const HELD_TEMPLATES = { state: { in: ['Downloaded', 'Verified'] } } satisfies Prisma.NodeTemplateCacheWhereInput;

const aeVersion = z.string().trim().min(1).max(40);
const templateMd5 = z.string().regex(/^[a-f0-9]{32}$/i, 'must be an md5 hex digest').transform((v) => v.toLowerCase());

export const registerNodeSchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  region: z.string().trim().regex(/^[a-z0-9][a-z0-9-]{0,49}$/i, 'must be letters, digits and dashes (max 50)'),
  nodeIp: z.union([z.ipv4(), z.ipv6()], { message: 'must be an IPv4 or IPv6 address' }),
  workerPort: z.number().int().min(1).max(65535),
  currentAeVersion: aeVersion,
  ramGb: z.number().int().min(0).max(65536).optional(),
  cpuCores: z.number().int().min(0).max(4096).optional(),
  nodeKind: z.enum(NodeKind).optional(),
  ownerUserId: uuid.optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
});
export type RegisterNodeInput = z.input<typeof registerNodeSchema>;

export const listNodesSchema = z.strictObject({
  region: z.string().trim().min(1).max(50).optional(),
  status: z.enum(NodeStatus).optional(),
});
export type ListNodesInput = z.input<typeof listNodesSchema>;

export const nodeOnlineSchema = z.strictObject({
  nodeAgentVersion: z.string().trim().min(1).max(40).optional(),
  currentAeVersion: aeVersion.optional(),
  availableAeVersions: z.array(aeVersion).max(50).optional(),
  ramGb: z.number().int().min(0).max(65536).optional(),
  cpuCores: z.number().int().min(0).max(4096).optional(),
  cacheUsedGb: z.number().int().min(0).max(1_000_000).optional(),
  cachedTemplateMd5s: z.array(templateMd5).max(10_000).optional(),
});
export type NodeOnlineInput = z.input<typeof nodeOnlineSchema>;

/** What a node may say about itself in a heartbeat; administrative states are not its to set. */
const reportedStatus = z.enum([NodeStatus.Online, NodeStatus.Busy]);

export const heartbeatSchema = z.strictObject({
  nodeId: uuid.optional(),
  recordedAt: z.iso.datetime({ offset: true }).optional(),
  status: reportedStatus.optional(),
  cpuPct: z.number().int().min(0).max(100).optional(),
  ramAvailableMb: z.number().int().min(0).max(100_000_000).optional(),
  aeRunning: z.boolean().optional(),
  currentJobId: uuid.nullable().optional(),
  currentFrame: z.number().int().min(0).max(10_000_000).nullable().optional(),
  cacheUsedGb: z.number().int().min(0).max(1_000_000).optional(),
});
export type HeartbeatInput = z.input<typeof heartbeatSchema>;

export interface HeartbeatAnswer {
  nextHeartbeatInSec: number;
  pendingCommands: Array<Record<string, unknown>>;
}

/** Maintenance and Updating are set by admins and rollouts; contact from the agent does not end them. */
const ADMINISTRATIVE_STATES: NodeStatus[] = [NodeStatus.Maintenance, NodeStatus.Updating];

function statusAfterContact(current: NodeStatus, reported: NodeStatus | undefined): NodeStatus {
  if (ADMINISTRATIVE_STATES.includes(current)) return current;
  return reported ?? (current === NodeStatus.Busy ? NodeStatus.Busy : NodeStatus.Online);
}

type NodeArgs = { include?: Prisma.RenderNodeInclude; select?: Prisma.RenderNodeSelect };

export interface NodeServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  clock: Clock;
  nodeHmacSecret: string;
}

export function createNodeService({ prisma, bus, clock, nodeHmacSecret }: NodeServiceDeps) {
  async function findNodeOrThrow<A extends NodeArgs = {}>(id: string, args?: A): Promise<Prisma.RenderNodeGetPayload<A>> {
    const nodeId = parseInput(uuid, id, 'node id');
    const node = await prisma.renderNode.findUnique({ ...args, where: { id: nodeId } });
    if (!node) throw new NotFoundError('render node', nodeId);
    return node as Prisma.RenderNodeGetPayload<A>;
  }

  let workWaitingSeen: { at: number; waiting: boolean } | undefined;
  /** Whether any job waits for a node; cached briefly, since every heartbeat asks. */
  async function workWaiting(): Promise<boolean> {
    const now = clock.now().getTime();
    if (workWaitingSeen && now - workWaitingSeen.at < WORK_WAITING_CACHE_MS) return workWaitingSeen.waiting;
    const [job, chunk] = await Promise.all([
      prisma.renderJob.findFirst({ where: { step: { in: [JobStep.Queued, JobStep.Encoding] } }, select: { id: true } }),
      prisma.frameJob.findFirst({ where: { status: FrameJobStatus.Pending }, select: { id: true } }),
    ]);
    workWaitingSeen = { at: now, waiting: job !== null || chunk !== null };
    return workWaitingSeen.waiting;
  }

  function listWhere(actor: Actor, input: ListNodesInput = {}): Prisma.RenderNodeWhereInput {
    requireAdmin(actor);
    const filters = parseInput(listNodesSchema, input, 'node filters');
    return { region: filters.region, status: filters.status };
  }

  async function changeStatusFromContact(nodeId: string, previous: NodeStatus, next: NodeStatus) {
    if (previous !== next) await publishNodeStatusChanged(bus, { nodeId, status: next });
  }

  return {
    /** Registers a node. The agent key is derived, never stored, and only this answer shows it. */
    async register(actor: Actor, input: RegisterNodeInput) {
      requireAdmin(actor);
      const data = parseInput(registerNodeSchema, input, 'render node');
      try {
        const node = await prisma.renderNode.create({
          data: { ...data, availableAeVersions: [data.currentAeVersion] },
        });
        await publishNodeStatusChanged(bus, { nodeId: node.id, status: node.status });
        return { node, agentKey: deriveAgentKey(nodeHmacSecret, node.id) };
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new ConflictError(`A render node named "${data.name}" already exists`, { name: data.name });
        }
        throw error;
      }
    },

    listWhere,

    async list<A extends NodeArgs = {}>(actor: Actor, input: ListNodesInput = {}, args?: A) {
      const nodes = await prisma.renderNode.findMany({
        ...args,
        where: listWhere(actor, input),
        orderBy: [{ region: 'asc' }, { name: 'asc' }],
      });
      return nodes as Prisma.RenderNodeGetPayload<A>[];
    },

    /** `args` shapes the row (include/select) for the transport that asked. */
    async get<A extends NodeArgs = {}>(actor: Actor, id: string, args?: A) {
      requireAdmin(actor);
      return findNodeOrThrow(id, args);
    },

    /** The nodes among `ids`, in one query (admin); unknown ids are left out. */
    async getMany<A extends NodeArgs = {}>(actor: Actor, ids: readonly string[], args?: A) {
      requireAdmin(actor);
      const nodes = await prisma.renderNode.findMany({ ...args, where: { id: { in: uuidsAmong(ids) } } });
      return nodes as Prisma.RenderNodeGetPayload<A>[];
    },

    /** An agent reports that it started: what it runs and which templates it holds. */
    async online(actor: Actor, nodeId: string, input: NodeOnlineInput) {
      requireNode(actor, nodeId);
      const data = parseInput(nodeOnlineSchema, input, 'online report');
      const node = await findNodeOrThrow(nodeId);
      const now = clock.now();
      // A freshly started agent runs nothing, whatever it ran before it went away.
      const status = statusAfterContact(node.status, NodeStatus.Online);
      const { cachedTemplateMd5s, ...facts } = data;
      await prisma.$transaction([
        prisma.renderNode.update({
          where: { id: node.id },
          data: {
            ...facts,
            availableAeVersions: facts.availableAeVersions
              ? [...new Set([...(facts.currentAeVersion ? [facts.currentAeVersion] : []), ...facts.availableAeVersions])]
              : undefined,
            status,
            lastHeartbeatAt: now,
            aeRunning: false,
            currentJobId: null,
            currentFrame: null,
          },
        }),
        ...(cachedTemplateMd5s
          ? [
              prisma.nodeTemplateCache.deleteMany({
                where: { nodeId: node.id, aepFileMd5: { notIn: cachedTemplateMd5s } },
              }),
              ...cachedTemplateMd5s.map((md5) =>
                prisma.nodeTemplateCache.upsert({
                  where: { nodeId_aepFileMd5: { nodeId: node.id, aepFileMd5: md5 } },
                  create: { nodeId: node.id, aepFileMd5: md5, state: 'Verified' },
                  update: { state: 'Verified', errorMessage: null },
                }),
              ),
            ]
          : []),
      ]);
      await changeStatusFromContact(node.id, node.status, status);
      return { nextHeartbeatInSec: DEFAULT_HEARTBEAT_INTERVAL_SECONDS };
    },

    /** Records a heartbeat and answers with the commands that wait for the node. */
    async heartbeat(actor: Actor, nodeId: string, input: HeartbeatInput): Promise<HeartbeatAnswer> {
      requireNode(actor, nodeId);
      const data = parseInput(heartbeatSchema, input, 'heartbeat');
      if (data.nodeId !== undefined && data.nodeId !== nodeId) {
        throw new ForbiddenError('node_id in the body does not match the node in the path');
      }
      const node = await findNodeOrThrow(nodeId);
      const now = clock.now();
      const status = statusAfterContact(node.status, data.status);
      const sample = {
        status,
        cpuPct: data.cpuPct ?? node.lastCpuPct,
        ramAvailableMb: data.ramAvailableMb ?? node.lastRamAvailableMb,
        aeRunning: data.aeRunning ?? node.aeRunning,
        currentJobId: data.currentJobId === undefined ? node.currentJobId : data.currentJobId,
        currentFrame: data.currentFrame === undefined ? node.currentFrame : data.currentFrame,
        cacheUsedGb: data.cacheUsedGb ?? node.cacheUsedGb,
      };
      const [, , commands] = await prisma.$transaction([
        prisma.renderNode.update({
          where: { id: node.id },
          data: {
            status,
            lastHeartbeatAt: now,
            lastCpuPct: sample.cpuPct,
            lastRamAvailableMb: sample.ramAvailableMb,
            aeRunning: sample.aeRunning,
            currentJobId: sample.currentJobId,
            currentFrame: sample.currentFrame,
            cacheUsedGb: sample.cacheUsedGb,
          },
        }),
        prisma.nodeHealthSample.create({
          data: { nodeId: node.id, recordedAt: data.recordedAt ? new Date(data.recordedAt) : now, ...sample },
        }),
        prisma.nodeCommand.findMany({
          where: { nodeId: node.id, status: 'Pending' },
          orderBy: { createdAt: 'asc' },
          take: 50,
        }),
      ]);
      if (commands.length > 0) {
        await prisma.nodeCommand.updateMany({
          where: { id: { in: commands.map((command) => command.id) } },
          data: { deliveredAt: now, deliveryCount: { increment: 1 } },
        });
      }
      await changeStatusFromContact(node.id, node.status, status);
      const soon = commands.length > 0 || (status === NodeStatus.Online && (await workWaiting()));
      return {
        nextHeartbeatInSec: soon ? BUSY_HEARTBEAT_INTERVAL_SECONDS : DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
        pendingCommands: commands.map((command) => ({
          ...(command.payload as Record<string, unknown>),
          type: command.type,
          command_id: command.id,
          ...(command.leaseToken ? { lease: command.leaseToken } : {}),
        })),
      };
    },
  };
}

export type NodeService = ReturnType<typeof createNodeService>;
