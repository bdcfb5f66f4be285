import type { RateLimitCounter } from '../../ports.ts';

/** The counter drops ended windows once it holds this many keys. */
const SWEEP_SIZE = 10_000;

/** The embedded default for a single replica. */
export function createMemoryRateLimitCounter(now: () => number = Date.now): RateLimitCounter {
  const windows = new Map<string, { count: number; endsAt: number }>();
  return {
    async hit(key, windowMs) {
      const at = now();
      if (windows.size >= SWEEP_SIZE) {
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
