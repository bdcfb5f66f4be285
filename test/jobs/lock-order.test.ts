// A frame batch and a heartbeat sweep, each a change of two jobs, meet in the order that deadlocks
// when jobs are locked as each change comes to them: the sweep releases the lost node of the
// later job first, and the batch locks the earlier job first. Two transactions of the test's own
// hold each side at the point where the other must arrive, so the meeting happens every run; with
// every change locking its jobs at once and by id, both finish and nothing is aborted.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkOn, preparedOn } from '../support/agent.ts';
import { type AgentCommand, type HttpAnswer, startTestApp, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { controllableClock } from '../support/clock.ts';
import { submitRender } from '../support/jobs.ts';
import { until } from '../support/poll.ts';
import { type RowLocks, rowLocks } from '../support/row-locks.ts';

const clock = controllableClock();
let t: TestApp;
let user: TestUser;
let locks: RowLocks;
const held: pg.Client[] = [];

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  user = await t.user(1_000_000);
  locks = rowLocks(t);
});

afterAll(async () => {
  await locks?.endAll();
  for (const client of held) await client.end().catch(() => undefined);
  await t?.close();
});

const holdLock = (sql: string, params: unknown[]) => locks.hold(sql, params);
const lockWaiters = () => locks.waiters();

/**
 * Deadlocks PostgreSQL detected in this database. A session hands its counts over at times of
 * its own choosing, and at the latest when it ends: the app's sessions are ended first (its pool
 * opens new ones when it needs them).
 */
async function deadlocks(): Promise<number> {
  await locks.endAll();
  const client = new pg.Client({ connectionString: t.databaseUrl });
  held.push(client);
  await client.connect();
  await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  await until('the ended sessions to be gone', async () => {
    const { rows } = await client.query('SELECT count(*)::int AS others FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return rows[0].others === 0;
  });
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query('SELECT deadlocks::int AS deadlocks FROM pg_stat_database WHERE datname = current_database()');
  return rows[0].deadlocks;
}

const untilWaiters = (count: number) => until(`${count} sessions waiting for a lock`, async () => (await lockWaiters()) === count, { timeoutMs: 15_000 });

describe('two changes of the same jobs', () => {
  it('a frame batch and a heartbeat sweep meeting in opposite orders both finish', { timeout: 120_000 }, async () => {
    // Each job asks for an After Effects version only its own nodes have, so that each chunk goes where the test says.
    const job = async (aeVersion: string) => (await submitRender(t, user.token, { duration_sec: 2, ae_version: aeVersion })).id;
    const node = (name: string, aeVersion: string) => t.onlineNode(name, { aeVersions: [aeVersion] });
    // Swept in id order: the node of the later job first.
    const lostOfLater = await node('lost-of-later', '31.1');
    const lostOfEarlier = await node('lost-of-earlier', '31.2');
    const earlier = await job('31.2');
    const later = await job('31.1');
    expect(lostOfLater.id < lostOfEarlier.id && earlier < later, 'nodes and jobs ordered as the test needs').toBe(true);
    const reporterOfEarlier = await node('reporter-of-earlier', '31.2');
    const reporterOfLater = await node('reporter-of-later', '31.1');
    const blockers = [await node('blocker-c', '31.3'), await node('blocker-d', '31.4')] as const;
    const blockerJobs = [await job('31.3'), await job('31.4')] as const;

    await preparedOn(t, lostOfEarlier, earlier);
    await preparedOn(t, lostOfLater, later);
    for (const [index, blocker] of blockers.entries()) await preparedOn(t, blocker, blockerJobs[index] as string);
    const chunkOf = new Map<TestNode, AgentCommand>();
    for (const holder of [lostOfLater, lostOfEarlier, reporterOfEarlier, reporterOfLater, ...blockers]) chunkOf.set(holder, await chunkOn(t, holder));
    const report = (reporter: TestNode): Promise<HttpAnswer> => {
      const chunk = chunkOf.get(reporter) as AgentCommand;
      return t.signed(reporter, 'POST', `/v1/internal/render/jobs/${chunk.job_id}/frames`, {
        frame_job_id: chunk.frame_job_id,
        frame_number: chunk.start_frame,
        file_size_bytes: 1024,
        lease: chunk.lease,
      });
    };

    // The two lost nodes stop heartbeating; everyone else carries on.
    clock.advance(16_000);
    for (const alive of [reporterOfEarlier, reporterOfLater, ...blockers]) await t.heartbeat(alive);

    // Two batches wait on the blocker jobs, so the next two reports leave together as one batch of both jobs.
    const blockerRows = await holdLock('SELECT 1 FROM render_jobs WHERE id = ANY($1::uuid[]) FOR KEY SHARE', [[...blockerJobs]]);
    const earlierChunk = chunkOf.get(lostOfEarlier)?.frame_job_id;
    // The sweep stops at the earlier job's lost chunk, after it took what it takes of the later job.
    const sweepStop = await holdLock('SELECT 1 FROM frame_jobs WHERE id = $1::uuid FOR UPDATE', [earlierChunk]);
    const blocked: Promise<HttpAnswer>[] = [];
    for (const blocker of blockers) {
      blocked.push(report(blocker));
      await untilWaiters(blocked.length);
    }
    const batch = [report(reporterOfEarlier), report(reporterOfLater)];
    await new Promise((resolve) => setTimeout(resolve, 500));
    const sweep = t.app.services.scheduler.sweepHeartbeats();
    await untilWaiters(3);

    await blockerRows.release();
    for (const answer of await Promise.all(blocked)) expect(answer.status, JSON.stringify(answer.body)).toBe(204);
    // The batch of both jobs now waits on the sweep, which still waits on the test.
    await untilWaiters(2);
    await sweepStop.release();

    expect((await sweep).offline.sort()).toEqual([lostOfLater.id, lostOfEarlier.id].sort());
    for (const answer of await Promise.all(batch)) expect(answer.status, JSON.stringify(answer.body)).toBe(204);
    // The batch retries a deadlock by itself, so the answers alone would not show one, but every
    // agent of the batch waited PostgreSQL's deadlock timeout for it: PostgreSQL counts them.
    expect(await deadlocks()).toBe(0);
  });
});
