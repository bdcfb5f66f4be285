// Requests per user and per node agent in a fixed window, counted in Redis when there is one so
// that every replica sees the same count, or in this process otherwise. A counter that cannot
// answer lets the request through: a Redis outage must not refuse all traffic.
import { createClient } from 'redis';
import type { Actor } from '../domain/actor.ts';
import { RateLimitedError } from '../domain/errors.ts';

export interface RateLimitSettings {
  windowSec: number;
  /** Requests a user may make per window; 0 turns the limit off. */
  userRequests: number;
  /** Requests a node agent may make per window; 0 turns the limit off. */
  nodeRequests: number;
}

export interface WindowCount {
  /** Requests in the current window, this one included. */
  count: number;
  /** Until the window ends. */
  resetInMs: number;
}

export interface RateLimitCounter {
  hit(key: string, windowMs: number): Promise<WindowCount>;
  close(): Promise<void>;
}

export interface RateLimiter {
  /** Counts the actor's request; the error to answer with when it is over its limit. */
  admit(actor: Actor): Promise<RateLimitedError | undefined>;
  close(): Promise<void>;
}

/** Over this, a counter that has not answered is treated as failed and the request goes through. */
const COUNTER_TIMEOUT_MS = 500;
/** The in-process counter drops ended windows once it holds this many keys. */
const MEMORY_SWEEP_SIZE = 10_000;

export function createMemoryRateLimitCounter(now: () => number = Date.now): RateLimitCounter {
  const windows = new Map<string, { count: number; endsAt: number }>();
  return {
    async hit(key, windowMs) {
      const at = now();
      if (windows.size >= MEMORY_SWEEP_SIZE) {
        for (const [stale, window] of windows) if (window.endsAt <= at) windows.delete(stale);
      }
      let window = windows.get(key);
      if (!window || window.endsAt <= at) {
        window = { count: 0, endsAt: at + windowMs };
        windows.set(key, window);
      }
      window.count += 1;
      return { count: window.count, resetInMs: window.endsAt - at };
    },
    async close() {
      windows.clear();
    },
  };
}

// One round trip, atomic across replicas. The window starts with its first request; a key that
// lost its expiry somehow gets it back instead of counting forever.
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

export async function createRedisRateLimitCounter(
  url: string,
  options: { keyPrefix: string; clientName?: string; onError?: (error: unknown) => void },
): Promise<RateLimitCounter> {
  let connected = false;
  const client = createClient({
    url,
    name: options.clientName,
    // While Redis is away, commands fail at once (and the request goes through) instead of
    // queueing behind the reconnection.
    disableOfflineQueue: true,
    socket: {
      reconnectStrategy: (retries, cause) => (connected ? Math.min(50 * 2 ** retries, 2_000) : cause),
    },
  });
  client.on('error', options.onError ?? (() => undefined));
  await client.connect();
  connected = true;
  return {
    async hit(key, windowMs) {
      const reply = (await client.eval(HIT_SCRIPT, { keys: [options.keyPrefix + key], arguments: [String(windowMs)] })) as [number, number];
      return { count: Number(reply[0]), resetInMs: Number(reply[1]) };
    },
    async close() {
      client.destroy();
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the rate limit counter did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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
        window = await withTimeout(counter.hit(budget.key, windowMs), COUNTER_TIMEOUT_MS);
        failing = false;
      } catch (error) {
        onCounterError(error, !failing);
        failing = true;
        return undefined;
      }
      if (window.count <= budget.limit) return undefined;
      return new RateLimitedError(Math.max(1, Math.ceil(window.resetInMs / 1000)), budget.limit, settings.windowSec);
    },
    close: () => counter.close(),
  };
}
