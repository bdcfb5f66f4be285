// How a job ends before it completes: Cancelled (by its owner or an admin) or Failed (its frames
// ran out of attempts, or it cannot be rendered). Either way the user is refunded what they did
// not get, exactly once, and every node working on the job is told to stop.
import { JobStep } from '../../generated/prisma/client.ts';
import { refund } from '../billing/ledger.ts';
import { refundOnCancel } from '../billing/pricing.ts';
import { InvalidStateError, NotFoundError } from '../errors.ts';
import { chunkOutOfAttempts } from '../scheduling/failure-policy.ts';
import { withdrawJobWork } from '../work/recut.ts';
import type { JobChanges } from './job-changes.ts';
import { canMove, invalidMove } from './state-machine.ts';

export interface JobEnd {
  to: typeof JobStep.Cancelled | typeof JobStep.Failed;
  reason: string;
  /** The node whose report ended the job, for its log line. */
  nodeId?: string;
}

/** Ends the job, refunding it; the row lock serializes concurrent endings of one job. */
export async function endJob(changes: JobChanges, jobId: string, end: JobEnd) {
  const { tx } = changes;
  await changes.lock([jobId]);
  const current = await tx.renderJob.findUnique({ where: { id: jobId } });
  if (!current) throw new NotFoundError('render job', jobId);
  if (!canMove(current.step, end.to)) throw invalidMove(jobId, current.step, end.to);
  const framesRendered = await tx.frame.count({ where: { renderJobId: jobId, rendered: true } });
  const refundMinor = end.to === JobStep.Failed ? current.paidPriceMinor : refundOnCancel(current, framesRendered);
  const job = await changes.move(jobId, {
    to: end.to,
    data: {
      refundedMinor: refundMinor,
      ...(end.to === JobStep.Cancelled ? { cancelReason: end.reason } : { failedMessage: end.reason }),
    },
    log: {
      level: end.to === JobStep.Failed ? 'error' : 'info',
      message: end.to === JobStep.Failed ? `Job failed: ${end.reason}` : `Job cancelled: ${end.reason}`,
      nodeId: end.nodeId,
      meta: { refund_minor: Number(refundMinor), frames_rendered: framesRendered },
    },
  });
  await refund(tx, {
    userId: current.userId,
    amountMinor: refundMinor,
    idempotencyKey: `refund:render-job:${jobId}`,
    description: `Refund for render ${current.name} (${end.to.toLowerCase()}, ${framesRendered}/${current.totalFrames} frames rendered)`,
    renderJobId: jobId,
  });
  await withdrawJobWork(tx, jobId, end.reason);
  return { job, refundMinor };
}

/**
 * Fails the job of a frame range that was handed out as often as the failure policy allows.
 * A job that ended meanwhile (cancelled, or failed by a concurrent report or pass) stays as it
 * ended. Answers whether it failed the job.
 */
export async function failIfOutOfAttempts(
  changes: JobChanges,
  chunk: { renderJobId: string; startFrame: number; endFrame: number; attempt: number },
  nodeId?: string,
): Promise<boolean> {
  if (!chunkOutOfAttempts(chunk.attempt)) return false;
  const reason = `frames ${chunk.startFrame}-${chunk.endFrame} failed ${chunk.attempt} times`;
  try {
    await endJob(changes, chunk.renderJobId, { to: JobStep.Failed, reason, nodeId });
    return true;
  } catch (error) {
    // Refused before anything was written, so the transaction goes on.
    if (error instanceof InvalidStateError) return false;
    throw error;
  }
}
