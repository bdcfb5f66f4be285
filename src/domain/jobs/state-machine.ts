// The render job's steps and the only moves between them. Every change of step goes through
// moveJob, which makes the move conditional on the step the row is in, so concurrent requests
// (two cancels, a cancel racing an agent's report) cannot both win.
//
//   Queued -> Preparing -> Rendering -> Encoding -> Completed
//      \          \            \           \
//       +----------+------------+-----------+--> Failed | Cancelled
//
// Preparing may also fall back to Queued when the node preparing the replica is lost, and
// Encoding to Rendering when the encoder finds frames missing.
import { JobStep, type Prisma, type RenderJob } from '../../generated/prisma/client.ts';
import type { Tx } from '../db.ts';
import { InvalidStateError, NotFoundError } from '../errors.ts';
import { type JobLogLine, writeJobLog } from './job-log.ts';

export const TERMINAL_STEPS: readonly JobStep[] = [JobStep.Completed, JobStep.Failed, JobStep.Cancelled];

export const TRANSITIONS: Readonly<Record<JobStep, readonly JobStep[]>> = {
  Queued: [JobStep.Preparing, JobStep.Failed, JobStep.Cancelled],
  Preparing: [JobStep.Rendering, JobStep.Queued, JobStep.Failed, JobStep.Cancelled],
  Rendering: [JobStep.Encoding, JobStep.Failed, JobStep.Cancelled],
  Encoding: [JobStep.Completed, JobStep.Rendering, JobStep.Failed, JobStep.Cancelled],
  Completed: [],
  Failed: [],
  Cancelled: [],
};

export function canMove(from: JobStep, to: JobStep): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The steps a job can be in for a move to `to` to be allowed. */
export function stepsBefore(to: JobStep): JobStep[] {
  return (Object.keys(TRANSITIONS) as JobStep[]).filter((from) => canMove(from, to));
}

export function invalidMove(jobId: string, from: JobStep, to: JobStep): InvalidStateError {
  return new InvalidStateError(`Render job ${jobId} is ${from}; it cannot become ${to}`, {
    job_id: jobId,
    step: from,
    requested_step: to,
    allowed_steps: TRANSITIONS[from],
  });
}

export interface Move {
  to: JobStep;
  /** Other columns written with the move. */
  data?: Omit<Prisma.RenderJobUpdateManyMutationInput, 'step'>;
  log: JobLogLine;
}

/**
 * Moves the job if its current step allows it, writes the log line and returns the updated row.
 * Throws InvalidStateError (409) otherwise, naming the step the job is in.
 */
export async function moveJob(tx: Tx, jobId: string, move: Move, now: Date): Promise<RenderJob> {
  const timestamps: Prisma.RenderJobUpdateManyMutationInput =
    move.to === JobStep.Preparing
      ? { startedAt: now }
      : TERMINAL_STEPS.includes(move.to)
        ? { completedAt: now }
        : {};
  const { count } = await tx.renderJob.updateMany({
    where: { id: jobId, step: { in: stepsBefore(move.to) } },
    data: { ...timestamps, ...move.data, step: move.to },
  });
  if (count === 0) {
    const current = await tx.renderJob.findUnique({ where: { id: jobId }, select: { step: true } });
    if (!current) throw new NotFoundError('render job', jobId);
    throw invalidMove(jobId, current.step, move.to);
  }
  await writeJobLog(tx, jobId, move.log);
  return tx.renderJob.findUniqueOrThrow({ where: { id: jobId } });
}
