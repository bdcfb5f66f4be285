// Chunks follow the fleet: a job cut for the few nodes up when it was submitted has the chunks no
// node was handed yet cut again when its rendering starts, and split by a scheduling pass when
// many more nodes can take it; a chunk a node holds, a range that failed and every frame stay as
// they were. Through the signed agent routes and the job's REST reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkSizeFor } from '../../src/domain/jobs/chunking.ts';
import { chunkOn, clearQueue, completeChunk, framesOf, parkAllNodes, placeOn, preparedOn, replicaReady, reportFrames } from '../support/agent.ts';
import { type AgentCommand, startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';

/** A chunk as GET /v1/renders/{id} lists it. */
type Chunk = { id: string; node_id?: string; start_frame: number; end_frame: number; status: string; attempt: number; frames_rendered: number };

/** renderBody's job: 10 s at 30 fps. */
const TOTAL_FRAMES = 300;

let t: TestApp;
let owner: { id: string; token: string };

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  owner = await t.user(100_000);
});
afterAll(() => t.close());

/** A fleet of its own for each test: earlier tests' nodes are parked and their jobs cancelled. */
async function freshFleet(size: number, name: string): Promise<TestNode[]> {
  await parkAllNodes(t);
  await clearQueue(t);
  return online(size, name);
}

async function online(count: number, name: string): Promise<TestNode[]> {
  const nodes: TestNode[] = [];
  for (let index = 0; index < count; index++) nodes.push(await t.onlineNode(`${name}-${index}`));
  return nodes;
}

async function chunksOf(jobId: string): Promise<Chunk[]> {
  const answer = await t.rest('GET', `/v1/renders/${jobId}`, { token: owner.token });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  const chunks = answer.body.frame_jobs as Chunk[];
  // Listed in render order, the pieces of one split chunk by their frames.
  expect(chunks.map((chunk) => chunk.start_frame)).toEqual(chunks.map((chunk) => chunk.start_frame).sort((a, b) => a - b));
  return chunks;
}

async function progressOf(jobId: string): Promise<{ step: string; current_frame: number; active_nodes: number }> {
  const answer = await t.rest('GET', `/v1/renders/${jobId}/progress`, { token: owner.token });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

const isOpen = (chunk: Chunk) => chunk.status !== 'Failed' && chunk.status !== 'Cancelled';
const lengthOf = (chunk: Chunk) => chunk.end_frame - chunk.start_frame + 1;
const rangeOf = (chunk: Chunk) => [chunk.start_frame, chunk.end_frame];

/** How many of the chunks hold each frame of the job. */
function coverage(chunks: Chunk[]): number[] {
  const holders = new Array<number>(TOTAL_FRAMES).fill(0);
  for (const chunk of chunks) for (let frame = chunk.start_frame; frame <= chunk.end_frame; frame++) holders[frame]! += 1;
  return holders;
}

/** The render_chunk commands the nodes receive now, each with its node. */
async function chunksHandedTo(nodes: TestNode[]): Promise<Array<[TestNode, AgentCommand]>> {
  const handed: Array<[TestNode, AgentCommand]> = [];
  for (const node of nodes) {
    for (const command of await t.takeCommands(node)) if (command.type === 'render_chunk') handed.push([node, command]);
  }
  return handed;
}

/** Passes hand the job's chunks out and the nodes render every frame of them, until nothing is handed. */
async function renderEverything(jobId: string, nodes: TestNode[]): Promise<void> {
  for (;;) {
    await t.app.services.scheduler.assignWork();
    const work = await chunksHandedTo(nodes);
    if (work.length === 0) return;
    for (const [node, chunk] of work) {
      await reportFrames(t, node, jobId, chunk, framesOf(chunk), { atOnce: true });
      await completeChunk(t, node, jobId, chunk);
    }
  }
}

describe('chunks that fit the fleet', () => {
  it('cuts a job again for the nodes up when its rendering starts', async () => {
    const [first] = (await freshFleet(1, 'fit-start')) as [TestNode];
    const { id: jobId } = await submitRender(t, owner.token);
    expect((await chunksOf(jobId)).map(lengthOf)).toEqual([150, 150]);
    const prepare = (await placeOn(t, first)).find((command) => command.type === 'prepare_replica') as AgentCommand;
    expect(prepare.job_id).toBe(jobId);

    await online(8, 'fit-start-more');
    await replicaReady(t, first, jobId, prepare);

    // No pass ran since: the replica's report cut them.
    const chunks = await chunksOf(jobId);
    const size = chunkSizeFor(TOTAL_FRAMES, 9);
    expect(chunks).toHaveLength(Math.ceil(TOTAL_FRAMES / size));
    expect(chunks.every((chunk) => chunk.status === 'Pending' && chunk.attempt === 0 && lengthOf(chunk) <= size)).toBe(true);
    expect(coverage(chunks).every((holders) => holders === 1)).toBe(true);
  });

  it('splits the waiting chunks over the nodes that come online while the job renders', async () => {
    const [first] = (await freshFleet(1, 'fit-grow')) as [TestNode];
    const { id: jobId } = await submitRender(t, owner.token);
    await preparedOn(t, first, jobId);
    await chunkOn(t, first);
    expect((await chunksOf(jobId)).map(lengthOf)).toEqual([150, 150]);
    expect((await progressOf(jobId)).active_nodes).toBe(1);

    const more = await online(8, 'fit-grow-more');
    await t.app.services.scheduler.assignWork();

    const handed = await chunksHandedTo(more);
    expect(handed.map(([node]) => node.id)).toEqual(more.map((node) => node.id));
    expect(handed.every(([, chunk]) => framesOf(chunk).length <= chunkSizeFor(TOTAL_FRAMES, 9))).toBe(true);
    expect((await progressOf(jobId)).active_nodes).toBe(9);
  });

  it('leaves a chunk a node holds and a range that failed as they are, with every frame in one chunk', async () => {
    const [a, b] = (await freshFleet(2, 'fit-keep')) as [TestNode, TestNode];
    const { id: jobId } = await submitRender(t, owner.token);
    await preparedOn(t, a, jobId);
    const held = await chunkOn(t, a);
    await reportFrames(t, a, jobId, held, framesOf(held).slice(0, 10));
    // b renders 10 frames of its chunk and fails it: the other 65 wait as a range that failed once.
    const failing = await chunkOn(t, b);
    await reportFrames(t, b, jobId, failing, framesOf(failing).slice(0, 10));
    const failPath = `/v1/internal/render/jobs/${jobId}/chunks/${failing.frame_job_id}/fail`;
    const failed = await t.signed(b, 'POST', failPath, { lease: failing.lease, error: 'disk full' });
    expect(failed.status, JSON.stringify(failed.body)).toBe(204);
    const before = await chunksOf(jobId);
    expect(before.filter(isOpen).map(rangeOf)).toEqual([[0, 74], [85, 149], [150, 224], [225, 299]]);
    const heldBefore = before.find((chunk) => chunk.id === held.frame_job_id);

    const more = await online(8, 'fit-keep-more');
    await t.app.services.scheduler.assignWork();

    const after = await chunksOf(jobId);
    expect(after.find((chunk) => chunk.id === held.frame_job_id)).toEqual(heldBefore);
    // Handed out again whole, its attempts counted on: neither merged with fresh frames nor split.
    expect(after.filter((chunk) => chunk.start_frame === 85 && isOpen(chunk))).toMatchObject([{ end_frame: 149, attempt: 2 }]);
    const split = after.filter((chunk) => chunk.start_frame >= 150);
    expect(split.length).toBeGreaterThan(2);
    expect(split.every((chunk) => lengthOf(chunk) <= chunkSizeFor(TOTAL_FRAMES, 10))).toBe(true);
    // The 10 frames b rendered stay with its failed chunk; every other frame is in one open chunk.
    expect(coverage(after.filter(isOpen)).flatMap((holders, frame) => (holders === 1 ? [] : [[frame, holders]]))).toEqual(
      framesOf(failing).slice(0, 10).map((frame) => [frame, 0]),
    );

    await reportFrames(t, a, jobId, held, framesOf(held).slice(10), { atOnce: true });
    await completeChunk(t, a, jobId, held);
    await renderEverything(jobId, [a, b, ...more]);
    expect(await progressOf(jobId)).toMatchObject({ step: 'Encoding', current_frame: TOTAL_FRAMES });
  });

  it('leaves the chunks alone while the fleet grows a little, and splits them when it grows a lot', async () => {
    const fleet = await freshFleet(4, 'fit-steady');
    const { id: jobId } = await submitRender(t, owner.token);
    const cut = await chunksOf(jobId);
    expect(cut.map(lengthOf)[0]).toBe(chunkSizeFor(TOTAL_FRAMES, 4));
    await preparedOn(t, fleet[0] as TestNode, jobId);
    expect(await chunksOf(jobId)).toEqual(cut);

    const few = await online(2, 'fit-steady-few');
    await t.app.services.scheduler.assignWork();
    const placed = await chunksOf(jobId);
    expect(placed.map((chunk) => [chunk.id, ...rangeOf(chunk)])).toEqual(cut.map((chunk) => [chunk.id, ...rangeOf(chunk)]));
    expect(placed.filter((chunk) => chunk.status === 'Pending')).toHaveLength(2);

    const many = await online(6, 'fit-steady-many');
    await t.app.services.scheduler.assignWork();
    const after = await chunksOf(jobId);
    expect(after.filter((chunk) => chunk.status === 'Assigned').map((chunk) => chunk.node_id).sort()).toEqual(
      [...fleet, ...few, ...many].map((node) => node.id).sort(),
    );
    const split = after.filter((chunk) => many.some((node) => node.id === chunk.node_id));
    expect(split.every((chunk) => lengthOf(chunk) <= chunkSizeFor(TOTAL_FRAMES, 12))).toBe(true);
    expect(coverage(after).every((holders) => holders === 1)).toBe(true);
  });
});
