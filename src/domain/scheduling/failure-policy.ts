// What the farm does when work fails: how often a piece of work is handed out before it fails,
// and what a node should do after After Effects crashed on a job. Pure.
//
// - A frame range handed out MAX_CHUNK_ATTEMPTS times without success fails its job (refunded in
//   full); a still, MAX_SNAPSHOT_ATTEMPTS times (fewer: a person waits for it).
//
// - RestartNode: the machine itself looks sick (RESTART_AFTER_CONSECUTIVE_FAILURES failures in a
//   row, or RESTART_AFTER_CRASHES_PER_HOUR crashes within an hour): reboot it, move all its work.
// - ReassignWork: this node has failed this job BLOCK_AFTER_JOB_FAILURES times; it is kept off
//   the job and the chunk goes elsewhere.
// - ResetAndRestart: otherwise, a one-off: close After Effects and render the chunk's missing
//   frames again (on this node or another).
import { CrashAction } from '../../generated/prisma/client.ts';

/** Times a frame range may be handed out before its job fails. */
export const MAX_CHUNK_ATTEMPTS = 5;
/** Times a still may be handed out before it fails. */
export const MAX_SNAPSHOT_ATTEMPTS = 3;

export const RESTART_AFTER_CONSECUTIVE_FAILURES = 5;
export const RESTART_AFTER_CRASHES_PER_HOUR = 10;
export const BLOCK_AFTER_JOB_FAILURES = 3;

export interface CrashFacts {
  /** Including this crash. */
  consecutiveFailures: number;
  crashesInLastHour: number;
  failuresOnThisJob: number;
}

export function crashAction(facts: CrashFacts): CrashAction {
  if (
    facts.consecutiveFailures >= RESTART_AFTER_CONSECUTIVE_FAILURES ||
    facts.crashesInLastHour >= RESTART_AFTER_CRASHES_PER_HOUR
  ) {
    return CrashAction.RestartNode;
  }
  if (facts.failuresOnThisJob >= BLOCK_AFTER_JOB_FAILURES) return CrashAction.ReassignWork;
  return CrashAction.ResetAndRestart;
}

/** Whether a chunk handed out `attempt` times has no attempt left. */
export function chunkOutOfAttempts(attempt: number): boolean {
  return attempt >= MAX_CHUNK_ATTEMPTS;
}

/** The same rule as chunkOutOfAttempts, as a filter on frame_jobs. */
export const CHUNK_OUT_OF_ATTEMPTS = { attempt: { gte: MAX_CHUNK_ATTEMPTS } } as const;
