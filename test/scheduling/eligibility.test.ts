// Which nodes the scheduler may give work to: maintenance windows, accepts_new_jobs, is_active,
// silence, After Effects versions; and a preferred region wins over the rest.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAINTENANCE_LEAD_MS } from '../../src/domain/nodes/node-status.ts';
import { clearQueue, parkAllNodes } from '../support/agent.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';

let t: TestApp;
let admin: string;
let owner: { id: string; token: string };

async function registerOnline(name: string, region = 'eu', aeVersions = ['24.1']): Promise<string> {
  return (await t.onlineNode(name, { region, aeVersions })).id;
}

/** An admin's change of the node's settings, which must be accepted. */
async function patchNode(nodeId: string, body: Record<string, unknown>): Promise<void> {
  const answer = await t.rest('PATCH', `/v1/nodes/${nodeId}`, { token: admin, body });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
}

const submit = async (body: Record<string, unknown>) => (await submitRender(t, owner.token, { quality: 'Low', duration_sec: 1, ...body })).id;

/** The node the job's replica preparation went to, if any. */
async function preparerOf(jobId: string): Promise<string | undefined> {
  const command = await t.app.services.db.prisma.nodeCommand.findFirst({ where: { renderJobId: jobId, type: 'prepare_replica' } });
  return command?.nodeId;
}

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
  owner = await t.user(100_000);
});
afterAll(() => t.close());

describe('node eligibility', () => {
  it('gives no new work to nodes in or near maintenance, inactive, not accepting jobs, or on another After Effects', async () => {
    const prisma = t.app.services.db.prisma;
    const soon = await registerOnline('elig-maintenance-soon');
    const inactive = await registerOnline('elig-inactive');
    const closed = await registerOnline('elig-closed');
    const old = await registerOnline('elig-old-ae', 'eu', ['23.0']);
    const later = await registerOnline('elig-maintenance-later');
    const maintenanceIn = (ms: number) => new Date(Date.now() + ms).toISOString();
    await patchNode(soon, { next_maintenance_at: maintenanceIn(MAINTENANCE_LEAD_MS / 2) });
    await patchNode(later, { next_maintenance_at: maintenanceIn(2 * MAINTENANCE_LEAD_MS), priority: -1 });
    await patchNode(inactive, { is_active: false });
    await patchNode(closed, { accepts_new_jobs: false });

    const jobId = await submit({ ae_version: '24.1' });
    await t.app.services.scheduler.assignWork();
    expect(await preparerOf(jobId)).toBe(later);
    // Nothing else is eligible, so a second job waits.
    const waiting = await submit({ ae_version: '24.1' });
    const pass = await t.app.services.scheduler.assignWork();
    expect(pass.assigned).toBe(0);
    expect(await preparerOf(waiting)).toBeUndefined();
    for (const nodeId of [soon, inactive, closed, old]) {
      expect(await prisma.nodeCommand.count({ where: { nodeId, type: 'prepare_replica' } })).toBe(0);
    }
  });

  it('sends a job to its preferred region first', async () => {
    await parkAllNodes(t);
    const eu = await registerOnline('region-eu', 'eu');
    const us = await registerOnline('region-us', 'us');
    await patchNode(eu, { priority: 10 });
    await clearQueue(t);
    const jobId = await submit({ preferred_region: 'us' });
    await t.app.services.scheduler.assignWork();
    expect(await preparerOf(jobId)).toBe(us);
  });
});
