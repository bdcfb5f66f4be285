// A job's steps as the soak's callers judge them, from the state machine that owns them.
import type { JobStep } from '../../src/generated/prisma/client.ts';
import { TERMINAL_STEPS, TRANSITIONS } from '../../src/domain/jobs/state-machine.ts';

export const isTerminal = (step: string): boolean => (TERMINAL_STEPS as readonly string[]).includes(step);

/**
 * Whether a job in step `from` can later be in step `to`, through any number of moves: a
 * subscriber that reconnects hears where the job stands and may have missed the steps between.
 */
export function canReach(from: string, to: string): boolean {
  const seen = new Set<string>([from]);
  const queue = [from];
  for (let step = queue.shift(); step !== undefined; step = queue.shift()) {
    if (step === to) return true;
    for (const next of TRANSITIONS[step as JobStep] ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
}
