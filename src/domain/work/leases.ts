// The work a node holds, and the check every report about it passes. A piece of work is a
// command (prepare_replica, render_chunk, encode, render_snapshot) carrying a lease; a chunk
// carries its lease too. A report is accepted only from the node that holds the work now, under
// the lease it was given: a node presumed dead, whose work moved on, is refused with STALE_LEASE
// and can never overwrite its successor's work.
import {
  CommandStatus,
  CommandType,
  type FrameJob,
  FrameJobStatus,
  type NodeCommand,
  type Prisma,
} from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';
import { NotFoundError, StaleLeaseError } from '../errors.ts';
import { moveNode, type NodeMove } from '../nodes/node-status.ts';

/** Commands that occupy a node's one work slot until they are completed, failed or superseded. */
export const WORK_COMMANDS: CommandType[] = [
  CommandType.prepare_replica,
  CommandType.render_chunk,
  CommandType.encode,
  CommandType.render_snapshot,
];
export const OPEN_COMMAND: CommandStatus[] = [CommandStatus.Pending, CommandStatus.Acknowledged];
/**
 * The open work that keeps a node from more work: all of it but a render_snapshot the node has
 * not acknowledged. A node slow to take its still, or whose agent renders no stills, goes on
 * getting chunks; the still goes to another node once its command stalls (stall-sweeper.ts).
 */
export const OCCUPYING_COMMAND = {
  type: { in: WORK_COMMANDS },
  status: { in: OPEN_COMMAND },
  NOT: { type: CommandType.render_snapshot, status: CommandStatus.Pending },
} satisfies Prisma.NodeCommandWhereInput;
export const ACTIVE_CHUNK: FrameJobStatus[] = [FrameJobStatus.Assigned, FrameJobStatus.Rendering];
/** A node's active chunks, the one it was given last first (the one it works on); the id breaks ties. */
export const LATEST_ASSIGNED_FIRST = [
  { assignedAt: { sort: 'desc', nulls: 'last' } },
  { id: 'desc' },
] satisfies Prisma.FrameJobOrderByWithRelationInput[];

export type HeldChunkFacts = Pick<FrameJob, 'id' | 'renderJobId' | 'nodeId' | 'status' | 'leaseToken'>;

/** Why a node may not report on this chunk: it does not exist, or it is no longer the node's under this lease. */
export function chunkRefusal(
  chunk: HeldChunkFacts | null,
  nodeId: string,
  jobId: string,
  frameJobId: string,
  given: string | undefined,
): Error | undefined {
  if (!chunk || chunk.renderJobId !== jobId) return new NotFoundError('frame job', frameJobId);
  if (chunk.nodeId !== nodeId || !ACTIVE_CHUNK.includes(chunk.status) || (given !== undefined && given !== chunk.leaseToken)) {
    return new StaleLeaseError(`Frame job ${frameJobId} is no longer held by this node under this lease`, {
      frame_job_id: frameJobId,
      status: chunk.status,
    });
  }
  return undefined;
}

/** The chunk this node holds now, or STALE_LEASE: the work was taken away from it. */
export async function heldChunk(tx: Tx, nodeId: string, jobId: string, frameJobId: string, given?: string): Promise<FrameJob> {
  const chunk = await tx.frameJob.findUnique({ where: { id: frameJobId } });
  const refusal = chunkRefusal(chunk, nodeId, jobId, frameJobId, given);
  if (refusal || !chunk) throw refusal;
  return chunk;
}

/** A piece of work named by what it is about: a job's replica or encode, or a snapshot's still. */
export type HeldWork =
  | { type: typeof CommandType.prepare_replica | typeof CommandType.encode; jobId: string }
  | { type: typeof CommandType.render_snapshot; snapshotId: string };

/**
 * The open command for this work that the node holds under the given lease (any of its leases
 * when none is given), the latest first; STALE_LEASE when it holds none. A job that does not
 * exist is NOT_FOUND.
 */
export async function heldCommand(tx: Tx, nodeId: string, work: HeldWork, given?: string): Promise<NodeCommand> {
  if (work.type !== CommandType.render_snapshot && !(await tx.renderJob.findUnique({ where: { id: work.jobId }, select: { id: true } }))) {
    throw new NotFoundError('render job', work.jobId);
  }
  const subject: Prisma.NodeCommandWhereInput =
    work.type === CommandType.render_snapshot ? { payload: { path: ['snapshot_id'], equals: work.snapshotId } } : { renderJobId: work.jobId };
  const command = await tx.nodeCommand.findFirst({
    where: { nodeId, type: work.type, status: { in: OPEN_COMMAND }, ...(given !== undefined ? { leaseToken: given } : {}), ...subject },
    orderBy: { createdAt: 'desc' },
  });
  if (!command) {
    const [what, details] =
      work.type === CommandType.render_snapshot
        ? [`snapshot ${work.snapshotId}`, { snapshot_id: work.snapshotId }]
        : [`render job ${work.jobId}`, { job_id: work.jobId }];
    throw new StaleLeaseError(`This node holds no open ${work.type} work for ${what} under this lease`, details);
  }
  return command;
}

/** The node finished a piece of work: its slot is free, and a success ends its failure streak. */
export async function finishWork(tx: Tx, nodeId: string, commandId: string, ok: boolean, now: Date): Promise<NodeMove> {
  await tx.nodeCommand.update({
    where: { id: commandId },
    data: { status: ok ? CommandStatus.Completed : CommandStatus.Failed, completedAt: now },
  });
  return moveNode(
    tx,
    nodeId,
    'workEnded',
    ok
      ? { currentJobId: null, lifetimeTaskCount: { increment: 1 }, consecutiveFailures: 0 }
      : { currentJobId: null, consecutiveFailures: { increment: 1 } },
  );
}
