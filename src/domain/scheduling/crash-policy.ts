// What a node should do after After Effects crashed on a job. Pure.
//
// - RestartNode: the machine itself looks sick (RESTART_AFTER_CONSECUTIVE_FAILURES failures in a
//   row, or RESTART_AFTER_CRASHES_PER_HOUR crashes within an hour): reboot it, move all its work.
// - ReassignWork: this node has failed this job BLOCK_AFTER_JOB_FAILURES times; it is kept off
//   the job and the chunk goes elsewhere.
// - ResetAndRestart: otherwise, a one-off: close After Effects and render the chunk's missing
//   frames again (on this node or another).
import { CrashAction } from '../../generated/prisma/client.ts';

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
