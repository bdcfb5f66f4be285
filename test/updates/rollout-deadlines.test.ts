// A rollout's wave has a deadline: nodes that are Offline or never report the update are skipped
// when it passes, so the rollout goes on, unless skipping them would hide a bad update, when the
// rollout halts instead. The clock is moved to the deadline the rollout shows.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HEARTBEAT_TIMEOUT_MS } from '../../src/domain/nodes/node-status.ts';
import { planWaves, SOAK_SECONDS, WAVE_DEADLINE_MINUTES } from '../../src/domain/updates/rollout-service.ts';
import type { Loop } from '../../src/loops/loop.ts';
import { RolloutsDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp, type TestNode } from '../support/app.ts';
import { type Callers, callers } from '../support/callers.ts';
import { controllableClock } from '../support/clock.ts';
import { createNodeUpdate, reportApplied, rolloutFleet, startRollout } from '../support/updates.ts';

const clock = controllableClock();
let t: TestApp;
let who: Callers;
let rollouts: Loop;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  who = await callers(t);
  rollouts = t.loop('rollouts');
});
afterEach(() => clock.reset());
afterAll(() => t.close());

/** The rollout of the update, as GraphQL shows it. */
async function rolloutOf(updateId: string) {
  const answer = await t.gql(RolloutsDocument, { updateId }, who.admin);
  expect(answer.errors).toBeUndefined();
  return answer.data!.rollouts[0]!;
}

/** Each target's node, status and skip reason, in wave order. */
const targetsOf = async (updateId: string) =>
  (await rolloutOf(updateId)).targets.map((target) => [target.nodeId, target.status, target.skipReason]);

const statusOf = async (node: TestNode) => (await t.rest('GET', `/v1/nodes/${node.id}`, { token: who.admin })).body.status;

/** Moves the clock to `earlyMs` before the deadline of the rollout's current wave, and runs the rollout pass there. */
async function passAtDeadline(updateId: string, earlyMs = 0) {
  const { waveDeadlineAt } = await rolloutOf(updateId);
  clock.set(new Date(Date.parse(waveDeadlineAt!) - earlyMs));
  await rollouts.runOnce();
}
/** Early enough before a deadline that the pass surely runs before it. */
const A_MINUTE_EARLY = 60_000;

/** Sends the next wave: the canary applied the update and soaked. */
async function passCanary(updateId: string, canary: TestNode) {
  expect((await reportApplied(t, canary, updateId)).status).toBe(204);
  clock.advance((SOAK_SECONDS + 1) * 1000);
  await rollouts.runOnce();
}

/** The node stops heartbeating and the heartbeat sweep finds it Offline; the others heartbeat meanwhile. */
async function goOffline(node: TestNode, others: TestNode[]) {
  clock.advance(HEARTBEAT_TIMEOUT_MS + 1000);
  for (const other of others) await t.heartbeat(other);
  expect((await t.app.services.scheduler.sweepHeartbeats()).offline).toContain(node.id);
  expect(await statusOf(node)).toBe('Offline');
}

/** A fleet whose wave 1 has four nodes, with the canary first and those four. */
async function fleetWithWaveOfFour() {
  const nodes = await rolloutFleet(t, 14);
  const [canary, ...rest] = nodes as [TestNode, ...TestNode[]];
  const wave = rest.slice(0, 4);
  expect(planWaves(nodes.map((node) => node.id))[1]).toEqual(wave.map((node) => node.id));
  return { nodes, canary, wave, later: rest.slice(4) };
}

describe("a rollout at its wave's deadline", () => {
  it('skips an Offline node, goes on without it and completes, listing it as skipped', async () => {
    const update = await createNodeUpdate(t, who.admin);
    const nodes = await rolloutFleet(t, 3);
    const [canary, lost, last] = nodes as [TestNode, TestNode, TestNode];
    await goOffline(lost, [canary, last]);
    const started = await startRollout(t, who.admin, update.id, nodes);
    expect(started.wave_deadline_at).toBe(new Date(Date.parse(started.targets[0].sent_at) + WAVE_DEADLINE_MINUTES * 60_000).toISOString());
    expect(started.targets.map((target: { skip_reason: unknown }) => target.skip_reason)).toEqual([null, null, null]);
    await passCanary(update.id, canary);

    await passAtDeadline(update.id, A_MINUTE_EARLY);
    expect(await targetsOf(update.id)).toEqual([
      [canary.id, 'Applied', null],
      [lost.id, 'Sent', null],
      [last.id, 'Waiting', null],
    ]);
    await passAtDeadline(update.id);
    expect(await targetsOf(update.id)).toEqual([
      [canary.id, 'Applied', null],
      [lost.id, 'Skipped', 'Offline'],
      [last.id, 'Sent', null],
    ]);

    expect((await reportApplied(t, last, update.id)).status).toBe(204);
    clock.advance((SOAK_SECONDS + 1) * 1000);
    await rollouts.runOnce();
    const done = await rolloutOf(update.id);
    expect(done).toMatchObject({ status: 'Completed', haltReason: null, waveDeadlineAt: null });
    expect(await targetsOf(update.id)).toEqual([
      [canary.id, 'Applied', null],
      [lost.id, 'Skipped', 'Offline'],
      [last.id, 'Applied', null],
    ]);
    // Back, the skipped node is not given the update by this rollout.
    expect(await t.heartbeat(lost)).toEqual([]);
    expect(await statusOf(lost)).toBe('Online');
  });

  it('skips a node that took the update and never reported it, ends its Updating, and records its report if it comes late', async () => {
    const update = await createNodeUpdate(t, who.admin);
    const { nodes, canary, wave, later } = await fleetWithWaveOfFour();
    const [silent, ...reporting] = wave as [TestNode, ...TestNode[]];
    await startRollout(t, who.admin, update.id, nodes);
    await passCanary(update.id, canary);
    for (const node of wave) expect((await t.takeCommands(node)).map((command) => command.type)).toEqual(['update_software']);
    for (const node of reporting) expect((await reportApplied(t, node, update.id)).status).toBe(204);

    await passAtDeadline(update.id, A_MINUTE_EARLY);
    expect(await rolloutOf(update.id)).toMatchObject({ status: 'InProgress', currentWave: 1 });
    expect(await statusOf(silent)).toBe('Updating');
    await passAtDeadline(update.id);
    const skipped = await rolloutOf(update.id);
    expect(skipped).toMatchObject({ status: 'InProgress', currentWave: 2 });
    expect(skipped.targets.find((target) => target.nodeId === silent.id)).toMatchObject({ status: 'Skipped', skipReason: 'NoReport' });
    expect(await statusOf(silent)).toBe('Online');
    expect((await t.heartbeat(later[0]!)).map((command) => command.type)).toEqual(['update_software']);

    expect((await reportApplied(t, silent, update.id)).status).toBe(204);
    const recorded = (await rolloutOf(update.id)).targets.find((target) => target.nodeId === silent.id);
    expect(recorded).toMatchObject({ status: 'Applied', skipReason: null });
  });

  it('halts instead when the canary has not applied the update, and ends its Updating', async () => {
    const update = await createNodeUpdate(t, who.admin);
    const nodes = await rolloutFleet(t, 2);
    const [canary, next] = nodes as [TestNode, TestNode];
    await startRollout(t, who.admin, update.id, nodes);
    await t.takeCommands(canary);

    await passAtDeadline(update.id, A_MINUTE_EARLY);
    expect((await rolloutOf(update.id)).status).toBe('InProgress');
    await passAtDeadline(update.id);
    const halted = await rolloutOf(update.id);
    expect(halted).toMatchObject({
      status: 'Halted',
      waveDeadlineAt: null,
      haltReason: `The canary did not apply update ${update.update_number} by its deadline. Not updated: ${canary.id} (no report).`,
    });
    // The canary is waited for no longer, so it is skipped as well; the halt stands.
    expect(await targetsOf(update.id)).toEqual([
      [canary.id, 'Skipped', 'NoReport'],
      [next.id, 'Waiting', null],
    ]);
    expect(await statusOf(canary)).toBe('Online');
    expect(await t.heartbeat(next)).toEqual([]);
  });

  it("halts instead when more than a quarter of the wave's nodes that received the update did not report it", async () => {
    const update = await createNodeUpdate(t, who.admin);
    const { nodes, canary, wave, later } = await fleetWithWaveOfFour();
    const [first, second, ...reporting] = wave as [TestNode, TestNode, ...TestNode[]];
    await startRollout(t, who.admin, update.id, nodes);
    await passCanary(update.id, canary);
    for (const node of wave) await t.takeCommands(node);
    for (const node of reporting) expect((await reportApplied(t, node, update.id)).status).toBe(204);

    await passAtDeadline(update.id);
    const halted = await rolloutOf(update.id);
    expect(halted.status).toBe('Halted');
    const silent = [first, second].sort((a, b) => a.id.localeCompare(b.id));
    expect(halted.haltReason).toBe(
      `2 of the 4 nodes of wave 1 that received update ${update.update_number} did not report it by the deadline. ` +
        `Not updated: ${silent.map((node) => `${node.id} (no report)`).join(', ')}.`,
    );
    expect(await statusOf(first)).toBe('Online');
    expect(await statusOf(second)).toBe('Online');
    expect(await t.heartbeat(later[0]!)).toEqual([]);
  });

  it('halts when a node that applied the update is Offline', async () => {
    const update = await createNodeUpdate(t, who.admin);
    const nodes = await rolloutFleet(t, 2);
    const [canary, next] = nodes as [TestNode, TestNode];
    await startRollout(t, who.admin, update.id, nodes);
    expect((await reportApplied(t, canary, update.id)).status).toBe(204);
    await goOffline(canary, [next]);

    await passAtDeadline(update.id, A_MINUTE_EARLY);
    expect((await rolloutOf(update.id)).status).toBe('InProgress');
    await passAtDeadline(update.id);
    expect(await rolloutOf(update.id)).toMatchObject({
      status: 'Halted',
      haltReason: `Wave 0 reached its deadline with nodes Offline after applying update ${update.update_number}: ${canary.id}.`,
    });
    expect(await t.heartbeat(next)).toEqual([]);
  });

  it('ends the Updating of nodes that took the update of a halted rollout and never report it, once their deadline passed', async () => {
    const update = await createNodeUpdate(t, who.admin);
    const { nodes, canary, wave } = await fleetWithWaveOfFour();
    const [failing, ...silent] = wave as [TestNode, ...TestNode[]];
    await startRollout(t, who.admin, update.id, nodes);
    await passCanary(update.id, canary);
    const { waveDeadlineAt } = await rolloutOf(update.id);
    for (const node of wave) expect((await t.takeCommands(node)).map((command) => command.type)).toEqual(['update_software']);
    const failed = await t.signed(failing, 'POST', `/v1/internal/nodes/${failing.id}/updates/${update.id}/failed`, { error: 'disk full' });
    expect(failed.status).toBe(204);
    expect((await rolloutOf(update.id)).status).toBe('Halted');

    clock.set(new Date(Date.parse(waveDeadlineAt!) - A_MINUTE_EARLY));
    for (const node of silent) await t.heartbeat(node);
    await rollouts.runOnce();
    for (const node of silent) expect(await statusOf(node)).toBe('Updating');
    clock.set(new Date(Date.parse(waveDeadlineAt!)));
    for (const node of silent) await t.heartbeat(node);
    await rollouts.runOnce();
    const halted = await rolloutOf(update.id);
    expect(halted.status).toBe('Halted');
    for (const node of silent) {
      expect(await statusOf(node)).toBe('Online');
      expect(halted.targets.find((target) => target.nodeId === node.id)).toMatchObject({ status: 'Skipped', skipReason: 'NoReport' });
    }
  });
});
