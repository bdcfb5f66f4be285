// ensureTestServers, the global setup's choice of servers: the configured ones when they answer,
// private ones started from the installed programs when they do not, and one message naming what
// is missing when neither is possible.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../bench/lib/service.ts';
import { ensureTestServers, TestServersUnavailable } from '../support/servers.ts';
import { listensAt, ping, selectOne } from './probes.ts';

/** Configured URLs at which nothing listens: a free port is one nobody has taken. */
async function deadPorts() {
  return { postgres: await freePort(), redis: await freePort() };
}

// A PATH on which no program is found.
let emptyDir: string;
beforeAll(async () => {
  emptyDir = await mkdtemp(join(tmpdir(), 'no-programs-'));
});
afterAll(() => rm(emptyDir, { recursive: true, force: true }));

describe('ensureTestServers', () => {
  it('uses the configured servers when they answer, and needs no programs for that', async () => {
    const configured = { TEST_DATABASE_URL: inject('adminDatabaseUrl'), TEST_REDIS_URL: inject('redisUrl') };
    const servers = await ensureTestServers({ ...configured, PATH: emptyDir });
    await servers.stop();
    expect(servers).toMatchObject({ databaseUrl: configured.TEST_DATABASE_URL, redisUrl: configured.TEST_REDIS_URL, notes: [] });
    expect(servers.privatePostgres).toBeUndefined();
    expect(servers.privateRedis).toBeUndefined();
    expect(await selectOne(configured.TEST_DATABASE_URL)).toBe(1);
  });

  it('starts a private PostgreSQL cluster and Redis when nothing answers, and stop() removes them', { timeout: 60_000 }, async () => {
    const dead = await deadPorts();
    const configured = {
      TEST_DATABASE_URL: `postgresql://postgres@127.0.0.1:${dead.postgres}/postgres`,
      TEST_REDIS_URL: `redis://127.0.0.1:${dead.redis}`,
    };
    const servers = await ensureTestServers({ ...configured, PATH: process.env.PATH });
    const folder = servers.privatePostgres?.dir;
    try {
      expect(servers.databaseUrl).not.toBe(configured.TEST_DATABASE_URL);
      expect(servers.redisUrl).not.toBe(configured.TEST_REDIS_URL);
      expect(await selectOne(servers.databaseUrl)).toBe(1);
      expect(await ping(servers.redisUrl)).toBe('PONG');
      expect(folder && existsSync(folder)).toBe(true);
      expect(servers.notes).toEqual([
        `PostgreSQL at ${configured.TEST_DATABASE_URL} (TEST_DATABASE_URL) did not answer: connect ECONNREFUSED 127.0.0.1:${dead.postgres}; this run uses a private PostgreSQL cluster at ${servers.databaseUrl}.`,
        `Redis at ${configured.TEST_REDIS_URL} (TEST_REDIS_URL) did not answer: connect ECONNREFUSED 127.0.0.1:${dead.redis}; this run uses a private Redis at ${servers.redisUrl}.`,
      ]);
    } finally {
      await servers.stop();
    }
    expect(existsSync(folder as string)).toBe(false);
    expect(await listensAt(servers.databaseUrl)).toBe(false);
    expect(await listensAt(servers.redisUrl)).toBe(false);
  });

  it('throws one message naming the missing programs and the variables when nothing answers and no program is found', async () => {
    const dead = await deadPorts();
    const configured = {
      TEST_DATABASE_URL: `postgresql://postgres@127.0.0.1:${dead.postgres}/postgres`,
      TEST_REDIS_URL: `redis://127.0.0.1:${dead.redis}`,
    };
    const failure = ensureTestServers({ ...configured, PATH: emptyDir });
    await expect(failure).rejects.toBeInstanceOf(TestServersUnavailable);
    await expect(failure).rejects.toThrow(
      [
        'The tests need PostgreSQL and Redis:',
        `- PostgreSQL at ${configured.TEST_DATABASE_URL} (TEST_DATABASE_URL) did not answer: connect ECONNREFUSED 127.0.0.1:${dead.postgres}, and no private one can be started: pg_config is not on PATH (Debian's postgresql package installs it).`,
        `- Redis at ${configured.TEST_REDIS_URL} (TEST_REDIS_URL) did not answer: connect ECONNREFUSED 127.0.0.1:${dead.redis}, and no private one can be started: redis-server is not on PATH (Debian's redis-server package installs it).`,
        'Start PostgreSQL and Redis, set TEST_DATABASE_URL and TEST_REDIS_URL to servers that run, or install what is missing so that the tests start private ones.',
      ].join('\n'),
    );
  });

  it('names only the server that does not answer, without the password of its URL', async () => {
    const { postgres } = await deadPorts();
    const failure = ensureTestServers({
      TEST_DATABASE_URL: `postgresql://postgres:secret@127.0.0.1:${postgres}/postgres`,
      TEST_REDIS_URL: inject('redisUrl'),
      PATH: emptyDir,
    });
    await expect(failure).rejects.toThrow(
      [
        'The tests need PostgreSQL:',
        `- PostgreSQL at postgresql://postgres:***@127.0.0.1:${postgres}/postgres (TEST_DATABASE_URL) did not answer: connect ECONNREFUSED 127.0.0.1:${postgres}, and no private one can be started: pg_config is not on PATH (Debian's postgresql package installs it).`,
        'Start PostgreSQL, set TEST_DATABASE_URL to a server that runs, or install what is missing so that the tests start a private one.',
      ].join('\n'),
    );
  });
});
