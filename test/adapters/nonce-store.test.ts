import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMemoryNonceStore } from '../../src/adapters/nonce/memory-nonce-store.ts';
import { createRedisNonceStore } from '../../src/adapters/nonce/redis-nonce-store.ts';
import type { NonceStore } from '../../src/ports.ts';

const redisUrl = inject('redisUrl');
const keyPrefix = `test:${randomUUID()}:nonce:`;

interface NonceStoreUnderTest {
  store: NonceStore;
  elapse(seconds: number): Promise<void>;
}

const implementations: [string, () => Promise<NonceStoreUnderTest>][] = [
  [
    'memory nonce store',
    async () => {
      let offsetMs = 0;
      const store = createMemoryNonceStore({ clock: { now: () => new Date(Date.now() + offsetMs) } });
      return {
        store,
        elapse: async (seconds) => {
          offsetMs += seconds * 1000;
        },
      };
    },
  ],
  [
    'Redis nonce store',
    async () => ({
      store: await createRedisNonceStore(redisUrl, { keyPrefix }),
      // Redis expires keys by its own clock.
      elapse: (seconds) => sleep(seconds * 1000),
    }),
  ],
];

describe.each(implementations)('%s', (_name, make) => {
  let subject: NonceStoreUnderTest;
  let store: NonceStore;
  const nonce = () => `v1=${randomUUID()}`;

  beforeAll(async () => {
    subject = await make();
    store = subject.store;
  });
  afterAll(async () => {
    await subject?.store.close();
  });

  it('grants a value once, then refuses it', async () => {
    const value = nonce();
    expect(await store.claim(value, 300)).toBe(true);
    expect(await store.claim(value, 300)).toBe(false);
    expect(await store.claim(value, 300)).toBe(false);
  });

  it('keeps values apart', async () => {
    expect(await store.claim(nonce(), 300)).toBe(true);
    expect(await store.claim(nonce(), 300)).toBe(true);
  });

  it('grants exactly one of many simultaneous claims of a value', async () => {
    const value = nonce();
    const results = await Promise.all(Array.from({ length: 20 }, () => store.claim(value, 300)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('forgets a value once its ttl has passed, and not before', async () => {
    const value = nonce();
    const other = nonce();
    expect(await store.claim(value, 1)).toBe(true);
    expect(await store.claim(other, 300)).toBe(true);
    await subject.elapse(1.2);
    expect(await store.claim(value, 1)).toBe(true);
    expect(await store.claim(value, 1)).toBe(false);
    expect(await store.claim(other, 300)).toBe(false);
  });
});

describe('Redis nonce store across replicas', () => {
  const stores: NonceStore[] = [];
  beforeAll(async () => {
    stores.push(
      await createRedisNonceStore(redisUrl, { keyPrefix }),
      await createRedisNonceStore(redisUrl, { keyPrefix }),
    );
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  it('refuses on one replica a value claimed on another', async () => {
    const [one, two] = stores as [NonceStore, NonceStore];
    const value = `v1=${randomUUID()}`;
    expect(await one.claim(value, 300)).toBe(true);
    expect(await two.claim(value, 300)).toBe(false);
    const [a, b] = await Promise.all([one.claim(`${value}-again`, 300), two.claim(`${value}-again`, 300)]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
  });

  it('fails to start, rather than retrying forever, when Redis cannot be reached', async () => {
    await expect(createRedisNonceStore('redis://127.0.0.1:1', { onError: () => undefined })).rejects.toThrow();
  });
});
