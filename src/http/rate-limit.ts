// Requests per user and per node agent in a fixed window, counted by the counter the composition
// root chose (Redis when there is one, so that every replica sees the same count). A counter that
// cannot answer lets the request through: a Redis outage must not refuse all traffic.
import { withTimeout } from '../adapters/deadline.ts';
import type { Actor } from '../domain/actor.ts';
import { RateLimitedError } from '../domain/errors.ts';
import type { RateLimitCounter, WindowCount } from '../ports.ts';

export interface RateLimitSettings {
  windowSec: number;
  /** Requests a user may make per window; 0 turns the limit off. */
  userRequests: number;
  /** Requests a node agent may make per window; 0 turns the limit off. */
  nodeRequests: number;
}

export interface RateLimiter {
  /** Counts the actor's request; the error to answer with when it is over its limit. */
  admit(actor: Actor): Promise<RateLimitedError | undefined>;
}

/** Over this, a counter that has not answered is treated as failed and the request goes through. */
const COUNTER_TIMEOUT_MS = 500;

function budgetOf(actor: Actor, settings: RateLimitSettings): { key: string; limit: number } | undefined {
  // Admins and services are operators and other systems (fleet registration, the gateway's own
  // calls); what they send is already trusted and can be heavy by design.
  if (actor.kind === 'user' && !actor.isAdmin && settings.userRequests > 0) {
    return { key: `user:${actor.userId}`, limit: settings.userRequests };
  }
  if (actor.kind === 'node' && settings.nodeRequests > 0) return { key: `node:${actor.nodeId}`, limit: settings.nodeRequests };
  return undefined;
}

export function createRateLimiter(
  counter: RateLimitCounter,
  settings: RateLimitSettings,
  /** Told of every failed count (the request was let through) and whether it broke a good run. */
  onCounterError: (error: unknown, firstOfRun: boolean) => void,
): RateLimiter {
  const windowMs = settings.windowSec * 1000;
  let failing = false;
  return {
    async admit(actor) {
      const budget = budgetOf(actor, settings);
      if (!budget) return undefined;
      let window: WindowCount;
      try {
        window = await withTimeout(counter.hit(budget.key, windowMs), COUNTER_TIMEOUT_MS, 'the rate limit counter');
        failing = false;
      } catch (error) {
        onCounterError(error, !failing);
        failing = true;
        return undefined;
      }
      if (window.count <= budget.limit) return undefined;
      return new RateLimitedError(Math.max(1, Math.ceil(window.resetInMs / 1000)), budget.limit, settings.windowSec);
    },
  };
}
