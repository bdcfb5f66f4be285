// A render_snapshot command its node never acknowledges times out like a stalled chunk: the still
// goes to another node, or fails after MAX_SNAPSHOT_ATTEMPTS, while the node that sat on it goes on
// rendering chunks. Agents are driven by hand over signed HTTP; the clock and the loops move only
// when a test moves them.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SNAPSHOT_ATTEMPTS } from '../../src/domain/scheduling/failure-policy.ts';
import { STALL_TIMEOUT_MS, sweepStalledWork } from '../../src/domain/scheduling/stall-sweeper.ts';
import { SnapshotDocument, SnapshotUpdatedDocument } from '../generated/graphql.ts';
import { commandOf, completeChunk, replicaReady, reportFrames } from '../support/agent.ts';
import { type AgentCommand, startTestApp, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { submitRender } from '../support/jobs.ts';
import { LONG_LIVED, pngBytes, snapshotFixtures } from '../support/snapshots.ts';
import { subscribe } from '../support/subscriber.ts';

let t: TestApp;
const clock = new ManualClock();
let f: ReturnType<typeof snapshotFixtures>;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  f = snapshotFixtures(t);
});
afterAll(() => t.close());
beforeEach(() => f.resetFleet());

const assignWork = () => t.app.services.scheduler.assignWork();
const sweepStalls = () => sweepStalledWork(f.prisma, t.app.services.bus, clock);

async function requestStill(user: TestUser, projectId: string): Promise<string> {
  const asked = await t.rest('POST', '/v1/snapshots', { token: user.token, body: { saved_project_id: projectId, scene_key: 'intro', frame_number: 4 } });
  expect(asked.status).toBe(202);
  return asked.body.snapshot_id as string;
}

/** The commands a heartbeat delivers, of which the node acknowledges only those of `types`. */
async function heartbeatTaking(node: TestNode, ...types: string[]): Promise<AgentCommand[]> {
  const commands = await t.heartbeat(node);
  for (const command of commands.filter((candidate) => types.includes(candidate.type))) {
    expect((await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/commands/${command.command_id}/ack`)).status).toBe(204);
  }
  return commands;
}

/** Time passes beyond the stall timeout while the nodes keep heartbeating. */
async function stallPasses(...nodes: TestNode[]) {
  clock.advance(STALL_TIMEOUT_MS + 1000);
  for (const node of nodes) await t.heartbeat(node);
}

describe('a render_snapshot command its node never acknowledges', () => {
  it('goes to another node after the stall timeout, while the node that sat on it renders a chunk', async () => {
    const user = await t.user(10_000, LONG_LIVED);
    const project = await f.savedProject(user);
    const first = await t.onlineNode(undefined, { templates: [project.md5] });
    const id = await requestStill(user, project.id);
    const watch = subscribe(t.url, user.token, SnapshotUpdatedDocument, { id });
    try {
      await watch.until((update) => update.snapshotUpdated.status === 'Pending');
      expect((await assignWork()).placements.get(id)).toBe(first.id);
      const [still] = await heartbeatTaking(first);
      expect(still).toMatchObject({ type: 'render_snapshot', snapshot_id: id });

      // The unacknowledged still does not keep the node from a job's work: 9 frames, one chunk.
      const { id: jobId } = await submitRender(t, user.token, { quality: 'Low', duration_sec: 0.3 });
      expect((await assignWork()).placements.get(jobId)).toBe(first.id);
      const prepare = commandOf(await heartbeatTaking(first, 'prepare_replica'), 'prepare_replica');
      await replicaReady(t, first, jobId, prepare, 'D:/replicas/stall.aep');
      await assignWork();
      const chunk = (await heartbeatTaking(first, 'render_chunk')).find((command) => command.type === 'render_chunk');
      expect(chunk).toMatchObject({ job_id: jobId, start_frame: 0, end_frame: 8 });

      // Another node is free, but the still is the first node's until its command stalls.
      const second = await t.onlineNode(undefined, { templates: [] });
      expect((await assignWork()).placements.get(id)).toBeUndefined();
      await stallPasses(first, second);
      // The first node reports a frame: its chunk makes progress, only the still stalled.
      const frame = { frame_job_id: chunk?.frame_job_id, frame_number: 0, file_size_bytes: 512, lease: chunk?.lease };
      expect((await t.signed(first, 'POST', `/v1/internal/render/jobs/${jobId}/frames`, frame)).status).toBe(204);
      expect((await sweepStalls()).stalled).toBe(1);
      expect(await f.prisma.nodeCommand.findUniqueOrThrow({ where: { id: still!.command_id } })).toMatchObject({ status: 'Failed' });
      // It never took the still, so it is not told to close After Effects, nor counted as failing.
      expect((await t.heartbeat(first)).map((command) => command.type)).not.toContain('close_ae');
      expect(await f.prisma.renderNode.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({ consecutiveFailures: 0 });

      expect((await assignWork()).placements.get(id)).toBe(second.id);
      const retry = await f.snapshotCommand(second);
      expect(retry.lease).not.toBe(still?.lease);
      await watch.until((update) => update.snapshotUpdated.status === 'Rendering');
      // The first node's late answers change nothing.
      expect((await t.signed(first, 'POST', `/v1/internal/nodes/${first.id}/commands/${still!.command_id}/ack`)).status).toBe(204);
      const late = await f.upload(first, id, 'image', String(still?.lease), pngBytes(10));
      expect(late.status).toBe(409);
      expect(late.body.error.code).toBe('STALE_LEASE');

      await f.render(second, retry);
      await watch.end();
      expect(watch.received.map((update) => update.snapshotUpdated.status)).toEqual(['Pending', 'Rendering', 'Cached']);
      expect(watch.errors).toEqual([]);

      // And the first node finishes its chunk.
      await reportFrames(t, first, jobId, chunk!, [1, 2, 3, 4, 5, 6, 7, 8]);
      await completeChunk(t, first, jobId, chunk!);
      expect((await t.rest('POST', `/v1/renders/${jobId}/cancel`, { token: user.token })).status).toBe(200);
    } finally {
      await watch.close();
    }
  });

  it(`fails the snapshot with its reason once it was handed out ${MAX_SNAPSHOT_ATTEMPTS} times`, async () => {
    const user = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(user);
    const nodes = [await t.onlineNode(undefined, { templates: [project.md5] }), await t.onlineNode(undefined, { templates: [project.md5] })];
    const id = await requestStill(user, project.id);
    const watch = subscribe(t.url, user.token, SnapshotUpdatedDocument, { id });
    try {
      await watch.until((update) => update.snapshotUpdated.status === 'Pending');
      const holders: string[] = [];
      for (let attempt = 1; attempt <= MAX_SNAPSHOT_ATTEMPTS; attempt++) {
        const holder = (await assignWork()).placements.get(id);
        expect(holder).toBeDefined();
        holders.push(holder!);
        await stallPasses(...nodes);
        expect((await sweepStalls()).stalled).toBe(1);
      }
      // Each time to another node than the one before.
      expect(holders.every((holder, index) => index === 0 || holder !== holders[index - 1])).toBe(true);

      expect((await assignWork()).placements.get(id)).toBeUndefined();
      await watch.end();
      expect(watch.received.map((update) => update.snapshotUpdated.status)).toEqual(['Pending', 'Failed']);
      const failed = (await t.gql(SnapshotDocument, { id }, user.token)).data?.snapshot;
      expect(failed).toMatchObject({ status: 'Failed', failedMessage: `No node rendered the still in ${MAX_SNAPSHOT_ATTEMPTS} attempts` });
      expect(await f.prisma.nodeCommand.count({ where: { type: 'render_snapshot', status: { in: ['Pending', 'Acknowledged'] }, nodeId: { in: nodes.map((node) => node.id) } } })).toBe(0);
    } finally {
      await watch.close();
    }
  });
});
