import { createClient } from 'redis';
import { withTimeout } from '../deadline.ts';
import { type Clock, type NonceStore, systemClock } from '../../ports.ts';
import { createMemoryNonceStore } from './memory-nonce-store.ts';

export interface RedisNonceStoreOptions {
  /** Namespaces the keys so that several deployments or test runs can share one Redis. */
  keyPrefix?: string;
  /**
   * Receives connection errors (the client reconnects by itself) and the news that claims moved
   * to this replica's memory because Redis could not answer.
   */
  onError?: (error: unknown) => void;
  /** The clock of the fallback claims' expiry; Redis expires its keys by its own. */
  clock?: Clock;
}

/** Longest a claim waits for Redis before this replica decides alone. */
const CLAIM_TIMEOUT_MS = 1_000;

/**
 * Shared by every replica, so a signed request replayed against another replica is refused too.
 *
 * While Redis cannot answer, claims are made in this replica's memory instead of refusing every
 * agent request: a render farm whose agents cannot heartbeat would see every node go Offline and
 * its work re-cut within seconds. Replays to the same replica stay refused throughout; a replay
 * sent to another replica during the outage is the one that can pass, and it can only repeat a
 * report the node already made (reports are idempotent or guarded by their lease). When Redis is
 * back the values claimed meanwhile are written to it before it is trusted again, so from then on
 * every replica refuses them.
 */
export async function createRedisNonceStore(url: string, options: RedisNonceStoreOptions = {}): Promise<NonceStore> {
  const prefix = options.keyPrefix ?? 'nonce:';
  const onError = options.onError ?? reportError;
  const clock = options.clock ?? systemClock;
  let connected = false;
  const client = createClient({
    url,
    // A claim that cannot be made now falls back at once instead of waiting for a reconnection.
    disableOfflineQueue: true,
    // No per-command timeout of the client's (an AbortSignal and a timer per command): claims
    // have their own deadline (withTimeout).
    commandOptions: { timeout: 0 },
    socket: {
      // A wrong REDIS_URL fails start-up with its error instead of retrying forever; once the
      // connection has been up, drops are retried so that a Redis restart is survived.
      reconnectStrategy: (retries, cause) => (connected ? Math.min(50 * 2 ** retries, 2_000) : cause),
    },
  });
  client.on('error', onError);
  await client.connect();
  connected = true;

  const local = createMemoryNonceStore({ clock });
  /** Claimed in memory and not yet written to Redis. */
  let unsynced: { value: string; expiresAt: number }[] = [];
  let syncing: Promise<void> | undefined;
  // Reported once per outage, not once per agent request.
  let fallingBack = false;

  const claimInRedis = async (value: string, expiresInMs: number) =>
    (await withTimeout(
      client.set(prefix + value, '1', {
        condition: 'NX',
        // PX in whole milliseconds; rounding up never lets a value be claimed again too early.
        expiration: { type: 'PX', value: Math.max(1, Math.ceil(expiresInMs)) },
      }),
      CLAIM_TIMEOUT_MS,
      'Redis',
    )) !== null;

  const writeBack = async () => {
    while (unsynced.length > 0) {
      const batch = unsynced;
      unsynced = [];
      const now = clock.now().getTime();
      try {
        await Promise.all(batch.filter(({ expiresAt }) => expiresAt > now).map(({ value, expiresAt }) => claimInRedis(value, expiresAt - now)));
      } catch (error) {
        unsynced = [...batch, ...unsynced];
        throw error;
      }
    }
  };
  const startWriteBack = () => {
    syncing ??= writeBack()
      .catch(onError)
      .finally(() => {
        syncing = undefined;
      });
  };
  client.on('ready', startWriteBack);

  return {
    async claim(value, ttlSeconds) {
      if (unsynced.length === 0 && client.isReady) {
        try {
          const claimed = await claimInRedis(value, ttlSeconds * 1_000);
          fallingBack = false;
          return claimed;
        } catch (error) {
          if (!fallingBack) {
            onError(new Error('Redis could not answer a replay check; this replica checks replays by itself until it is back', { cause: error }));
          }
          fallingBack = true;
        }
      }
      const claimed = await local.claim(value, ttlSeconds);
      if (claimed) unsynced.push({ value, expiresAt: clock.now().getTime() + ttlSeconds * 1_000 });
      if (client.isReady) startWriteBack();
      return claimed;
    },

    async close() {
      await syncing;
      await local.close();
      await client.close();
    },
  };
}

function reportError(error: unknown): void {
  process.emitWarning(error instanceof Error ? error : String(error), { type: 'RedisNonceStoreError' });
}
