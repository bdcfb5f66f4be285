import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import type { RateLimitCounter } from '../../ports.ts';

export interface RedisRateLimitCounterOptions {
  /** Namespaces the keys so that several deployments or test runs can share one Redis. */
  keyPrefix: string;
  clientName?: string;
  /** Receives connection errors; the client reconnects by itself. */
  onError?: (error: unknown) => void;
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
const HIT_SCRIPT_SHA1 = createHash('sha1').update(HIT_SCRIPT).digest('hex');

/** Shared by every replica, so a caller's budget is the same whichever replica it reaches. */
export async function createRedisRateLimitCounter(url: string, options: RedisRateLimitCounterOptions): Promise<RateLimitCounter> {
  let connected = false;
  const client = createClient({
    url,
    name: options.clientName,
    // While Redis is away, commands fail at once (and the request goes through) instead of
    // queueing behind the reconnection.
    disableOfflineQueue: true,
    // The rate limiter gives every count its own deadline; the client's per-command timeout (an
    // AbortSignal and a timer per command) would only add CPU.
    commandOptions: { timeout: 0 },
    socket: {
      reconnectStrategy: (retries, cause) => (connected ? Math.min(50 * 2 ** retries, 2_000) : cause),
    },
  });
  client.on('error', options.onError ?? (() => undefined));
  await client.connect();
  connected = true;
  return {
    async hit(key, windowMs) {
      const script = { keys: [options.keyPrefix + key], arguments: [String(windowMs)] };
      // By digest: the script's text goes over the wire only when this Redis has not seen it
      // yet (or was restarted since), not with every request.
      const reply = (await client.evalSha(HIT_SCRIPT_SHA1, script).catch((error: unknown) => {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
        return client.eval(HIT_SCRIPT, script);
      })) as [number, number];
      return { count: Number(reply[0]), resetInMs: Number(reply[1]) };
    },
    async close() {
      client.destroy();
    },
  };
}
