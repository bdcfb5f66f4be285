// A batch of heartbeats answers every node that beat while the previous batch was written. A node
// row held by another change (a chunk completion, a scheduling pass) must delay that node's
// heartbeat only: before, the whole batch waited for it, and with both batches of the group commit
// waiting so, every node's heartbeat did, long enough for healthy nodes to be declared Offline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
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

const lastHeartbeatOf = async (nodeId: string) =>
  (await t.app.services.db.prisma.renderNode.findUniqueOrThrow({ where: { id: nodeId } })).lastHeartbeatAt?.getTime() ?? 0;

/** A request whose settling the test can look at without waiting for it. */
function watched<T>(promise: Promise<T>): { promise: Promise<T>; settled(): boolean } {
  let settled = false;
  void promise.finally(() => {
    settled = true;
  });
  return { promise, settled: () => settled };
}

describe('a heartbeat whose node row another change holds', () => {
  it('waits for the row alone, while the heartbeats of other nodes are answered', async () => {
    const [first, second, free] = [await t.onlineNode('held-1'), await t.onlineNode('held-2'), await t.onlineNode('free')];
    const before = await lastHeartbeatOf(first.id);
    const hold = await locks.hold('SELECT 1 FROM render_nodes WHERE id = ANY($1::uuid[]) FOR UPDATE', [[first.id, second.id]]);
    // Apart, so that two batches meet the held rows: the two a group commit writes at once.
    const held = [watched(t.heartbeat(first))];
    await new Promise((resolve) => setTimeout(resolve, 300));
    held.push(watched(t.heartbeat(second)));
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(await t.heartbeat(free)).toEqual([]);
    expect(held.map((request) => request.settled())).toEqual([false, false]);
    expect(await lastHeartbeatOf(first.id)).toBe(before);

    await hold.release();
    for (const commands of await Promise.all(held.map((request) => request.promise))) expect(commands).toEqual([]);
    expect(await lastHeartbeatOf(first.id)).toBeGreaterThan(before);
    expect(await lastHeartbeatOf(second.id)).toBeGreaterThan(0);
  });

  it('is still refused with 404 for a node that does not exist', async () => {
    const ghost = await t.onlineNode('ghost');
    await t.app.services.db.prisma.renderNode.delete({ where: { id: ghost.id } });
    const answer = await t.signed(ghost, 'POST', `/v1/internal/nodes/${ghost.id}/heartbeat`, {});
    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('NOT_FOUND');
  });
});
