// Subscriptions end when what they follow has ended, through the service started as users run it
// (`tsx src/main.ts`, a real process) over real WebSockets: renderProgress and the contract's
// /ws/v1/render/{job_id} after the job's terminal step, snapshotUpdated after Cached.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Fleet, startFleet } from '../../agent-sim/fleet.ts';
import { FollowRenderProgressDocument, SnapshotUpdatedDocument } from '../generated/graphql.ts';
import { serviceClient } from '../support/app.ts';
import { legacyProgress } from '../support/graphql-ws.ts';
import { submitRender } from '../support/jobs.ts';
import { type Replicas, startReplicas } from '../support/replicas.ts';
import { snapshotAgent } from '../support/snapshots.ts';
import { type Subscriber, subscribe } from '../support/subscriber.ts';

let service: Replicas;
let url: string;
const fleets: Fleet[] = [];

beforeAll(async () => {
  service = await startReplicas(1);
  url = service.urls[0] as string;
}, 90_000);

afterAll(async () => {
  for (const fleet of fleets) await fleet.stop();
  await service?.close();
});

/** A job; one for an After Effects version no node has stays Queued. */
const submit = async (token: string, aeVersion = '99.0', durationSec = 1) =>
  (await submitRender(serviceClient(url), token, { quality: 'Low', duration_sec: durationSec, ae_version: aeVersion })).id;

async function cancel(token: string, jobId: string): Promise<void> {
  const response = await fetch(`${url}/v1/renders/${jobId}/cancel`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: '{}',
  });
  expect(response.status, await response.text()).toBe(200);
}

const recordedSeqs = async (jobId: string) =>
  (await service.db.prisma.renderJobEvent.findMany({ where: { renderJobId: jobId }, orderBy: { seq: 'asc' }, select: { seq: true } })).map(
    (event) => event.seq,
  );

const stepsOf = (received: { renderProgress: { step: string } }[]) => received.map((result) => result.renderProgress.step);
const first = (subscriber: Subscriber<unknown>) => subscriber.until(() => true);

/** Waits for the server to complete the subscription, and checks it was no failure that ended it. */
async function completed(subscriber: Subscriber<unknown>): Promise<void> {
  await subscriber.end();
  expect(subscriber.errors).toEqual([]);
}

describe('renderProgress and the legacy progress socket end with the job', () => {
  it('complete right after a Cancelled step', async () => {
    const user = await service.user(10_000);
    const jobId = await submit(user.token);
    const live = subscribe(url, user.token, FollowRenderProgressDocument, { jobId });
    const legacy = legacyProgress(url, user.token, jobId);
    await Promise.all([first(live), legacy.opened]);
    await vi.waitFor(() => expect(legacy.messages.length).toBe(1));

    await cancel(user.token, jobId);
    await completed(live);
    expect(stepsOf(live.received)).toEqual(['Queued', 'Cancelled']);
    expect(await legacy.closed).toEqual({ code: 1000, reason: 'job ended' });
    expect(legacy.messages.map((message) => message.step)).toEqual(['Queued', 'Cancelled']);
  });

  it('deliver where an ended job stands, then complete', async () => {
    const user = await service.user(10_000);
    const jobId = await submit(user.token);
    await cancel(user.token, jobId);
    const [lastSeq] = (await recordedSeqs(jobId)).slice(-1);

    const late = subscribe(url, user.token, FollowRenderProgressDocument, { jobId });
    const legacy = legacyProgress(url, user.token, jobId);
    await completed(late);
    expect(late.received.map((result) => [result.renderProgress.seq, result.renderProgress.step])).toEqual([[lastSeq, 'Cancelled']]);
    expect(await legacy.closed).toMatchObject({ code: 1000 });
    expect(legacy.messages.map((message) => message.step)).toEqual(['Cancelled']);
  });

  it('with afterSeq on an ended job, deliver the recorded events after it up to the terminal one, then complete', async () => {
    const user = await service.user(10_000);
    const jobId = await submit(user.token);
    await cancel(user.token, jobId);
    const seqs = await recordedSeqs(jobId);
    expect(seqs.length).toBeGreaterThanOrEqual(2);

    const fromStart = subscribe(url, user.token, FollowRenderProgressDocument, { jobId, afterSeq: 0 });
    const fromSecond = subscribe(url, user.token, FollowRenderProgressDocument, { jobId, afterSeq: 1 });
    await Promise.all([completed(fromStart), completed(fromSecond)]);
    const seqsOf = (received: { renderProgress: { seq: number } }[]) => received.map((result) => result.renderProgress.seq);
    expect(seqsOf(fromStart.received)).toEqual(seqs);
    expect(seqsOf(fromSecond.received)).toEqual(seqs.slice(1));
    expect(stepsOf(fromStart.received).at(-1)).toBe('Cancelled');
    expect(stepsOf(fromStart.received).slice(0, -1)).not.toContain('Cancelled');

    // A client that heard the terminal event but lost the connection before the completion
    // resumes after it (found by the soak's subscribers, which waited forever).
    const pastTheEnd = subscribe(url, user.token, FollowRenderProgressDocument, { jobId, afterSeq: seqs.at(-1) });
    await completed(pastTheEnd);
    expect(pastTheEnd.received).toEqual([]);
  });

  it('complete right after a Completed step, with a fleet rendering the job', { timeout: 90_000 }, async () => {
    const user = await service.user(100_000);
    const jobId = await submit(user.token, '24.1', 2);
    const live = subscribe(url, user.token, FollowRenderProgressDocument, { jobId });
    const legacy = legacyProgress(url, user.token, jobId);
    await Promise.all([first(live), legacy.opened]);
    const admin = await service.token(randomUUID(), { admin: true });
    fleets.push(await startFleet({ url, nodes: 2, adminToken: admin, frameMs: 5, heartbeatSeconds: 0.3, seed: 21 }));

    await completed(live);
    const last = live.received.at(-1)?.renderProgress;
    expect(last).toMatchObject({ step: 'Completed', progress: 100 });
    expect(stepsOf(live.received).filter((step) => step === 'Completed')).toHaveLength(1);
    expect(await legacy.closed).toMatchObject({ code: 1000 });
    expect(legacy.messages.at(-1)).toMatchObject({ step: 'Completed', progress: 100 });
  });
});

describe('snapshotUpdated ends with the snapshot', () => {
  it('completes after Cached, and on a snapshot already Cached delivers it and completes', { timeout: 60_000 }, async () => {
    const agent = snapshotAgent(serviceClient(url));
    const user = await service.user(1);
    const project = await agent.savedProject(user);
    const node = await serviceClient(url).onlineNode(undefined, { templates: [project.md5] });
    const asked = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({
        query: 'mutation($input: RequestSnapshotInput!) { requestSnapshot(input: $input) { __typename ... on Snapshot { id status } } }',
        variables: { input: { savedProjectId: project.id, sceneKey: 'intro', frameNumber: 24 } },
      }),
    });
    const snapshot = ((await asked.json()) as any).data.requestSnapshot;
    expect(snapshot).toMatchObject({ __typename: 'Snapshot', status: 'Pending' });

    const watcher = subscribe(url, user.token, SnapshotUpdatedDocument, { id: snapshot.id });
    await first(watcher);
    // The service's scheduler hands the render to the node at one of its heartbeats.
    const command = await vi.waitFor(
      async () => {
        const commands = await agent.commandsFor(node);
        const found = commands.find((candidate) => candidate.type === 'render_snapshot');
        if (!found) throw new Error('no render_snapshot command yet');
        return found;
      },
      { timeout: 30_000, interval: 300 },
    );
    await agent.render(node, command as Parameters<typeof agent.render>[1]);
    await completed(watcher);
    const statuses = watcher.received.map((result) => result.snapshotUpdated.status);
    expect(statuses[0]).toBe('Pending');
    expect(statuses.at(-1)).toBe('Cached');
    expect(statuses.filter((status) => status === 'Cached')).toHaveLength(1);

    const late = subscribe(url, user.token, SnapshotUpdatedDocument, { id: snapshot.id });
    await completed(late);
    expect(late.received.map((result) => result.snapshotUpdated.status)).toEqual(['Cached']);
  });
});
