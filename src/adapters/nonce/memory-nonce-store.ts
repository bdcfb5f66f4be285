import { systemClock, type Clock, type NonceStore } from '../../ports.ts';

const SWEEP_INTERVAL_MS = 1_000;

/** The embedded default for a single replica. */
export function createMemoryNonceStore(options: { clock?: Clock } = {}): NonceStore {
  const clock = options.clock ?? systemClock;
  const expiries = new Map<string, number>();
  let nextSweepAt = 0;

  // At most one full sweep a second keeps memory bounded by what was claimed within the longest
  // ttl, whatever the mix of ttls, at a cost that stays proportional to the claim rate.
  const sweep = (now: number) => {
    if (now < nextSweepAt) return;
    nextSweepAt = now + SWEEP_INTERVAL_MS;
    for (const [value, expiresAt] of expiries) {
      if (expiresAt <= now) expiries.delete(value);
    }
  };

  return {
    async claim(value, ttlSeconds) {
      const now = clock.now().getTime();
      sweep(now);
      const expiresAt = expiries.get(value);
      if (expiresAt !== undefined && expiresAt > now) return false;
      expiries.set(value, now + ttlSeconds * 1_000);
      return true;
    },

    async close() {
      expiries.clear();
    },
  };
}
