// The node status table, and its SQL rendering that the batched heartbeat and scheduling writes
// use: administrative states end only by their own end, and PostgreSQL moves every status by
// every event exactly as the table says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeStatus, Prisma } from '../../src/generated/prisma/client.ts';
import { type NodeEvent, NODE_TRANSITIONS, statusAfterContactSql, statusAfterSql } from '../../src/domain/nodes/node-status.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

const STATUSES = Object.values(NodeStatus);
const EVENTS = Object.keys(NODE_TRANSITIONS) as NodeEvent[];
const after = (status: NodeStatus, event: NodeEvent) => NODE_TRANSITIONS[event][status] ?? status;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
});
afterAll(() => t?.close());

async function inSql(expression: Prisma.Sql): Promise<NodeStatus> {
  const [row] = await t.app.services.db.prisma.$queryRaw<Array<{ status: NodeStatus }>>`SELECT (${expression})::text AS status`;
  return row?.status as NodeStatus;
}

describe('the node status table', () => {
  it('ends Maintenance and Updating only by their own end', () => {
    const ends: Record<string, NodeEvent> = { Maintenance: 'maintenanceEnded', Updating: 'updateEnded' };
    for (const status of [NodeStatus.Maintenance, NodeStatus.Updating]) {
      for (const event of EVENTS) expect(after(status, event), `${status} on ${event}`).toBe(event === ends[status] ? NodeStatus.Online : status);
    }
  });

  it('is what PostgreSQL does for every status and event', async () => {
    for (const status of STATUSES) {
      const current = Prisma.sql`${status}::"NodeStatus"`;
      for (const event of EVENTS) expect(await inSql(statusAfterSql(current, event)), `${status} on ${event}`).toBe(after(status, event));
      const reported = { Online: 'reportedOnline', Busy: 'reportedBusy' } as const;
      for (const [said, event] of Object.entries(reported)) {
        expect(await inSql(statusAfterContactSql(current, Prisma.sql`${said}::"NodeStatus"`)), `${status} reported ${said}`).toBe(after(status, event));
      }
      expect(await inSql(statusAfterContactSql(current, Prisma.sql`NULL::"NodeStatus"`)), `${status} heard from`).toBe(after(status, 'contact'));
    }
  });
});
