// The servers the global setup provides answer, whichever they are, the configured ones or private
// ones: a database cloned from the migrated template takes a query and Redis answers PING.
import { expect, inject, it } from 'vitest';
import { createTestDatabase } from '../support/database.ts';
import { ping, selectOne } from './probes.ts';

it('clones databases that answer from the template', async () => {
  const database = await createTestDatabase();
  try {
    expect(await selectOne(database.url)).toBe(1);
  } finally {
    await database.drop();
  }
});

it('provides a Redis that answers PING', async () => {
  expect(await ping(inject('redisUrl'))).toBe('PONG');
});
