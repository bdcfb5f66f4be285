// The scheduler turns queued work into commands for free nodes, and takes work back from nodes
// that went silent. Each pass runs in one transaction under a PostgreSQL advisory lock, so any
// number of replicas can run it: one of them does a pass at a time, the others skip. Before it
// places work, a pass splits the chunks of rendering jobs whose fleet grew (chunking.ts), in a
// transaction of its own under the same lock.
import { randomUUID } from 'node:crypto';
import {
  CommandStatus,
  CommandType,
  FrameJobStatus,
  JobStep,
  NodeStatus,
  Prisma,
  type PrismaClient,
  type PriorityQueue,
  type RenderJob,
  SnapshotStatus,
} from '../../generated/prisma/client.ts';
import type { Clock, EventBus } from '../../ports.ts';
import type { Tx } from '../db.ts';
import { publishNodeStatusChanged, publishSnapshotUpdated, type SnapshotChanged } from '../events.ts';
import { splitSizeFor } from '../jobs/chunking.ts';
import { failIfOutOfAttempts } from '../jobs/endings.ts';
import { type JobChanges, jobChanges } from '../jobs/job-changes.ts';
import { tryLock } from '../locks.ts';
import {
  availableWhere,
  MISSED_HEARTBEATS_FOR_OFFLINE,
  moveNode,
  type NodeMove,
  nodesAvailableFor,
  publishNodeMoves,
  silentWhere,
  statusAfterSql,
} from '../nodes/node-status.ts';
import { uuidV7 } from '../ids.ts';
import { HELD_TEMPLATES } from '../nodes/templates.ts';
import { IN_FLIGHT, lockRender, moveRender, type SnapshotToRender, snapshotsAwaitingRender } from '../snapshots/snapshot-renders.ts';
import { OCCUPYING_COMMAND, OPEN_COMMAND } from '../work/leases.ts';
import { type ChunkFit, FIT_TIMEOUT_MS, fitPendingChunks, jobsWorkedBy, NEVER_HANDED_OUT, releaseNodeWork } from '../work/recut.ts';
import { CHUNK_OUT_OF_ATTEMPTS, MAX_SNAPSHOT_ATTEMPTS } from './failure-policy.ts';
import { type NodeCandidate, type Placement, placeWork, type WorkItem } from './placement.ts';

/** Most chunks considered in one pass; the rest wait for the next pass. */
export const MAX_ITEMS_PER_PASS = 10_000;
/** Encode outputs every job gets. */
export const OUTPUT_FORMATS = ['mp4'];

const QUEUE_RANK: Record<PriorityQueue, number> = { Priority: 0, Standard: 1, Background: 2 };
/** A person waits for a snapshot, so it goes with the priority queue. */
const SNAPSHOT_QUEUE_RANK = 0;

export interface AssignmentResult {
  assigned: number;
  /** The node each new command went to, by work key (chunk id, job id for prepare/encode, snapshot id). */
  placements: Map<string, string>;
}

type JobFacts = Pick<
  RenderJob,
  | 'id'
  | 'priorityQueue'
  | 'queuedAt'
  | 'aeVersion'
  | 'aepFileMd5'
  | 'preferredRegion'
  | 'savedProjectId'
  | 'replicaPath'
  | 'quality'
  | 'resolution'
  | 'frameRate'
  | 'totalFrames'
  | 'durationSec'
>;

const JOB_FACTS = {
  id: true,
  priorityQueue: true,
  queuedAt: true,
  aeVersion: true,
  aepFileMd5: true,
  preferredRegion: true,
  savedProjectId: true,
  replicaPath: true,
  quality: true,
  resolution: true,
  frameRate: true,
  totalFrames: true,
  durationSec: true,
} satisfies Prisma.RenderJobSelect;

interface PendingChunk {
  id: string;
  startFrame: number;
  endFrame: number;
  orderValue: number;
  attempt: number;
}

type ExhaustedChunk = PendingChunk & { renderJobId: string };

interface PendingWork {
  kind: 'prepare' | 'chunk' | 'encode';
  job: JobFacts;
  chunk?: PendingChunk;
}

interface SnapshotWork {
  kind: 'snapshot';
  snapshot: SnapshotToRender;
}

/** Nodes that can take work now. */
function freeWhere(now: Date): Prisma.RenderNodeWhereInput {
  return { ...availableWhere(now), commands: { none: OCCUPYING_COMMAND } };
}

export interface SchedulerDeps {
  prisma: PrismaClient;
  bus: EventBus;
  clock: Clock;
}

export function createScheduler({ prisma, bus, clock }: SchedulerDeps) {
  const changeJobs = jobChanges({ prisma, bus, clock });

  /** Nodes that can take work now, and those of them still to acknowledge a render_snapshot. */
  async function freeNodes(tx: Tx, now: Date): Promise<{ candidates: NodeCandidate[]; stillPending: Set<string> }> {
    const nodes = await tx.renderNode.findMany({
      where: freeWhere(now),
      select: {
        id: true,
        region: true,
        currentAeVersion: true,
        availableAeVersions: true,
        priority: true,
        lastCpuPct: true,
        templates: { where: HELD_TEMPLATES, select: { aepFileMd5: true } },
        commands: { where: { type: CommandType.render_snapshot, status: CommandStatus.Pending }, select: { id: true }, take: 1 },
      },
    });
    return {
      candidates: nodes.map((node) => ({
        id: node.id,
        region: node.region,
        aeVersions: new Set([node.currentAeVersion, ...node.availableAeVersions]),
        templates: new Set(node.templates.map((template) => template.aepFileMd5)),
        priority: node.priority,
        cpuPct: node.lastCpuPct,
      })),
      stillPending: new Set(nodes.filter((node) => node.commands.length > 0).map((node) => node.id)),
    };
  }

  /**
   * Splits the chunks no node was handed yet of the rendering jobs whose fleet grew enough
   * (splitSizeFor), under the pass's lock, so no node is handed a chunk being cut. A unit of work
   * of its own: it locks the jobs it cuts all at once, as placement then locks those it places.
   */
  async function splitForFleet(changes: JobChanges): Promise<void> {
    const { tx, now } = changes;
    if (!(await tryLock(tx, 'schedulingPass'))) return;
    // Chunks are split for the nodes that will take them; while none can, the split waits for the
    // pass that places work, rather than reading every rendering job each second.
    if ((await tx.renderNode.count({ where: freeWhere(now) })) === 0) return;
    const jobs = await tx.renderJob.findMany({
      where: { step: JobStep.Rendering, frameJobs: { some: NEVER_HANDED_OUT } },
      select: { id: true, totalFrames: true, aeVersion: true, chunkSize: true },
    });
    const fleets = new Map<string | null, number>();
    for (const version of new Set(jobs.map((job) => job.aeVersion))) fleets.set(version, await nodesAvailableFor(tx, now, version));
    const splits = new Map<string, ChunkFit>();
    for (const job of jobs) {
      const nodes = fleets.get(job.aeVersion) ?? 0;
      const chunkSize = splitSizeFor(job.totalFrames, nodes, job.chunkSize ?? job.totalFrames);
      if (chunkSize !== null) splits.set(job.id, { chunkSize, nodes });
    }
    await changes.lock(splits.keys());
    for (const [jobId, fit] of splits) await fitPendingChunks(changes, jobId, fit);
  }

  /** Fails renders handed out MAX_SNAPSHOT_ATTEMPTS times without a still; answers their changes. */
  async function failExhaustedSnapshots(tx: Tx, snapshots: SnapshotToRender[], now: Date): Promise<SnapshotChanged[]> {
    const changes: SnapshotChanged[] = [];
    for (const snapshot of snapshots) {
      await lockRender(tx, snapshot);
      const failedMessage = `No node rendered the still in ${MAX_SNAPSHOT_ATTEMPTS} attempts`;
      changes.push(...(await moveRender(tx, snapshot, IN_FLIGHT, { status: SnapshotStatus.Failed, failedMessage, completedAt: now })));
    }
    return changes;
  }

  async function pendingWork(tx: Tx): Promise<PendingWork[]> {
    const [queued, chunks, encoding] = await Promise.all([
      tx.renderJob.findMany({
        where: { step: JobStep.Queued },
        select: JOB_FACTS,
        orderBy: [{ priorityQueue: 'asc' }, { queuedAt: 'asc' }],
        take: MAX_ITEMS_PER_PASS,
      }),
      tx.frameJob.findMany({
        where: { status: FrameJobStatus.Pending, renderJob: { step: JobStep.Rendering } },
        select: { id: true, startFrame: true, endFrame: true, orderValue: true, attempt: true, renderJob: { select: JOB_FACTS } },
        orderBy: [{ createdAt: 'asc' }],
        take: MAX_ITEMS_PER_PASS,
      }),
      tx.renderJob.findMany({
        where: {
          step: JobStep.Encoding,
          commands: { none: { type: CommandType.encode, status: { in: OPEN_COMMAND } } },
        },
        select: JOB_FACTS,
      }),
    ]);
    return [
      ...queued.map((job) => ({ kind: 'prepare' as const, job })),
      ...chunks.map(({ renderJob, ...chunk }) => ({ kind: 'chunk' as const, job: renderJob, chunk })),
      ...encoding.map((job) => ({ kind: 'encode' as const, job })),
    ];
  }

  /** Chunks waiting for a node that were handed out as often as the failure policy allows. */
  async function exhaustedChunks(tx: Tx): Promise<ExhaustedChunk[]> {
    return tx.frameJob.findMany({
      where: { status: FrameJobStatus.Pending, ...CHUNK_OUT_OF_ATTEMPTS, renderJob: { step: JobStep.Rendering } },
      select: { id: true, startFrame: true, endFrame: true, orderValue: true, attempt: true, renderJobId: true },
      take: MAX_ITEMS_PER_PASS,
    });
  }

  async function blockedNodes(tx: Tx, jobIds: string[]): Promise<Map<string, Set<string>>> {
    const blocks = await tx.jobNodeBlock.findMany({
      where: { renderJobId: { in: jobIds }, blockedAt: { not: null } },
      select: { renderJobId: true, nodeId: true },
    });
    const byJob = new Map<string, Set<string>>();
    for (const block of blocks) {
      let set = byJob.get(block.renderJobId);
      if (!set) byJob.set(block.renderJobId, (set = new Set()));
      set.add(block.nodeId);
    }
    return byJob;
  }

  /**
   * Writes a pass's chunk placements in three statements, whatever their number: the chunks
   * assigned (those still Pending), their render_chunk commands, their nodes Busy. A pass over a
   * large fleet places thousands of chunks; writing them one by one held every node's row locked,
   * and their heartbeats waiting, for seconds. Nodes are locked in id order, as heartbeats lock
   * them, so the two never deadlock.
   */
  async function commitChunks(tx: Tx, placed: Array<{ work: PendingWork & { chunk: PendingChunk }; nodeId: string }>, now: Date) {
    if (placed.length === 0) return;
    const input = placed.map(({ work, nodeId }) => ({ chunk_id: work.chunk.id, node_id: nodeId, lease: randomUUID() }));
    const assigned = new Set(
      (
        await tx.$queryRaw<Array<{ id: string }>>`
          UPDATE frame_jobs f
          SET status = 'Assigned', node_id = i.node_id, lease_token = i.lease, attempt = f.attempt + 1, assigned_at = ${now}, updated_at = ${now}
          FROM jsonb_to_recordset(${JSON.stringify(input)}::jsonb) AS i(chunk_id uuid, node_id uuid, lease text)
          WHERE f.id = i.chunk_id AND f.status = 'Pending'
          RETURNING f.id::text AS id`
      ).map((row) => row.id),
    );
    const written = placed.flatMap(({ work, nodeId }, index) =>
      assigned.has(work.chunk.id) ? [{ work, nodeId, lease: (input[index] as { lease: string }).lease }] : [],
    );
    if (written.length === 0) return;
    const busy = JSON.stringify(written.map(({ work, nodeId }) => ({ node_id: nodeId, job_id: work.job.id })));
    await tx.$executeRaw`
      WITH input AS (SELECT * FROM jsonb_to_recordset(${busy}::jsonb) AS i(node_id uuid, job_id uuid)),
      locked AS (SELECT n.id FROM render_nodes n WHERE n.id IN (SELECT node_id FROM input) ORDER BY n.id FOR UPDATE)
      UPDATE render_nodes n SET status = ${statusAfterSql(Prisma.sql`n.status`, 'workGiven')}, current_job_id = i.job_id, updated_at = ${now}
      FROM input i, locked l
      WHERE n.id = i.node_id AND l.id = i.node_id`;
    // Raw, like the other two statements: Prisma's createMany plans every row on the event loop,
    // which for a pass placing thousands of chunks held every request of the replica for 0.3-0.6 s.
    // After the nodes are locked: each command's foreign key share-locks its node row, which in
    // the commands' order could meet a heartbeat batch locking the same rows in id order.
    const commands = JSON.stringify(
      written.map(({ work: { job, chunk }, nodeId, lease }) => ({
        id: uuidV7(),
        node_id: nodeId,
        render_job_id: job.id,
        frame_job_id: chunk.id,
        lease_token: lease,
        payload: {
          job_id: job.id,
          frame_job_id: chunk.id,
          start_frame: chunk.startFrame,
          end_frame: chunk.endFrame,
          replica_path: job.replicaPath,
          quality: job.quality,
          resolution: job.resolution,
          frame_rate: job.frameRate,
        },
      })),
    );
    await tx.$executeRaw`
      INSERT INTO node_commands (id, node_id, type, render_job_id, frame_job_id, lease_token, payload)
      SELECT i.id, i.node_id, ${CommandType.render_chunk}::"CommandType", i.render_job_id, i.frame_job_id, i.lease_token, i.payload
      FROM jsonb_to_recordset(${commands}::jsonb) AS i(id uuid, node_id uuid, render_job_id uuid, frame_job_id uuid, lease_token text, payload jsonb)`;
  }

  /** Writes one placement of a job: the command with its lease, the step it starts. */
  async function commit({ tx, move }: JobChanges, work: PendingWork, nodeId: string): Promise<void> {
    const lease = randomUUID();
    const { job } = work;
    if (work.kind === 'prepare') {
      await move(job.id, { to: JobStep.Preparing, log: { level: 'info', message: 'Preparing the replica project', nodeId } });
    }
    await tx.nodeCommand.create({
      data: {
        nodeId,
        type: work.kind === 'prepare' ? CommandType.prepare_replica : CommandType.encode,
        renderJobId: job.id,
        leaseToken: lease,
        payload:
          work.kind === 'prepare'
            ? { job_id: job.id, saved_project_id: job.savedProjectId, aep_file_md5: job.aepFileMd5, ae_version: job.aeVersion }
            : {
                job_id: job.id,
                replica_path: job.replicaPath,
                total_frames: job.totalFrames,
                frame_rate: job.frameRate,
                duration_sec: job.durationSec,
                formats: OUTPUT_FORMATS,
              },
      },
    });
    await moveNode(tx, nodeId, 'workGiven', { currentJobId: job.id });
  }

  /** Writes a snapshot's placement: the render_snapshot command with its lease. */
  async function commitSnapshot(tx: Tx, { snapshot }: SnapshotWork, nodeId: string, now: Date): Promise<void> {
    // Completed or failed since this pass read it.
    const { count } = await tx.snapshot.updateMany({
      where: { id: snapshot.id, status: { in: IN_FLIGHT } },
      data: { nodeId, attempts: { increment: 1 } },
    });
    if (count === 0) return;
    await tx.nodeCommand.create({
      data: {
        nodeId,
        type: CommandType.render_snapshot,
        // The stall sweeper measures from here, on the same clock.
        createdAt: now,
        leaseToken: randomUUID(),
        payload: {
          snapshot_id: snapshot.id,
          saved_project_id: snapshot.savedProjectId,
          scene_key: snapshot.sceneKey,
          frame_number: snapshot.frameNumber,
          aep_file_md5: snapshot.aepFileMd5,
          ae_version: snapshot.aeVersion,
        },
      },
    });
    await moveNode(tx, nodeId, 'workGiven');
  }

  return {
    /** One scheduling pass: splits chunks for a grown fleet, then places waiting work on free nodes. */
    async assignWork(): Promise<AssignmentResult> {
      await changeJobs(splitForFleet, { timeout: FIT_TIMEOUT_MS });
      const outcome = await changeJobs(
        async (changes) => {
          const { tx, now } = changes;
          if (!(await tryLock(tx, 'schedulingPass'))) return null;
          const [{ candidates: nodes, stillPending }, exhausted, awaiting] = await Promise.all([
            freeNodes(tx, now),
            exhaustedChunks(tx),
            snapshotsAwaitingRender(tx, MAX_ITEMS_PER_PASS),
          ]);
          const snapshotChanges = await failExhaustedSnapshots(
            tx,
            awaiting.filter((snapshot) => snapshot.attempts >= MAX_SNAPSHOT_ATTEMPTS),
            now,
          );
          const snapshots = awaiting.filter((snapshot) => snapshot.attempts < MAX_SNAPSHOT_ATTEMPTS);
          // A fleet with no node free is a busy farm's usual state. The queue is read only when a
          // node can take some of it: reading 2,600 waiting jobs' chunks every second to place
          // nothing cost a replica a quarter of a core.
          if (nodes.length === 0) return { placements: [] as Placement[], snapshotChanges, exhausted };
          const failing = new Set(exhausted.map((chunk) => chunk.renderJobId));
          const work = (await pendingWork(tx)).filter((w) => !failing.has(w.job.id));
          if (work.length + snapshots.length === 0) return { placements: [] as Placement[], snapshotChanges, exhausted };
          const blocked = await blockedNodes(tx, [...new Set(work.map((w) => w.job.id))]);
          const byKey = new Map<string, PendingWork | SnapshotWork>();
          const items: WorkItem[] = work.map((w) => {
            const key = w.chunk?.id ?? w.job.id;
            byKey.set(key, w);
            return {
              key,
              jobId: w.job.id,
              queueRank: QUEUE_RANK[w.job.priorityQueue],
              queuedAt: w.job.queuedAt.getTime(),
              order: w.chunk?.orderValue ?? -1,
              aeVersion: w.job.aeVersion,
              templateMd5: w.job.aepFileMd5,
              preferredRegion: w.job.preferredRegion,
              blockedNodeIds: blocked.get(w.job.id) ?? new Set(),
            };
          });
          for (const snapshot of snapshots) {
            byKey.set(snapshot.id, { kind: 'snapshot', snapshot });
            items.push({
              key: snapshot.id,
              jobId: snapshot.id,
              queueRank: SNAPSHOT_QUEUE_RANK,
              queuedAt: snapshot.requestedAt.getTime(),
              order: -1,
              aeVersion: snapshot.aeVersion,
              templateMd5: snapshot.aepFileMd5,
              preferredRegion: null,
              // One still at a time per node, and a still taken back goes to another node.
              blockedNodeIds: snapshot.attempts > 0 && snapshot.nodeId ? new Set([...stillPending, snapshot.nodeId]) : stillPending,
            });
          }
          const placements = placeWork(items, nodes);
          await changes.lock(placements.flatMap(({ item }) => (byKey.get(item.key)?.kind === 'snapshot' ? [] : [item.jobId])));
          const chunks: Array<{ work: PendingWork & { chunk: PendingChunk }; nodeId: string }> = [];
          for (const placement of placements) {
            const w = byKey.get(placement.item.key) as PendingWork | SnapshotWork;
            if (w.kind === 'snapshot') {
              await commitSnapshot(tx, w, placement.nodeId, now);
              continue;
            }
            if (w.kind === 'chunk' && w.chunk) {
              chunks.push({ work: { ...w, chunk: w.chunk }, nodeId: placement.nodeId });
              continue;
            }
            await commit(changes, w, placement.nodeId);
          }
          await commitChunks(tx, chunks, now);
          return { placements, snapshotChanges, exhausted };
        },
        { timeout: 60_000 },
      );
      if (!outcome) return { assigned: 0, placements: new Map() };
      await Promise.all(outcome.snapshotChanges.map((change) => publishSnapshotUpdated(bus, change)));
      for (const chunk of outcome.exhausted) await changeJobs((changes) => failIfOutOfAttempts(changes, chunk));
      const busy = new Set(outcome.placements.map((placement) => placement.nodeId));
      await Promise.all([...busy].map((nodeId) => publishNodeStatusChanged(bus, { nodeId, status: NodeStatus.Busy })));
      return {
        assigned: outcome.placements.length,
        placements: new Map(outcome.placements.map((placement) => [placement.item.key, placement.nodeId])),
      };
    },

    /** Nodes silent for MISSED_HEARTBEATS_FOR_OFFLINE heartbeats go Offline; their work moves. */
    async sweepHeartbeats(): Promise<{ offline: string[] }> {
      const lost = await changeJobs(
        async (changes) => {
          const { tx, now } = changes;
          if (!(await tryLock(tx, 'heartbeatSweep'))) return [];
          // Nodes in id order, after their jobs: the lock order of every change (job-changes.ts).
          const silent = await tx.renderNode.findMany({ where: silentWhere(now), select: { id: true }, orderBy: { id: 'asc' } });
          await changes.lock(await jobsWorkedBy(tx, silent.map((node) => node.id)));
          const moves: NodeMove[] = [];
          for (const node of silent) {
            await releaseNodeWork(changes, node.id, `node missed ${MISSED_HEARTBEATS_FOR_OFFLINE} heartbeats`);
            moves.push(await moveNode(tx, node.id, 'lost', { aeRunning: false }));
          }
          return moves.filter((move) => move.from !== move.to);
        },
        { timeout: 60_000 },
      );
      await publishNodeMoves(bus, lost);
      return { offline: lost.map((move) => move.nodeId) };
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
