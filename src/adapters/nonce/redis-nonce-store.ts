import { createClient } from 'redis';
import type { NonceStore } from '../../ports.ts';

export interface RedisNonceStoreOptions {
  /** Namespaces the keys so that several deployments or test runs can share one Redis. */
  keyPrefix?: string;
  /** Receives connection errors; the client reconnects by itself. */
  onError?: (error: unknown) => void;
}

/** Shared by every replica, so a signed request replayed against another replica is refused too. */
export async function createRedisNonceStore(url: string, options: RedisNonceStoreOptions = {}): Promise<NonceStore> {
  const prefix = options.keyPrefix ?? 'nonce:';
  let connected = false;
  const client = createClient({
    url,
    socket: {
      // A wrong REDIS_URL fails start-up with its error instead of retrying forever; once the
      // connection has been up, drops are retried so that a Redis restart is survived.
      reconnectStrategy: (retries, cause) => (connected ? Math.min(50 * 2 ** retries, 2_000) : cause),
    },
  });
  client.on('error', options.onError ?? reportError);
  await client.connect();
  connected = true;

  return {
    async claim(value, ttlSeconds) {
      const reply = await client.set(prefix + value, '1', {
        condition: 'NX',
        // EX takes whole seconds; rounding up never lets a value be claimed again too early.
        expiration: { type: 'EX', value: Math.max(1, Math.ceil(ttlSeconds)) },
      });
      return reply !== null;
    },

    async close() {
      await client.close();
    },
  };
}

function reportError(error: unknown): void {
  process.emitWarning(error instanceof Error ? error : String(error), { type: 'RedisNonceStoreError' });
}
