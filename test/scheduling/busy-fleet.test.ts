// A farm with work waiting and no node free, its usual state under load: a scheduling pass leaves
// the queue unread and no chunk split, yet still fails the jobs whose frame ranges ran out of
// attempts. Agents are driven over signed HTTP; the statements are those Prisma sends.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_CHUNK_ATTEMPTS } from '../../src/domain/scheduling/failure-policy.ts';
import { clearQueue, parkAllNodes, preparedOn } from '../support/agent.ts';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { jobChunksAttempt } from '../support/rows.ts';
import { statementsDuring } from '../support/statements.ts';

let t: TestApp;
let user: TestUser;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  user = await t.user(100_000);
});

// Each test places its own job, with no other job's work in the queue.
beforeEach(() => clearQueue(t));

afterAll(async () => {
  await t?.close();
});

/**
 * The queue's reads: a job's facts (JOB_FACTS in scheduler.ts) are read only with the waiting
 * work, and a job's chunk size only to split its chunks for the fleet.
 */
const READS_QUEUE = /"render_jobs"\."(replica_path|chunk_size)"/;

const passStatements = () => statementsDuring(t, () => t.app.services.scheduler.assignWork());

const stepOf = async (jobId: string) => (await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token })).body.step as string;

describe('a scheduling pass while no node can take work', () => {
  it('reads none of the queue, and reads it again once a node can take some', async () => {
    const node = await t.onlineNode('busy-fleet-reader');
    const job = await submitRender(t, user.token, { duration_sec: 2, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    await parkAllNodes(t);

    expect((await passStatements()).filter((sql) => READS_QUEUE.test(sql))).toEqual([]);
    expect(await stepOf(job.id)).toBe('Rendering');

    const admin = await t.token(randomUUID(), { admin: true });
    const unparked = await t.rest('PATCH', `/v1/nodes/${node.id}`, { token: admin, body: { accepts_new_jobs: true } });
    expect(unparked.status).toBe(200);
    const reads = (await passStatements()).flatMap((sql) => [...sql.matchAll(new RegExp(READS_QUEUE, 'g'))].map((match) => match[1]));
    expect(new Set(reads)).toEqual(new Set(['replica_path', 'chunk_size']));
    expect((await t.takeCommands(node)).map((command) => [command.type, command.job_id])).toEqual([['render_chunk', job.id]]);

    // Now busy with that chunk: nothing to place on, so nothing read.
    expect((await passStatements()).filter((sql) => READS_QUEUE.test(sql))).toEqual([]);
  });

  it('fails a job whose frame ranges are out of attempts', async () => {
    const node = await t.onlineNode('busy-fleet-failer');
    const job = await submitRender(t, user.token, { duration_sec: 1, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    await parkAllNodes(t);
    await jobChunksAttempt(t, job.id, MAX_CHUNK_ATTEMPTS);

    await t.app.services.scheduler.assignWork();
    expect(await stepOf(job.id)).toBe('Failed');
  });

  it('leaves a job with attempts left rendering', async () => {
    const node = await t.onlineNode('busy-fleet-keeper');
    const job = await submitRender(t, user.token, { duration_sec: 1, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    await parkAllNodes(t);
    await jobChunksAttempt(t, job.id, MAX_CHUNK_ATTEMPTS - 1);

    await t.app.services.scheduler.assignWork();
    expect(await stepOf(job.id)).toBe('Rendering');
  });
});
