// Moving work off a node: a chunk that will not finish where it is (node lost, released by an
// admin, crashed, failed) is closed and its frames that were never rendered are cut into new
// Pending chunks, so only those frames are rendered again. The old chunk's lease is cleared, so
// a late report from the old node is refused as stale. A job that ended has all its work
// withdrawn the same way. Chunks no node was ever handed are cut again to fit the fleet
// (fitPendingChunks; when, in chunking.ts).
import { CommandStatus, CommandType, FrameJobStatus, JobStep, Prisma } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';
import { chunkSizeFor, type FrameRange, recutRanges, runsOf } from '../jobs/chunking.ts';
import type { JobChanges } from '../jobs/job-changes.ts';
import { writeJobLog } from '../jobs/job-log.ts';
import { TERMINAL_STEPS } from '../jobs/state-machine.ts';
import { nodesAvailableFor } from '../nodes/node-status.ts';
import { ACTIVE_CHUNK, OPEN_COMMAND, WORK_COMMANDS } from './leases.ts';

export interface RecutResult {
  /** New Pending chunks holding the frames that still need rendering. */
  newChunkIds: string[];
  missingFrames: number;
}

/**
 * Closes a chunk (Completed when every frame is rendered, else `closeAs`) and cuts its missing
 * frames into new Pending chunks that carry its attempt count forward.
 */
export async function recutChunk(
  tx: Tx,
  frameJobId: string,
  closeAs: typeof FrameJobStatus.Failed | typeof FrameJobStatus.Completed,
  lastError: string | null,
): Promise<RecutResult> {
  const chunk = await tx.frameJob.findUniqueOrThrow({ where: { id: frameJobId } });
  const missing = await tx.frame.findMany({
    where: { frameJobId, rendered: false },
    select: { frameNumber: true },
    orderBy: { frameNumber: 'asc' },
  });
  await tx.frameJob.update({
    where: { id: frameJobId },
    data: {
      status: missing.length === 0 ? FrameJobStatus.Completed : closeAs,
      leaseToken: null,
      lastError,
      completedAt: missing.length === 0 ? new Date() : null,
    },
  });
  const newChunkIds: string[] = [];
  for (const run of runsOf(missing.map((frame) => frame.frameNumber))) {
    const created = await tx.frameJob.create({
      data: {
        renderJobId: chunk.renderJobId,
        startFrame: run.startFrame,
        endFrame: run.endFrame,
        orderValue: chunk.orderValue,
        attempt: chunk.attempt,
        lastError,
      },
    });
    await tx.frame.updateMany({
      where: { renderJobId: chunk.renderJobId, frameNumber: { gte: run.startFrame, lte: run.endFrame } },
      data: { frameJobId: created.id },
    });
    newChunkIds.push(created.id);
  }
  await tx.nodeCommand.updateMany({
    where: { frameJobId, status: { in: OPEN_COMMAND } },
    data: { status: CommandStatus.Superseded },
  });
  return { newChunkIds, missingFrames: missing.length };
}

/** The jobs the nodes' work belongs to: what releasing it changes, to be locked before. */
export async function jobsWorkedBy(tx: Tx, nodeIds: readonly string[]): Promise<string[]> {
  const [chunks, commands] = await Promise.all([
    tx.frameJob.findMany({ where: { nodeId: { in: [...nodeIds] }, status: { in: ACTIVE_CHUNK } }, select: { renderJobId: true } }),
    tx.nodeCommand.findMany({
      where: { nodeId: { in: [...nodeIds] }, status: { in: OPEN_COMMAND }, type: { in: WORK_COMMANDS }, renderJobId: { not: null } },
      select: { renderJobId: true },
    }),
  ]);
  return [...new Set([...chunks, ...commands].map((row) => row.renderJobId as string))];
}

/**
 * Takes every piece of work away from a node: its chunks are re-cut, a replica it was preparing
 * goes back to the queue, an encode it was running is offered again. Used when a node is lost,
 * released by an admin, restarted or told to stop by the crash policy. Every job it touched says
 * so in its log and gets an event, whoever released the work: the log is where an operator looks
 * first when a job took longer than it should.
 */
export async function releaseNodeWork(changes: JobChanges, nodeId: string, reason: string): Promise<{ recutChunks: number }> {
  const { tx } = changes;
  await changes.lock(await jobsWorkedBy(tx, [nodeId]));
  const chunks = await tx.frameJob.findMany({ where: { nodeId, status: { in: ACTIVE_CHUNK } }, select: { id: true, renderJobId: true } });
  for (const chunk of chunks) await recutChunk(tx, chunk.id, FrameJobStatus.Failed, reason);

  const open = await tx.nodeCommand.findMany({
    where: { nodeId, status: { in: OPEN_COMMAND }, type: { in: WORK_COMMANDS } },
    select: { id: true, type: true, renderJobId: true },
  });
  await tx.nodeCommand.updateMany({
    where: { id: { in: open.map((command) => command.id) } },
    data: { status: CommandStatus.Superseded },
  });
  for (const command of open) {
    if (command.type !== CommandType.prepare_replica || !command.renderJobId) continue;
    const job = await tx.renderJob.findUnique({ where: { id: command.renderJobId }, select: { step: true } });
    if (job?.step === JobStep.Preparing) {
      await changes.move(command.renderJobId, {
        to: JobStep.Queued,
        log: { level: 'warn', message: `Replica preparation moved off its node: ${reason}`, nodeId },
      });
    }
  }
  await tx.renderNode.update({ where: { id: nodeId }, data: { currentJobId: null, currentFrame: null } });
  const jobIds = [...new Set([...chunks.map((chunk) => chunk.renderJobId), ...open.map((command) => command.renderJobId)])].filter(
    (id): id is string => id !== null,
  );
  for (const jobId of jobIds) {
    await writeJobLog(tx, jobId, { level: 'warn', message: `Work moved off node ${nodeId}: ${reason}`, nodeId });
  }
  changes.touch(jobIds);
  return { recutChunks: chunks.length };
}

/**
 * Stops all work on a job that ended: its open chunks are cancelled, commands no node took are
 * withdrawn, and each node working on it is told to stop.
 */
export async function withdrawJobWork(tx: Tx, jobId: string, reason: string): Promise<void> {
  const working = await tx.frameJob.findMany({
    where: { renderJobId: jobId, status: { in: ACTIVE_CHUNK }, nodeId: { not: null } },
    select: { nodeId: true },
    distinct: ['nodeId'],
  });
  await tx.frameJob.updateMany({
    where: { renderJobId: jobId, status: { in: [FrameJobStatus.Pending, ...ACTIVE_CHUNK] } },
    data: { status: FrameJobStatus.Cancelled, leaseToken: null },
  });
  // The job's work commands a node already took end here too: the node is told to cancel, and
  // work left open on an ended job would be "moved off" its node when that node is lost or
  // released, giving the job an event after its terminal one (found by the soak).
  await tx.nodeCommand.updateMany({
    where: { renderJobId: jobId, OR: [{ status: CommandStatus.Pending }, { status: { in: OPEN_COMMAND }, type: { in: WORK_COMMANDS } }] },
    data: { status: CommandStatus.Superseded },
  });
  await tx.nodeCommand.createMany({
    data: working.map(({ nodeId }) => ({
      nodeId: nodeId as string,
      type: CommandType.cancel_job,
      renderJobId: jobId,
      payload: { job_id: jobId, reason },
    })),
  });
}

/** How a job's chunks are listed: in the order they render, the pieces of one split chunk (which share it) by their frames. */
export const CHUNK_ORDER = [{ orderValue: 'asc' }, { startFrame: 'asc' }] satisfies Prisma.FrameJobOrderByWithRelationInput[];
/** CHUNK_ORDER in SQL, for the reads beside Prisma. */
export const CHUNK_ORDER_SQL = Prisma.sql`order_value, start_frame`;

/** Chunks no node was ever handed, with no frame rendered: the only ones cut again to fit the fleet. */
export const NEVER_HANDED_OUT = {
  status: FrameJobStatus.Pending,
  attempt: 0,
  frames: { none: { rendered: true } },
} satisfies Prisma.FrameJobWhereInput;

/** For a change that fits chunks: a long job's fit moves up to 216,000 frame records, longer than Prisma's 5 s default on a busy database. */
export const FIT_TIMEOUT_MS = 60_000;

/** The size a job's chunks are cut to for the nodes that can take it, and how many those are. */
export interface ChunkFit {
  chunkSize: number;
  nodes: number;
}

/**
 * Cuts the job's chunks that no node was ever handed again, into chunks of `fit.chunkSize`, and
 * records that size on the job. Consecutive ones are joined first, so they merge as well as split;
 * their frames move to the new chunks, which keep their place in the job's order, and the old rows
 * go: nothing else refers to a chunk no node was given. Answers whether the chunks changed.
 *
 * No node may be handed these chunks meanwhile: the caller holds the scheduling pass's lock, or
 * the job is not Rendering yet (passes hand out chunks of Rendering jobs only). The job's row is
 * locked first, as its ending locks it, so a job cancelled meanwhile keeps no new Pending chunk.
 */
export async function fitPendingChunks(changes: JobChanges, jobId: string, fit: ChunkFit): Promise<boolean> {
  const { tx } = changes;
  await changes.lock([jobId]);
  const job = await tx.renderJob.findUnique({ where: { id: jobId }, select: { step: true } });
  if (!job || TERMINAL_STEPS.includes(job.step)) return false;
  await tx.renderJob.update({ where: { id: jobId }, data: { chunkSize: fit.chunkSize } });
  const pending = await tx.frameJob.findMany({
    where: { renderJobId: jobId, ...NEVER_HANDED_OUT },
    select: { id: true, startFrame: true, endFrame: true, orderValue: true },
    orderBy: { startFrame: 'asc' },
  });
  const cut = recutRanges(pending, fit.chunkSize);
  const same = (range: FrameRange, index: number) => range.startFrame === pending[index]?.startFrame && range.endFrame === pending[index]?.endFrame;
  if (cut.length === pending.length && cut.every(same)) return false;
  let source = 0;
  const created = await tx.frameJob.createManyAndReturn({
    data: cut.map((range) => {
      while ((pending[source + 1]?.startFrame ?? Number.POSITIVE_INFINITY) <= range.startFrame) source++;
      return { renderJobId: jobId, ...range, orderValue: (pending[source] as { orderValue: number }).orderValue };
    }),
    select: { id: true },
  });
  await tx.$executeRaw`
    UPDATE frames f SET frame_job_id = fj.id
    FROM frame_jobs fj
    WHERE fj.id = ANY(${created.map((chunk) => chunk.id)}::uuid[]) AND f.frame_job_id = ANY(${pending.map((chunk) => chunk.id)}::uuid[])
      AND f.render_job_id = fj.render_job_id AND f.frame_number BETWEEN fj.start_frame AND fj.end_frame`;
  await tx.frameJob.deleteMany({ where: { id: { in: pending.map((chunk) => chunk.id) } } });
  await writeJobLog(tx, jobId, {
    level: 'info',
    message: `Chunks not handed out yet cut again for ${fit.nodes} available nodes: ${pending.length} became ${cut.length}`,
    meta: { chunk_size: fit.chunkSize },
  });
  changes.touch([jobId]);
  return true;
}

/**
 * The job's chunks fit to the nodes that can take it now, merged or split, when its rendering
 * starts: before that it may have queued while the fleet changed, and none of its chunks was
 * handed out yet.
 */
export async function fitChunksAtRenderingStart(changes: JobChanges, jobId: string): Promise<boolean> {
  const job = await changes.tx.renderJob.findUniqueOrThrow({ where: { id: jobId }, select: { totalFrames: true, aeVersion: true } });
  const nodes = await nodesAvailableFor(changes.tx, changes.now, job.aeVersion);
  return fitPendingChunks(changes, jobId, { chunkSize: chunkSizeFor(job.totalFrames, nodes), nodes });
}
