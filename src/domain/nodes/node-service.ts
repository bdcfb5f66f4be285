import { z } from 'zod';
import { FrameJobStatus, JobStep, NodeKind, NodeStatus, Prisma, type PrismaClient } from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import type { Actor } from '../actor.ts';
import { isUniqueViolation, type Prepared, retryOnConflict, type SqlDriver } from '../db.ts';
import { groupCommit } from '../group-commit.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts';
import { publishNodeStatusChanged } from '../events.ts';
import { requireAdmin, requireNode } from '../guards.ts';
import { jobChanges } from '../jobs/job-changes.ts';
import { parseInput, uuid, uuidsAmong } from '../validation.ts';
import { releaseNodeWork } from '../work/recut.ts';
import { DEFAULT_HEARTBEAT_INTERVAL_SECONDS, moveNode, publishNodeMoves, statusAfterContactSql } from './node-status.ts';

/** While work waits for a free node, or a node was just given commands, it checks back sooner. */
export const BUSY_HEARTBEAT_INTERVAL_SECONDS = 1;
/** How long one replica trusts its last look at the queue when answering heartbeats. */
const WORK_WAITING_CACHE_MS = 1000;

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
  /** Null says the agent cannot tell; left out, the last figure stands, as for the others. */
  aeMemoryMb: z.number().int().min(0).max(100_000_000).nullable().optional(),
  currentJobId: uuid.nullable().optional(),
  currentFrame: z.number().int().min(0).max(10_000_000).nullable().optional(),
  cacheUsedGb: z.number().int().min(0).max(1_000_000).optional(),
});
export type HeartbeatInput = z.input<typeof heartbeatSchema>;

export interface HeartbeatAnswer {
  nextHeartbeatInSec: number;
  pendingCommands: Array<Record<string, unknown>>;
}

interface Heartbeat {
  nodeId: string;
  data: z.output<typeof heartbeatSchema>;
}

interface DeliveredCommand {
  id: string;
  type: string;
  payload: Record<string, unknown>;
  lease: string | null;
}

interface StoredHeartbeat {
  previousStatus: NodeStatus;
  status: NodeStatus;
  commands: DeliveredCommand[];
}

/** Most commands one heartbeat answer carries; the rest come with the next heartbeats. */
const COMMANDS_PER_ANSWER = 50;

/** A heartbeat its batch left out because another change held the node's row at the time. */
const ROW_HELD = Symbol('row held');
/**
 * Pauses before a held row's heartbeat is sent again, doubling: the changes that hold node rows
 * (a chunk completion, a scheduling pass's placements) take milliseconds, rarely more.
 */
const HELD_ROW_FIRST_PAUSE_MS = 5;
const HELD_ROW_MAX_PAUSE_MS = 100;

/**
 * Stores the heartbeats of many nodes in one statement: each node's row, one health sample per
 * heartbeat, and the pending commands of every node marked delivered and returned. The rows are
 * locked in id order so that two batches never wait on each other in a cycle.
 *
 * A row another change holds (a chunk completion, a scheduling pass) is skipped and its heartbeat
 * answered ROW_HELD, to be sent again, instead of the batch waiting for it: a batch answers every
 * node that beat while the last one was written, and one held row would hold them all.
 */
async function writeHeartbeats(prepared: Prepared, batch: Heartbeat[], now: Date): Promise<Array<StoredHeartbeat | Error | typeof ROW_HELD>> {
  const input = JSON.stringify(
    batch.map(({ nodeId, data }) => ({
      id: nodeId,
      reported: data.status ?? null,
      recorded_at: data.recordedAt ?? null,
      cpu_pct: data.cpuPct ?? null,
      ram_available_mb: data.ramAvailableMb ?? null,
      ae_running: data.aeRunning ?? null,
      set_ae_memory: data.aeMemoryMb !== undefined,
      ae_memory_mb: data.aeMemoryMb ?? null,
      set_job: data.currentJobId !== undefined,
      current_job_id: data.currentJobId ?? null,
      set_frame: data.currentFrame !== undefined,
      current_frame: data.currentFrame ?? null,
      cache_used_gb: data.cacheUsedGb ?? null,
    })),
  );
  type Row = { node_id: string; previous_status: NodeStatus | null; status: NodeStatus | null; command: DeliveredCommand | null; held: boolean };
  const rows = await prepared<Row>('heartbeat-batch', Prisma.sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${input}::jsonb) AS i(
        id uuid, reported "NodeStatus", recorded_at timestamptz, cpu_pct int, ram_available_mb int, ae_running boolean,
        set_ae_memory boolean, ae_memory_mb int, set_job boolean, current_job_id uuid, set_frame boolean, current_frame int, cache_used_gb int)
    ), previous AS (
      SELECT n.id, n.status FROM render_nodes n WHERE n.id IN (SELECT id FROM input) ORDER BY n.id FOR UPDATE SKIP LOCKED
    ), updated AS (
      UPDATE render_nodes n SET
        status = ${statusAfterContactSql(Prisma.sql`p.status`, Prisma.sql`i.reported`)},
        last_heartbeat_at = ${now},
        last_cpu_pct = COALESCE(i.cpu_pct, n.last_cpu_pct),
        last_ram_available_mb = COALESCE(i.ram_available_mb, n.last_ram_available_mb),
        ae_running = COALESCE(i.ae_running, n.ae_running),
        last_ae_memory_mb = CASE WHEN i.set_ae_memory THEN i.ae_memory_mb ELSE n.last_ae_memory_mb END,
        current_job_id = CASE WHEN i.set_job THEN i.current_job_id ELSE n.current_job_id END,
        current_frame = CASE WHEN i.set_frame THEN i.current_frame ELSE n.current_frame END,
        cache_used_gb = COALESCE(i.cache_used_gb, n.cache_used_gb),
        updated_at = ${now}
      FROM input i, previous p
      WHERE n.id = i.id AND p.id = i.id
      RETURNING n.*, p.status AS previous_status, i.recorded_at AS reported_at
    ), samples AS (
      INSERT INTO node_health_samples
        (node_id, recorded_at, bucket_seconds, status, cpu_pct, ram_available_mb, ae_running, ae_memory_mb, current_job_id, current_frame, cache_used_gb)
      SELECT id, COALESCE(reported_at, ${now}), 0, status, last_cpu_pct, last_ram_available_mb, ae_running, last_ae_memory_mb, current_job_id,
        current_frame, cache_used_gb
      FROM updated
    ), delivered AS (
      UPDATE node_commands c SET delivered_at = ${now}, delivery_count = c.delivery_count + 1
      FROM (
        SELECT id FROM (
          SELECT nc.id, row_number() OVER (PARTITION BY nc.node_id ORDER BY nc.created_at, nc.id) AS rank
          FROM node_commands nc
          WHERE nc.node_id IN (SELECT id FROM updated) AND nc.status = 'Pending'
        ) ranked
        WHERE rank <= ${COMMANDS_PER_ANSWER}
      ) chosen
      WHERE c.id = chosen.id
      RETURNING c.*
    )
    SELECT id::text AS node_id, previous_status::text AS previous_status, status::text AS status,
      NULL::jsonb AS command, NULL::timestamptz AS created_at, NULL::uuid AS command_id, false AS held
    FROM updated
    UNION ALL
    SELECT node_id::text, NULL, NULL,
      jsonb_build_object('id', id, 'type', type, 'payload', payload, 'lease', lease_token), created_at, id, false
    FROM delivered
    UNION ALL
    -- Rows skipped as held; reading a held row does not wait for it.
    SELECT i.id::text, NULL, NULL, NULL, NULL, NULL, true
    FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM previous p WHERE p.id = i.id) AND EXISTS (SELECT 1 FROM render_nodes n WHERE n.id = i.id)
    -- Each node's row before its commands, and its commands oldest first.
    ORDER BY created_at NULLS FIRST, command_id`);
  const stored = new Map<string, StoredHeartbeat | typeof ROW_HELD>();
  for (const row of rows) {
    if (row.held) {
      stored.set(row.node_id, ROW_HELD);
    } else if (row.command === null) {
      stored.set(row.node_id, { previousStatus: row.previous_status as NodeStatus, status: row.status as NodeStatus, commands: [] });
    } else {
      (stored.get(row.node_id) as StoredHeartbeat | undefined)?.commands.push(row.command);
    }
  }
  return batch.map(({ nodeId }) => stored.get(nodeId) ?? new NotFoundError('render node', nodeId));
}

type NodeArgs = { include?: Prisma.RenderNodeInclude; select?: Prisma.RenderNodeSelect };

export interface NodeServiceDeps {
  prisma: PrismaClient;
  driver: SqlDriver;
  bus: EventBus;
  clock: Clock;
  /** The key a node signs its requests with, derived by the signature scheme from the node's id. */
  agentKeyOf: (nodeId: string) => string;
}

export function createNodeService({ prisma, driver, bus, clock, agentKeyOf }: NodeServiceDeps) {
  const changeJobs = jobChanges({ prisma, bus, clock });
  async function findNodeOrThrow<A extends NodeArgs = {}>(id: string, args?: A): Promise<Prisma.RenderNodeGetPayload<A>> {
    const nodeId = parseInput(uuid, id, 'node id');
    const node = await prisma.renderNode.findUnique({ ...args, where: { id: nodeId } });
    if (!node) throw new NotFoundError('render node', nodeId);
    return node as Prisma.RenderNodeGetPayload<A>;
  }

  let workWaitingSeen: { at: number; waiting: Promise<boolean> } | undefined;
  /**
   * Whether any job waits for a node; cached briefly, since every heartbeat asks. One look at a
   * time, shared by the heartbeats that ask meanwhile, on the agents' own connections: asked by
   * each heartbeat through Prisma's pool, a fleet's heartbeats queued behind that pool's
   * transactions for seconds whenever the cached answer expired.
   */
  function workWaiting(): Promise<boolean> {
    const now = clock.now().getTime();
    if (!workWaitingSeen || now - workWaitingSeen.at >= WORK_WAITING_CACHE_MS) {
      const waiting = driver
        .prepared<{ waiting: boolean }>(
          'work-waiting',
          Prisma.sql`
            SELECT EXISTS (SELECT 1 FROM render_jobs WHERE step IN (${JobStep.Queued}::"JobStep", ${JobStep.Encoding}::"JobStep"))
              OR EXISTS (SELECT 1 FROM frame_jobs WHERE status = ${FrameJobStatus.Pending}::"FrameJobStatus") AS waiting`,
        )
        .then(([row]) => row?.waiting ?? false);
      const seen = { at: now, waiting };
      workWaitingSeen = seen;
      // A failed look is not kept: the next heartbeat looks again.
      waiting.catch(() => {
        if (workWaitingSeen === seen) workWaitingSeen = undefined;
      });
    }
    return workWaitingSeen.waiting;
  }

  function listWhere(actor: Actor, input: ListNodesInput = {}): Prisma.RenderNodeWhereInput {
    requireAdmin(actor);
    const filters = parseInput(listNodesSchema, input, 'node filters');
    return { region: filters.region, status: filters.status };
  }

  const heartbeats = groupCommit<Heartbeat, StoredHeartbeat | typeof ROW_HELD>({
    keyOf: (heartbeat) => heartbeat.nodeId,
    write: (batch) => retryOnConflict(() => writeHeartbeats(driver.prepared, batch, clock.now())),
  });

  /** Writes a heartbeat, sent again (in later batches) while another change holds its node's row. */
  async function storeHeartbeat(heartbeat: Heartbeat): Promise<StoredHeartbeat> {
    for (let pauseMs = HELD_ROW_FIRST_PAUSE_MS; ; pauseMs = Math.min(2 * pauseMs, HELD_ROW_MAX_PAUSE_MS)) {
      const stored = await heartbeats.submit(heartbeat);
      if (stored !== ROW_HELD) return stored;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
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
        return { node, agentKey: agentKeyOf(node.id) };
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
      const { cachedTemplateMd5s, ...facts } = data;
      const moved = await changeJobs(async (changes) => {
        const { tx } = changes;
        // A freshly started agent runs nothing, whatever it ran before it went away: work it
        // held is offered again now. Left held, a restarted agent's chunk waited for the stall
        // sweep, and an encode or a replica preparation for nothing at all (found by the soak).
        await releaseNodeWork(changes, node.id, 'the agent restarted');
        const moved = await moveNode(tx, node.id, 'reportedOnline', {
          ...facts,
          availableAeVersions: facts.availableAeVersions
            ? [...new Set([...(facts.currentAeVersion ? [facts.currentAeVersion] : []), ...facts.availableAeVersions])]
            : undefined,
          lastHeartbeatAt: now,
          aeRunning: false,
          // Unknown until its heartbeats report it: the agent that started may be a version
          // that does not, and the figure of its last life would then stand for good.
          lastAeMemoryMb: null,
          currentJobId: null,
          currentFrame: null,
        });
        if (cachedTemplateMd5s) {
          await tx.nodeTemplateCache.deleteMany({ where: { nodeId: node.id, aepFileMd5: { notIn: cachedTemplateMd5s } } });
          await tx.nodeTemplateCache.updateMany({
            where: { nodeId: node.id, aepFileMd5: { in: cachedTemplateMd5s } },
            data: { state: 'Verified', errorMessage: null },
          });
          await tx.nodeTemplateCache.createMany({
            data: cachedTemplateMd5s.map((md5) => ({ nodeId: node.id, aepFileMd5: md5, state: 'Verified' as const })),
            skipDuplicates: true,
          });
        }
        return moved;
      });
      await publishNodeMoves(bus, [moved]);
      return { nextHeartbeatInSec: DEFAULT_HEARTBEAT_INTERVAL_SECONDS };
    },

    /**
     * Records a heartbeat and answers with the commands that wait for the node. Heartbeats of
     * many nodes are written together (see heartbeatWriter); the answer comes once this one is
     * stored.
     */
    async heartbeat(actor: Actor, nodeId: string, input: HeartbeatInput): Promise<HeartbeatAnswer> {
      requireNode(actor, nodeId);
      const data = parseInput(heartbeatSchema, input, 'heartbeat');
      if (data.nodeId !== undefined && data.nodeId !== nodeId) {
        throw new ForbiddenError('node_id in the body does not match the node in the path');
      }
      const id = parseInput(uuid, nodeId, 'node id').toLowerCase();
      const stored = await storeHeartbeat({ nodeId: id, data });
      await publishNodeMoves(bus, [{ nodeId: id, from: stored.previousStatus, to: stored.status }]);
      const { commands } = stored;
      const soon = commands.length > 0 || (stored.status === NodeStatus.Online && (await workWaiting()));
      return {
        nextHeartbeatInSec: soon ? BUSY_HEARTBEAT_INTERVAL_SECONDS : DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
        pendingCommands: commands.map((command) => ({
          ...command.payload,
          type: command.type,
          command_id: command.id,
          ...(command.lease ? { lease: command.lease } : {}),
        })),
      };
    },
  };
}

export type NodeService = ReturnType<typeof createNodeService>;
