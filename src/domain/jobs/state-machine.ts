// The render job's steps and the only moves between them. Every change of step goes through
// JobChanges.move (job-changes.ts), which makes the move conditional on the step the row is in,
// so concurrent requests (two cancels, a cancel racing an agent's report) cannot both win.
//
//   Queued -> Preparing -> Rendering -> Encoding -> Completed
//      \          \            \           \
//       +----------+------------+-----------+--> Failed | Cancelled
//
// Preparing may also fall back to Queued when the node preparing the replica is lost, and
// Encoding to Rendering when the encoder finds frames missing.
import { JobStep, type Prisma } from '../../generated/prisma/client.ts';
import { InvalidStateError } from '../errors.ts';
import type { JobLogLine } from './job-log.ts';

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

/** The timestamps a move to `to` sets: when the job started, when it ended. */
export function movedAt(to: JobStep, now: Date): Prisma.RenderJobUpdateManyMutationInput {
  if (to === JobStep.Preparing) return { startedAt: now };
  return TERMINAL_STEPS.includes(to) ? { completedAt: now } : {};
}
