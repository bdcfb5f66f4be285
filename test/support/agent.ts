// A node agent's side of a render over the signed routes, for tests that need work at a given
// point of the protocol: a scheduling pass given to one node, the replica reported ready, a chunk
// taken, frames reported and chunks completed. The scheduler runs when the test says so (tests
// start the app without its loops).
import { expect } from 'vitest';
import { type AgentCommand, TEST_ADMIN, type TestApp, type TestNode } from './app.ts';

/** Outlives the clock jumps of tests that move the app's clock, which it checks tokens against. */
const adminToken = (t: TestApp) =>
  t.token(TEST_ADMIN.kind === 'user' ? TEST_ADMIN.userId : '', { admin: true, ttlSeconds: 365 * 24 * 3600 });

async function setAccepting(t: TestApp, token: string, nodeIds: string[], accepts: boolean): Promise<void> {
  for (const nodeId of nodeIds) {
    const answer = await t.rest('PATCH', `/v1/nodes/${nodeId}`, { token, body: { accepts_new_jobs: accepts } });
    if (answer.status !== 200) throw new Error(`PATCH accepts_new_jobs of ${nodeId} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
}

/**
 * One scheduling pass for `node` alone: every other node stops taking new work for the pass
 * (through PATCH /v1/nodes/{id}, as an admin would) and takes it again after. Answers the
 * commands the node then receives, acknowledged as agents do before running them.
 */
export async function placeOn(t: TestApp, node: TestNode): Promise<AgentCommand[]> {
  const token = await adminToken(t);
  const listed = await t.rest('GET', '/v1/nodes', { token });
  const nodes = listed.body.data as Array<{ id: string; accepts_new_jobs: boolean }>;
  const others = nodes.filter((candidate) => candidate.id !== node.id && candidate.accepts_new_jobs).map((candidate) => candidate.id);
  const parked = nodes.some((candidate) => candidate.id === node.id && !candidate.accepts_new_jobs);
  await setAccepting(t, token, others, false);
  if (parked) await setAccepting(t, token, [node.id], true);
  try {
    await t.app.services.scheduler.assignWork();
  } finally {
    await setAccepting(t, token, others, true);
    if (parked) await setAccepting(t, token, [node.id], false);
  }
  return t.takeCommands(node);
}

/** Every node registered so far stops taking new work, as an admin would park them (PATCH accepts_new_jobs). */
export async function parkAllNodes(t: TestApp): Promise<void> {
  const token = await adminToken(t);
  const listed = await t.rest('GET', '/v1/nodes', { token });
  const nodes = listed.body.data as Array<{ id: string; accepts_new_jobs: boolean }>;
  await setAccepting(t, token, nodes.filter((node) => node.accepts_new_jobs).map((node) => node.id), false);
}

/** The command of that type among the node's commands, which must be there. */
export function commandOf(commands: AgentCommand[], type: string): AgentCommand {
  const command = commands.find((candidate) => candidate.type === type);
  expect(command, `a ${type} command among ${JSON.stringify(commands)}`).toBeDefined();
  return command as AgentCommand;
}

/** The node's report that the replica its prepare_replica command asked for is ready. */
export async function replicaReady(t: TestApp, node: TestNode, jobId: string, prepare: AgentCommand, replicaPath = 'D:/replicas/test.aep'): Promise<void> {
  const ready = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/replica-ready`, {
    node_id: node.id,
    replica_path: replicaPath,
    lease: prepare.lease,
  });
  expect(ready.status, JSON.stringify(ready.body)).toBe(204);
}

/**
 * The queued job's replica prepared on `node`; the job then renders. The job must be the first in
 * the queue: see clearQueue.
 */
export async function preparedOn(t: TestApp, node: TestNode, jobId: string): Promise<void> {
  const prepare = commandOf(await placeOn(t, node), 'prepare_replica');
  expect(prepare.job_id, 'the job the node was asked to prepare').toBe(jobId);
  await replicaReady(t, node, jobId, prepare);
}

/** Leaves the queue to the jobs a test submits next: an admin cancels every job not yet ended. */
export async function clearQueue(t: TestApp): Promise<void> {
  const token = await adminToken(t);
  for (const step of ['Queued', 'Preparing', 'Rendering', 'Encoding']) {
    for (;;) {
      const listed = await t.rest('GET', `/v1/renders?status=${step}&page_size=100`, { token });
      if (listed.status !== 200) throw new Error(`listing ${step} jobs answered ${listed.status}: ${JSON.stringify(listed.body)}`);
      const jobs = listed.body.data as Array<{ id: string }>;
      for (const job of jobs) {
        const cancelled = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token });
        if (cancelled.status !== 200) throw new Error(`cancelling ${job.id} answered ${cancelled.status}: ${JSON.stringify(cancelled.body)}`);
      }
      if (!listed.body.meta.has_more) break;
    }
  }
}

/** The next chunk a scheduling pass gives to `node` alone: its render_chunk command, acknowledged. */
export async function chunkOn(t: TestApp, node: TestNode): Promise<AgentCommand> {
  return commandOf(await placeOn(t, node), 'render_chunk');
}

/** The frame numbers a render_chunk command covers, first to last. */
export function framesOf(chunk: AgentCommand): number[] {
  const first = Number(chunk.start_frame);
  return Array.from({ length: Number(chunk.end_frame) - first + 1 }, (_, index) => first + index);
}

/** The node's reports of these frames of its chunk, each answered 204: one after another, or all at once as a busy fleet sends them. */
export async function reportFrames(
  t: TestApp,
  node: TestNode,
  jobId: string,
  chunk: AgentCommand,
  frames: number[],
  options: { atOnce?: boolean } = {},
): Promise<void> {
  const report = async (frame: number) => {
    const answer = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/frames`, {
      frame_job_id: chunk.frame_job_id,
      frame_number: frame,
      file_size_bytes: 1024,
      lease: chunk.lease,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(204);
  };
  if (options.atOnce) await Promise.all(frames.map(report));
  else for (const frame of frames) await report(frame);
}

/** The node's report that its chunk is done, answered 204. */
export async function completeChunk(t: TestApp, node: TestNode, jobId: string, chunk: AgentCommand): Promise<void> {
  const done = await t.signed(node, 'POST', `/v1/internal/render/jobs/${jobId}/chunks/${chunk.frame_job_id}/complete`, { lease: chunk.lease });
  expect(done.status, JSON.stringify(done.body)).toBe(204);
}
