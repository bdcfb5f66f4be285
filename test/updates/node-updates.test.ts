import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { planWaves, SOAK_SECONDS } from '../../src/domain/updates/rollout-service.ts';
import type { Loop } from '../../src/loops/loop.ts';
import {
  CreateNodeUpdateDocument,
  NodeUpdatesDocument,
  RolloutNodeUpdateDocument,
  RolloutsDocument,
} from '../generated/graphql.ts';
import { startTestApp, type TestApp, problemPaths, type TestNode } from '../support/app.ts';
import { type Callers, callers, expectAdminOnly, expectGraphQLAdminOnly } from '../support/callers.ts';
import { controllableClock } from '../support/clock.ts';
import { nodeCrash } from '../support/rows.ts';
import { createNodeUpdate, reportApplied, rolloutFleet, startRollout as startNodeRollout } from '../support/updates.ts';

const clock = controllableClock();
let t: TestApp;
let who: Callers;
let rollouts: Loop;
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  who = await callers(t);
  rollouts = t.loop('rollouts');
});
afterEach(() => clock.reset());
afterAll(() => t.close());

const sha256 = 'ab'.repeat(32);

const createUpdate = (overrides: Record<string, unknown> = {}) => createNodeUpdate(t, who.admin, overrides);

const fleet = (size: number) => rolloutFleet(t, size);
const startRollout = (updateId: string, nodes: TestNode[]) => startNodeRollout(t, who.admin, updateId, nodes);

/** A resent report is signed a second earlier, as a retry would be, so it is not taken for a replay. */
// Signed at the app's clock (tests move it past soak times); a resent report is signed a second earlier so it is not a replay.
// A resent report is signed one second before the report it repeats, so that it is not refused as
// a replay even when the clock crossed a second between the two.
let lastTimestamp = 0;
const signedAt = (resent: boolean) => {
  lastTimestamp = resent ? lastTimestamp - 1 : Math.floor(clock.now().getTime() / 1000);
  return { timestamp: lastTimestamp };
};

const applied = (node: TestNode, updateId: string, version = '2.0.0', resent = false) => reportApplied(t, node, updateId, version, signedAt(resent));

const failed = (node: TestNode, updateId: string, error: string, resent = false) =>
  t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/updates/${updateId}/failed`, { error }, signedAt(resent));

async function updateCommands(nodes: TestNode[]) {
  return prisma().nodeCommand.findMany({
    where: { nodeId: { in: nodes.map((node) => node.id) }, type: 'update_software' },
    orderBy: { createdAt: 'asc' },
  });
}

async function rolloutRow(id: string) {
  return prisma().rollout.findUniqueOrThrow({ where: { id }, include: { targets: true } });
}

const statusOf = async (node: TestNode) => (await prisma().renderNode.findUniqueOrThrow({ where: { id: node.id } })).status;

describe('planning waves', () => {
  it('puts one canary first, then quarters of the rest with at least one node each', () => {
    const ids = (count: number) => Array.from({ length: count }, (_, index) => `n${index}`);
    expect(planWaves([])).toEqual([]);
    expect(planWaves(ids(1))).toEqual([['n0']]);
    expect(planWaves(ids(3))).toEqual([['n0'], ['n1'], ['n2']]);
    expect(planWaves(ids(9))).toEqual([['n0'], ['n1', 'n2'], ['n3', 'n4'], ['n5', 'n6'], ['n7', 'n8']]);
    expect(planWaves(ids(11)).map((wave) => wave.length)).toEqual([1, 3, 3, 3, 1]);
  });
});

describe('node updates', () => {
  it('are published and listed by admins through both doors', async () => {
    const created = await createUpdate({ download_url: undefined, download_key: 'updates/agent-3.msi', update_number: 7 });
    expect(created).toEqual({
      id: expect.any(String),
      update_file_name: 'agent-setup.msi',
      update_number: 7,
      description: 'Faster uploads',
      target_ae_version: '24.1',
      in_update_queue: false,
      rolled_out_to_node_ids: [],
      create_date: expect.any(String),
    });
    const gql = await t.gql(
      CreateNodeUpdateDocument,
      { input: { updateFileName: 'agent.msi', updateNumber: 8, targetAeVersion: '25.0', downloadUrl: 'https://example.com/a.msi', sha256: 'CD'.repeat(32) } },
      who.admin,
    );
    expect(gql.data?.createNodeUpdate).toMatchObject({ __typename: 'NodeUpdate', updateNumber: 8, sha256: 'cd'.repeat(32), description: '' });

    const list = await t.rest('GET', '/v1/node-updates', { token: who.admin });
    expect(list.status).toBe(200);
    const numbers = list.body.data.map((update: { update_number: number }) => update.update_number);
    expect(numbers.indexOf(8)).toBeLessThan(numbers.indexOf(7));
    const listed = await t.gql(NodeUpdatesDocument, {}, who.admin);
    expect(listed.data?.nodeUpdates.map((update) => update.updateNumber)).toEqual(numbers);
  });

  it('refuses bad input and a taken update number, and stores nothing', async () => {
    const before = await prisma().nodeUpdate.count();
    const bad = await t.rest('POST', '/v1/node-updates', {
      token: who.admin,
      body: { update_file_name: '', update_number: 0, target_ae_version: '24', sha256: 'nope', download_url: 'ftp://x/y', colour: 'red' },
    });
    expect(bad.status).toBe(400);
    expect(problemPaths(bad.body)).toEqual(['colour', 'download_url', 'sha256', 'update_file_name', 'update_number']);
    const both = await t.rest('POST', '/v1/node-updates', {
      token: who.admin,
      body: { update_file_name: 'a.msi', update_number: 5000, target_ae_version: '24', sha256, download_url: 'https://x.example/a', download_key: 'a/b' },
    });
    expect(both.status).toBe(400);
    expect(problemPaths(both.body)).toEqual(['download_key']);
    const neither = await t.rest('POST', '/v1/node-updates', {
      token: who.admin,
      body: { update_file_name: 'a.msi', update_number: 5000, target_ae_version: '24', sha256 },
    });
    expect(neither.status).toBe(400);
    const badKey = await t.rest('POST', '/v1/node-updates', {
      token: who.admin,
      body: { update_file_name: 'a.msi', update_number: 5000, target_ae_version: '24', sha256, download_key: '../etc/passwd' },
    });
    expect(problemPaths(badKey.body)).toEqual(['download_key']);

    const taken = await createUpdate();
    const again = await t.rest('POST', '/v1/node-updates', {
      token: who.admin,
      body: { update_file_name: 'b.msi', update_number: taken.update_number, target_ae_version: '24', sha256, download_key: 'b.msi' },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('CONFLICT');
    const gql = await t.gql(
      CreateNodeUpdateDocument,
      { input: { updateFileName: 'c.msi', updateNumber: taken.update_number, targetAeVersion: '24', downloadKey: 'c.msi', sha256 } },
      who.admin,
    );
    expect(gql.data?.createNodeUpdate.__typename).toBe('ConflictError');
    const invalid = await t.gql(
      CreateNodeUpdateDocument,
      { input: { updateFileName: 'c.msi', updateNumber: -1, targetAeVersion: '24', downloadKey: 'c.msi', sha256 } },
      who.admin,
    );
    expect(invalid.data?.createNodeUpdate).toMatchObject({ __typename: 'ValidationError', problems: [{ path: 'updateNumber' }] });
    expect(await prisma().nodeUpdate.count()).toBe(before + 1);
  });

  it('are for admins only', async () => {
    const before = await prisma().nodeUpdate.count();
    const body = { update_file_name: 'a.msi', update_number: 9000, target_ae_version: '24', sha256, download_key: 'a.msi' };
    await expectAdminOnly(t, who, 'POST', '/v1/node-updates', body);
    await expectAdminOnly(t, who, 'GET', '/v1/node-updates');
    await expectGraphQLAdminOnly((token) => t.gql(NodeUpdatesDocument, {}, token), who);
    await expectGraphQLAdminOnly(
      (token) =>
        t.gql(CreateNodeUpdateDocument, { input: { updateFileName: 'a', updateNumber: 9000, targetAeVersion: '24', downloadKey: 'a', sha256 } }, token),
      who,
    );
    expect(await prisma().nodeUpdate.count()).toBe(before);
  });
});

describe('a rollout', () => {
  it('sends the canary first and the next wave only after the canary applied and soaked', async () => {
    const update = await createUpdate();
    const nodes = await fleet(5);
    const [canary, second, third] = nodes as [TestNode, TestNode, TestNode];
    const rollout = await startRollout(update.id, nodes);
    expect(rollout).toMatchObject({ update_id: update.id, status: 'InProgress', current_wave: 0, halt_reason: null });
    expect(rollout.targets.map((target: any) => [target.node_id, target.wave, target.status])).toEqual([
      [canary.id, 0, 'Sent'],
      ...nodes.slice(1).map((node, index) => [node.id, index + 1, 'Waiting']),
    ]);
    expect(await statusOf(canary)).toBe('Updating');
    expect(await statusOf(second)).toBe('Online');

    const delivered = await t.heartbeat(canary);
    expect(delivered).toEqual([
      {
        type: 'update_software',
        command_id: rollout.targets[0].command_id,
        update_id: update.id,
        update_number: update.update_number,
        update_file_name: 'agent-setup.msi',
        download_url: 'https://downloads.example.com/agent-setup.msi',
        sha256,
      },
    ]);
    expect((await t.heartbeat(second))).toEqual([]);
    expect(await rollouts.runOnce()).toMatchObject({ advanced: 0 });

    expect((await applied(canary, update.id)).status).toBe(204);
    const node = await prisma().renderNode.findUniqueOrThrow({ where: { id: canary.id } });
    expect(node).toMatchObject({ status: 'Online', nodeAgentVersion: '2.0.0' });
    expect((await applied(canary, update.id, '2.0.0', true)).status).toBe(204);
    expect(await rollouts.runOnce()).toMatchObject({ advanced: 0, halted: 0 });
    expect(await updateCommands(nodes.slice(1))).toEqual([]);

    clock.advance((SOAK_SECONDS + 1) * 1000);
    expect(await rollouts.runOnce()).toMatchObject({ advanced: 1 });
    expect((await updateCommands(nodes.slice(1))).map((command) => command.nodeId)).toEqual([second.id]);
    expect((await t.heartbeat(second)).map((command) => command.type)).toEqual(['update_software']);
    expect(await updateCommands([third])).toEqual([]);

    const list = await t.rest('GET', '/v1/node-updates', { token: who.admin });
    const listed = list.body.data.find((entry: { id: string }) => entry.id === update.id);
    expect(listed).toMatchObject({ in_update_queue: true, rolled_out_to_node_ids: [canary.id] });
    const gql = await t.gql(RolloutsDocument, { updateId: update.id }, who.admin);
    expect(gql.data?.rollouts).toHaveLength(1);
    expect(gql.data?.rollouts[0]).toMatchObject({ status: 'InProgress', currentWave: 1, update: { updateNumber: update.update_number } });
    expect(gql.data?.rollouts[0]?.targets.slice(0, 2).map((target) => [target.node.name, target.status])).toEqual([
      [canary.name, 'Applied'],
      [second.name, 'Sent'],
    ]);
  });

  it('finishes once the last wave applied and soaked', async () => {
    const update = await createUpdate();
    const nodes = await fleet(2);
    const rollout = await startRollout(update.id, nodes);
    for (const node of nodes) {
      expect((await applied(node, update.id, '3.0.0')).status).toBe(204);
      clock.advance((SOAK_SECONDS + 1) * 1000);
      await rollouts.runOnce();
    }
    const row = await rolloutRow(rollout.id);
    expect(row.status).toBe('Completed');
    expect(row.targets.every((target) => target.status === 'Applied')).toBe(true);
    const list = await t.rest('GET', '/v1/node-updates', { token: who.admin });
    const listed = list.body.data.find((entry: { id: string }) => entry.id === update.id);
    expect(listed.in_update_queue).toBe(false);
    expect([...listed.rolled_out_to_node_ids].sort()).toEqual(nodes.map((node) => node.id).sort());
  });

  it('halts when the canary crashes after applying, and no later wave gets the update', async () => {
    const update = await createUpdate();
    const nodes = await fleet(3);
    const [canary] = nodes as [TestNode];
    const rollout = await startRollout(update.id, nodes);
    expect((await applied(canary, update.id)).status).toBe(204);
    await nodeCrash(t, canary.id, { crashedAt: clock.now(), crashSignal: 'SIGSEGV' });

    clock.advance((SOAK_SECONDS + 1) * 1000);
    expect(await rollouts.runOnce()).toMatchObject({ halted: 1, advanced: 0 });
    const row = await rolloutRow(rollout.id);
    expect(row.status).toBe('Halted');
    expect(row.haltReason).toMatch(new RegExp(`Node ${canary.id} crashed .* after applying update ${update.update_number}`));
    clock.advance((SOAK_SECONDS + 1) * 1000);
    expect(await rollouts.runOnce()).toMatchObject({ halted: 0, advanced: 0 });
    expect((await updateCommands(nodes)).map((command) => command.nodeId)).toEqual([canary.id]);
    expect(row.targets.filter((target) => target.wave > 0).every((target) => target.status === 'Waiting')).toBe(true);
    const list = await t.rest('GET', '/v1/node-updates', { token: who.admin });
    expect(list.body.data.find((entry: { id: string }) => entry.id === update.id).in_update_queue).toBe(false);
  });

  it('halts on a crash after the next wave went out, and withdraws the commands not yet delivered', async () => {
    const update = await createUpdate();
    const nodes = await fleet(3);
    const [canary, second, third] = nodes as [TestNode, TestNode, TestNode];
    const rollout = await startRollout(update.id, nodes);
    await applied(canary, update.id);
    clock.advance((SOAK_SECONDS + 1) * 1000);
    await rollouts.runOnce();
    expect(await statusOf(second)).toBe('Updating');
    await nodeCrash(t, canary.id, { crashedAt: clock.now(), crashSignal: 'SIGABRT' });

    expect(await rollouts.runOnce()).toMatchObject({ halted: 1 });
    const [withdrawn] = await updateCommands([second]);
    expect(withdrawn?.status).toBe('Superseded');
    expect(await statusOf(second)).toBe('Online');
    expect((await t.heartbeat(second))).toEqual([]);
    expect(await updateCommands([third])).toEqual([]);
    expect((await rolloutRow(rollout.id)).status).toBe('Halted');
  });

  it('halts when a node reports the install failed', async () => {
    const update = await createUpdate();
    const nodes = await fleet(2);
    const [canary] = nodes as [TestNode];
    const rollout = await startRollout(update.id, nodes);
    const response = await failed(canary, update.id, 'checksum mismatch');
    expect(response.status).toBe(204);
    expect((await failed(canary, update.id, 'checksum mismatch', true)).status).toBe(204);
    const row = await rolloutRow(rollout.id);
    expect(row).toMatchObject({ status: 'Halted', haltReason: expect.stringContaining('checksum mismatch') });
    expect(row.targets.find((target) => target.nodeId === canary.id)?.status).toBe('Failed');
    expect(await statusOf(canary)).toBe('Online');
    const [command] = await updateCommands([canary]);
    expect(command).toMatchObject({ status: 'Failed', result: { error: 'checksum mismatch' } });
    clock.advance((SOAK_SECONDS + 1) * 1000);
    await rollouts.runOnce();
    expect((await updateCommands(nodes)).map((sent) => sent.nodeId)).toEqual([canary.id]);
    const late = await applied(canary, update.id, '2.0.0', true);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('INVALID_STATE');
  });

  it('answers the same through GraphQL', async () => {
    const update = await createUpdate();
    const nodes = await fleet(2);
    const result = await t.gql(RolloutNodeUpdateDocument, { updateId: update.id, nodeIds: nodes.map((node) => node.id) }, who.admin);
    expect(result.errors).toBeUndefined();
    expect(result.data?.rolloutNodeUpdate).toMatchObject({
      __typename: 'Rollout',
      status: 'InProgress',
      currentWave: 0,
      targets: [
        { nodeId: nodes[0]!.id, wave: 0, status: 'Sent' },
        { nodeId: nodes[1]!.id, wave: 1, status: 'Waiting', commandId: null },
      ],
    });
    const conflict = await t.gql(RolloutNodeUpdateDocument, { updateId: update.id, nodeIds: [nodes[1]!.id] }, who.admin);
    expect(conflict.data?.rolloutNodeUpdate.__typename).toBe('ConflictError');
    const missing = await t.gql(RolloutNodeUpdateDocument, { updateId: randomUUID(), nodeIds: [nodes[0]!.id] }, who.admin);
    expect(missing.data?.rolloutNodeUpdate.__typename).toBe('NotFoundError');
    const invalid = await t.gql(RolloutNodeUpdateDocument, { updateId: update.id, nodeIds: [] }, who.admin);
    expect(invalid.data?.rolloutNodeUpdate).toMatchObject({ __typename: 'ValidationError', problems: [{ path: 'nodeIds' }] });
  });

  it('refuses unknown, repeated and malformed node ids, a second rollout of the update or of a node, and non-admins', async () => {
    const update = await createUpdate();
    const [node, other] = await fleet(2);
    const path = `/v1/node-updates/${update.id}/rollout`;
    const counts = async () => ({ rollouts: await prisma().rollout.count(), commands: await prisma().nodeCommand.count() });
    const before = await counts();

    const repeated = await t.rest('POST', path, { token: who.admin, body: { node_ids: [node!.id, other!.id, node!.id] } });
    expect(repeated.status).toBe(400);
    expect(problemPaths(repeated.body)).toEqual(['node_ids.2']);
    const unknown = await t.rest('POST', path, { token: who.admin, body: { node_ids: [node!.id, randomUUID()] } });
    expect(unknown.status).toBe(400);
    expect(problemPaths(unknown.body)).toEqual(['node_ids.1']);
    const malformed = await t.rest('POST', path, { token: who.admin, body: { node_ids: ['x'], wave_size: 3 } });
    expect(problemPaths(malformed.body)).toEqual(['node_ids.0', 'wave_size']);
    expect((await t.rest('POST', path, { token: who.admin, body: { node_ids: [] } })).status).toBe(400);
    expect((await t.rest('POST', path, { token: who.admin, body: {} })).status).toBe(400);
    expect((await t.rest('POST', `/v1/node-updates/${randomUUID()}/rollout`, { token: who.admin, body: { node_ids: [node!.id] } })).status).toBe(404);
    expect((await t.rest('POST', '/v1/node-updates/latest/rollout', { token: who.admin, body: { node_ids: [node!.id] } })).status).toBe(400);
    await expectAdminOnly(t, who, 'POST', path, { node_ids: [node!.id] });
    await expectGraphQLAdminOnly((token) => t.gql(RolloutNodeUpdateDocument, { updateId: update.id, nodeIds: [node!.id] }, token), who);
    await expectGraphQLAdminOnly((token) => t.gql(RolloutsDocument, {}, token), who);
    expect(await counts()).toEqual(before);

    await startRollout(update.id, [node!]);
    const twice = await t.rest('POST', path, { token: who.admin, body: { node_ids: [other!.id] } });
    expect(twice.status).toBe(409);
    const another = await createUpdate();
    const busyNode = await t.rest('POST', `/v1/node-updates/${another.id}/rollout`, { token: who.admin, body: { node_ids: [other!.id, node!.id] } });
    expect(busyNode.status).toBe(409);
    expect(busyNode.body.error.details.node_ids).toEqual([node!.id]);
    expect(await prisma().rollout.count()).toBe(before.rollouts + 1);
  });
});

describe('the agent update reports', () => {
  it('are signed by the node they name: unsigned 401, another node 403, replay 401', async () => {
    const update = await createUpdate();
    const [node, other] = await fleet(2);
    await startRollout(update.id, [node!]);
    const path = `/v1/internal/nodes/${node!.id}/updates/${update.id}/applied`;
    const body = { node_agent_version: '9.9.9' };

    const unsigned = await t.rest('POST', path, { body });
    expect(unsigned.status).toBe(401);
    expect((await t.rest('POST', path, { token: who.admin, body })).status).toBe(401);
    const crossNode = await t.signed(other!, 'POST', path, body);
    expect(crossNode.status).toBe(403);
    const failedPath = `/v1/internal/nodes/${node!.id}/updates/${update.id}/failed`;
    expect((await t.signed(other!, 'POST', failedPath, { error: 'x' })).status).toBe(403);
    expect((await t.rest('POST', failedPath, { body: { error: 'x' } })).status).toBe(401);
    expect(await statusOf(node!)).toBe('Updating');

    const timestamp = Math.floor(clock.now().getTime() / 1000);
    expect((await t.signed(node!, 'POST', path, body, { timestamp })).status).toBe(204);
    const replay = await t.signed(node!, 'POST', path, body, { timestamp });
    expect(replay.status).toBe(401);
    expect(replay.body.error.message).toMatch(/replay/i);
    expect((await prisma().renderNode.findUniqueOrThrow({ where: { id: node!.id } })).nodeAgentVersion).toBe('9.9.9');
  });

  it('refuse bad bodies, unknown updates and reports for updates never sent, changing nothing', async () => {
    const update = await createUpdate();
    const [node, waiting] = await fleet(2);
    const rollout = await startRollout(update.id, [node!, waiting!]);
    const base = `/v1/internal/nodes/${node!.id}/updates/${update.id}`;

    const empty = await t.signed(node!, 'POST', `${base}/applied`, {});
    expect(empty.status).toBe(400);
    expect(problemPaths(empty.body)).toEqual(['node_agent_version']);
    const extra = await t.signed(node!, 'POST', `${base}/failed`, { error: '', code: 3 });
    expect(problemPaths(extra.body)).toEqual(['code', 'error']);
    const notUuid = await t.signed(node!, 'POST', `/v1/internal/nodes/${node!.id}/updates/abc/applied`, { node_agent_version: '1' });
    expect(notUuid.status).toBe(400);
    const unknown = await t.signed(node!, 'POST', `/v1/internal/nodes/${node!.id}/updates/${randomUUID()}/applied`, { node_agent_version: '1' });
    expect(unknown.status).toBe(404);
    const notSent = await t.signed(waiting!, 'POST', `/v1/internal/nodes/${waiting!.id}/updates/${update.id}/applied`, { node_agent_version: '1' });
    expect(notSent.status).toBe(409);
    expect(notSent.body.error.code).toBe('INVALID_STATE');

    const row = await rolloutRow(rollout.id);
    expect(row.status).toBe('InProgress');
    expect(row.targets.map((target) => target.status).sort()).toEqual(['Sent', 'Waiting']);
    expect((await prisma().renderNode.findUniqueOrThrow({ where: { id: node!.id } })).nodeAgentVersion).toBe('1.0.0');
  });

  it('a node never in a rollout of the update is not found', async () => {
    const update = await createUpdate();
    const stranger = await t.node();
    const response = await t.signed(stranger, 'POST', `/v1/internal/nodes/${stranger.id}/updates/${update.id}/failed`, { error: 'boom' });
    expect(response.status).toBe(404);
  });
});
