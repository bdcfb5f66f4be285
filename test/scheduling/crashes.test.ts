// The crash policy, the per-job blocklist, failed chunks and retry limits, through the signed
// agent routes.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STALL_TIMEOUT_MS, sweepStalledWork } from '../../src/domain/scheduling/stall-sweeper.ts';
import { chunkOn, clearQueue, preparedOn } from '../support/agent.ts';
import { type AgentCommand, startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { submitRender } from '../support/jobs.ts';
import { chunkAttempt, consecutiveFailures } from '../support/rows.ts';

type Node = TestNode;
type Command = AgentCommand;

let t: TestApp;
const clock = new ManualClock();
let admin: string;
let owner: { id: string; token: string };

const commandsFor = (node: Node) => t.heartbeat(node);

/** A job in Rendering whose chunks wait for nodes, its replica prepared on `preparer`; earlier tests' jobs are cancelled first. */
async function renderingJob(preparer: Node): Promise<string> {
  await clearQueue(t);
  const job = await submitRender(t, owner.token, { quality: 'Low', duration_sec: 1 });
  await preparedOn(t, preparer, job.id);
  return job.id;
}

const crash = (node: Node, jobId: string, chunk: Command, extra: Record<string, unknown> = {}) =>
  t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/crash`, {
    node_id: node.id,
    frame_job_id: chunk.frame_job_id,
    last_known_frame: chunk.start_frame,
    crash_signal: 'SIGSEGV',
    ae_version: '24.1',
    error_log_tail: 'boom',
    lease: chunk.lease,
    ...extra,
  });

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
  owner = await t.user(100_000);
});
afterAll(() => t.close());

describe('crash reports', () => {
  it('resets After Effects on a first crash, then keeps a node that failed a job 3 times off it', async () => {
    const prisma = t.app.services.db.prisma;
    const flaky = await t.onlineNode('crash-flaky');
    const steady = await t.onlineNode('crash-steady');
    const jobId = await renderingJob(flaky);

    const first = await chunkOn(t, flaky);
    const answer = await crash(flaky, jobId, first);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ action_recommended: 'ResetAndRestart', reassigned_to_node_id: null });
    // The answer is the instruction: nothing is queued that would make the agent reset twice.
    expect((await commandsFor(flaky)).map((command) => command.type)).not.toContain('close_ae');
    const crashes = await t.rest('GET', `/v1/nodes/${flaky.id}`, { token: admin });
    expect(crashes.body).toMatchObject({ lifetime_crash_count: 1, consecutive_failures: 1 });
    // The crashed chunk's lease is dead.
    const late = await t.signed(flaky, 'POST', `/v1/internal/render/jobs/${jobId}/frames`, {
      frame_job_id: first.frame_job_id,
      frame_number: first.start_frame,
      lease: first.lease,
    });
    expect(late.status).toBe(409);

    clock.advance(1000);
    await crash(flaky, jobId, await chunkOn(t, flaky));
    clock.advance(1000);
    const third = await crash(flaky, jobId, await chunkOn(t, flaky));
    expect(third.body.action_recommended).toBe('ReassignWork');
    expect(third.body.reassigned_to_node_id).toBe(steady.id);
    const block = await prisma.jobNodeBlock.findUniqueOrThrow({ where: { renderJobId_nodeId: { renderJobId: jobId, nodeId: flaky.id } } });
    expect(block.failures).toBe(3);
    expect(block.blockedAt).not.toBeNull();
    const recorded = await prisma.nodeCrash.findMany({ where: { nodeId: flaky.id }, orderBy: { crashedAt: 'asc' } });
    expect(recorded.map((row) => row.recoveryAction)).toEqual(['ResetAndRestart', 'ResetAndRestart', 'ReassignWork']);
    expect(recorded[2]?.reassignedToNodeId).toBe(steady.id);

    // However often the scheduler runs, the blocked node gets none of this job's chunks.
    expect((await t.rest('PATCH', `/v1/nodes/${steady.id}`, { token: admin, body: { accepts_new_jobs: false } })).status).toBe(200);
    await t.app.services.scheduler.assignWork();
    expect(await prisma.frameJob.count({ where: { renderJobId: jobId, nodeId: flaky.id, status: { in: ['Assigned', 'Rendering'] } } })).toBe(0);
    expect((await t.rest('PATCH', `/v1/nodes/${steady.id}`, { token: admin, body: { accepts_new_jobs: true } })).status).toBe(200);
  });

  it('restarts a node that keeps failing, moving all its work', async () => {
    const prisma = t.app.services.db.prisma;
    const sick = await t.onlineNode('crash-sick');
    const jobId = await renderingJob(sick);
    const chunk = await chunkOn(t, sick);
    await consecutiveFailures(t, sick.id, 4);
    const answer = await crash(sick, jobId, chunk);
    expect(answer.body.action_recommended).toBe('RestartNode');
    const node = await prisma.renderNode.findUniqueOrThrow({ where: { id: sick.id } });
    expect(node.status).toBe('Offline');
    expect(await prisma.nodeCommand.count({ where: { nodeId: sick.id, type: 'restart' } })).toBe(0);
    expect(await prisma.frameJob.count({ where: { nodeId: sick.id, status: { in: ['Assigned', 'Rendering'] } } })).toBe(0);
  });

  it('refuses unsigned, cross-node and malformed crash reports and changes nothing', async () => {
    const prisma = t.app.services.db.prisma;
    const victim = await t.onlineNode('crash-victim');
    const intruder = await t.onlineNode('crash-intruder');
    const jobId = await renderingJob(victim);
    const chunk = await chunkOn(t, victim);
    const before = await prisma.nodeCrash.count();
    const path = `/v1/internal/render/jobs/${jobId}/crash`;
    expect((await t.rest('POST', path, { body: { node_id: victim.id } })).status).toBe(401);
    expect((await t.signed(intruder, 'POST', path, { node_id: victim.id, frame_job_id: chunk.frame_job_id })).status).toBe(403);
    expect((await t.signed(victim, 'POST', path, { node_id: victim.id, last_known_frame: -1 })).status).toBe(400);
    expect((await t.signed(victim, 'POST', path, { frame_job_id: chunk.frame_job_id })).status).toBe(400);
    expect((await t.signed(victim, 'POST', `/v1/internal/render/jobs/${randomUUID()}/crash`, { node_id: victim.id })).status).toBe(404);
    expect(await prisma.nodeCrash.count()).toBe(before);
  });
});

describe('failed chunks and retry limits', () => {
  it('renders a failed chunk again, and fails the job with a full refund when its frames ran out of attempts', async () => {
    const prisma = t.app.services.db.prisma;
    const worker = await t.onlineNode('fail-worker');
    const jobId = await renderingJob(worker);
    const chunk = await chunkOn(t, worker);
    const failed = await t.signed(worker, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/fail`, {
      lease: chunk.lease,
      error: 'missing font',
    });
    expect(failed.status).toBe(204);
    const retried = await prisma.frameJob.findMany({ where: { renderJobId: jobId, status: 'Pending', lastError: 'missing font' } });
    expect(retried).toHaveLength(1);
    expect(retried[0]).toMatchObject({ startFrame: chunk.start_frame, endFrame: chunk.end_frame, attempt: 1 });

    // The next failure of that range is its last.
    await chunkAttempt(t, retried[0]!.id, 4);
    clock.advance(1000);
    const last = await chunkOn(t, worker);
    expect(last.frame_job_id).toBe(retried[0]?.id);
    await t.signed(worker, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${last.frame_job_id}/fail`, { lease: last.lease, error: 'missing font' });
    const job = await t.rest('GET', `/v1/renders/${jobId}`, { token: owner.token });
    expect(job.body.step).toBe('Failed');
    expect(job.body.failed_message).toMatch(/failed 5 times/);
    const refund = await prisma.ledgerEntry.findUnique({ where: { idempotencyKey: `refund:render-job:${jobId}` } });
    expect(refund?.amountMinor).toBe(BigInt(job.body.paid_price_minor));
  });
});

describe('stalled chunks', () => {
  it('takes back a chunk that made no progress for the stall timeout and tells the node to close After Effects', async () => {
    const prisma = t.app.services.db.prisma;
    const hung = await t.onlineNode('stall-hung');
    const jobId = await renderingJob(hung);
    const chunk = await chunkOn(t, hung);
    expect((await sweepStalledWork(prisma, t.app.services.bus, clock)).stalled).toBe(0);
    // The manual clock started with the file, so it lags the rows' write times by the tests before.
    clock.advance(STALL_TIMEOUT_MS + 60_000);
    expect((await sweepStalledWork(prisma, t.app.services.bus, clock)).stalled).toBe(1);
    const stalled = await prisma.frameJob.findUniqueOrThrow({ where: { id: String(chunk.frame_job_id) } });
    expect(stalled).toMatchObject({ status: 'Failed', leaseToken: null });
    const again = await prisma.frameJob.findMany({ where: { renderJobId: jobId, status: 'Pending', startFrame: Number(chunk.start_frame) } });
    expect(again).toHaveLength(1);
    expect((await commandsFor(hung)).map((command) => command.type)).toContain('close_ae');
    const late = await t.signed(hung, 'POST', `/v1/internal/render/jobs/${jobId}/frames`, {
      frame_job_id: chunk.frame_job_id,
      frame_number: chunk.start_frame,
      lease: chunk.lease,
    });
    expect(late.status).toBe(409);
  });
});

describe('template cache reports', () => {
  it('records downloads, evictions and failures, and refuses bad reports', async () => {
    const node = await t.onlineNode('cache-node');
    const path = `/v1/internal/nodes/${node.id}/cache-update`;
    const md5 = 'c'.repeat(32);
    expect((await t.signed(node, 'POST', path, { action: 'Downloaded', aep_file_md5: md5, cache_used_gb: 7 })).status).toBe(204);
    let detail = await t.rest('GET', `/v1/nodes/${node.id}`, { token: admin });
    expect(detail.body).toMatchObject({ cached_template_md5s: [md5], cache_used_gb: 7 });
    clock.advance(1000);
    expect((await t.signed(node, 'POST', path, { action: 'Failed', aep_file_md5: md5, error_message: 'disk full' })).status).toBe(204);
    detail = await t.rest('GET', `/v1/nodes/${node.id}`, { token: admin });
    expect(detail.body.cached_template_md5s).toEqual([]);
    clock.advance(1000);
    expect((await t.signed(node, 'POST', path, { action: 'Verified', aep_file_md5: md5 })).status).toBe(204);
    clock.advance(1000);
    expect((await t.signed(node, 'POST', path, { action: 'Evicted', aep_file_md5: md5 })).status).toBe(204);
    detail = await t.rest('GET', `/v1/nodes/${node.id}`, { token: admin });
    expect(detail.body.cached_template_md5s).toEqual([]);
    expect((await t.signed(node, 'POST', path, { action: 'Lost', aep_file_md5: md5 })).status).toBe(400);
    expect((await t.signed(node, 'POST', path, { action: 'Downloaded', aep_file_md5: 'xyz' })).status).toBe(400);
    const other = await t.onlineNode('cache-other');
    expect((await t.signed(other, 'POST', path, { action: 'Downloaded', aep_file_md5: md5 })).status).toBe(403);
  });
});
