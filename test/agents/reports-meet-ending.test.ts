// Agent reports that meet their job's ending. Found by the soak: a frame batch read its chunk
// before it locked the job, so a cancel committing in between was not seen. The frame was taken,
// the withdrawn chunk went back to Rendering, and the Cancelled job got an event after its
// terminal one, which its subscribers never heard (they end at the terminal step). Chunk failures
// and crash reports read their chunk the same way, without the job's lock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkOn, preparedOn } from '../support/agent.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { type RowLocks, rowLocks } from '../support/row-locks.ts';

let t: TestApp;
let locks: RowLocks;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  locks = rowLocks(t);
});

afterAll(async () => {
  await locks?.endAll();
  await t?.close();
});

type Chunk = Awaited<ReturnType<typeof chunkOn>>;

/** An agent's reports about a chunk it holds, as the signed routes take them. */
const reports: Array<[string, (jobId: string, chunk: Chunk, nodeId: string) => [string, Record<string, unknown>]]> = [
  ['a frame report', (jobId, chunk) => [`/v1/internal/render/jobs/${jobId}/frames`, { frame_job_id: chunk.frame_job_id, frame_number: Number(chunk.start_frame), file_size_bytes: 1024, lease: chunk.lease }]],
  ['a chunk failure', (jobId, chunk) => [`/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/fail`, { lease: chunk.lease, error: 'out of memory' }]],
  ['a crash report', (jobId, chunk, nodeId) => [`/v1/internal/render/jobs/${jobId}/crash`, { node_id: nodeId, frame_job_id: chunk.frame_job_id, lease: chunk.lease, crash_signal: 'SIGSEGV' }]],
];

describe('an agent report that meets its job being cancelled', () => {
  it.each(reports)('%s is refused once the cancel commits, and the job keeps its terminal event as its last', async (_name, reportOf) => {
    const user = await t.user(100_000);
    const node = await t.onlineNode(`ending-race-${_name.replaceAll(' ', '-')}`);
    const job = await submitRender(t, user.token, { duration_sec: 1, frame_rate: 30 });
    await preparedOn(t, node, job.id);
    const chunk = await chunkOn(t, node);
    const prisma = t.app.services.db.prisma;

    // The cancel's own transaction, as endJob makes it: the job row first, then its chunks withdrawn.
    const ending = await locks.hold(
      `WITH ended AS (UPDATE render_jobs SET step = 'Cancelled', cancel_reason = 'soak', event_seq = event_seq + 1 WHERE id = $1 RETURNING id)
       UPDATE frame_jobs SET status = 'Cancelled', node_id = NULL, lease_token = NULL WHERE render_job_id = (SELECT id FROM ended)`,
      [job.id],
    );
    const [path, body] = reportOf(job.id, chunk, node.id);
    let answered = false;
    const report = t.signed(node, 'POST', path, body).finally(() => (answered = true));
    // It waits for the cancel's lock; one answered first did not (a refused body would be).
    while ((await locks.waiters()) === 0 && !answered) await new Promise((resolve) => setTimeout(resolve, 20));
    const { eventSeq } = await prisma.renderJob.findUniqueOrThrow({ where: { id: job.id } });
    await ending.release();

    const answer = await report;
    expect(answer.status, JSON.stringify(answer.body)).toBe(409);
    const after = await prisma.renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(after).toMatchObject({ step: 'Cancelled', framesRendered: 0, eventSeq: eventSeq + 1 });
    expect(await prisma.frameJob.count({ where: { renderJobId: job.id, status: { not: 'Cancelled' } } })).toBe(0);
    expect(await prisma.frame.count({ where: { renderJobId: job.id, rendered: true } })).toBe(0);
  });
});
