// The frontend's path: GraphQL Hive Gateway (gateway/main.ts with the configuration compose ships)
// as a process of its own, in front of the service started as real processes and a stand-in
// identity subgraph. Queries and mutations over HTTP, subscriptions over graphql-ws, with the
// caller's own token, exactly as the frontend sends them.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, startFleet } from '../../agent-sim/fleet.ts';
import { type GatewayProcess, startGateway } from '../../bench/lib/gateway.ts';
import {
  CancelRenderJobDocument,
  FollowRenderProgressDocument,
  type FollowRenderProgressSubscription,
  RenderJobDocument,
  RenderJobsDocument,
  RequestSnapshotDocument,
  SnapshotUpdatedDocument,
  SubmitRenderJobDocument,
  type SubmitRenderJobMutationVariables,
  WatchRenderJobsDocument,
} from '../generated/graphql.ts';
import { type ServiceClient, serviceClient } from '../support/app.ts';
import { emailOf, startIdentitySubgraph } from '../support/identity.ts';
import { auditSeqs, type Replicas, startReplicas } from '../support/replicas.ts';
import { snapshotAgent } from '../support/snapshots.ts';
import { type Subscriber, subscribe } from '../support/subscriber.ts';

type Progress = FollowRenderProgressSubscription['renderProgress'];

let replicas: Replicas;
let identity: Awaited<ReturnType<typeof startIdentitySubgraph>>;
let gateway: GatewayProcess;
/** The same calls, through the gateway and straight to the subgraph the gateway fronts. */
let through: ServiceClient;
let direct: ServiceClient;
const subscribers: Subscriber<unknown>[] = [];
const fleets: Fleet[] = [];

/**
 * A Free job. Unless given the version of a fleet started to render it, it asks for an After
 * Effects version no node has, so it stays Queued: a node another test registers (the snapshot
 * test's, which answers nothing but its snapshot) is never handed it.
 */
const jobInput = (durationSec: number, aeVersion = '1.0'): SubmitRenderJobMutationVariables['input'] => ({
  savedProjectId: randomUUID(),
  quality: 'Low',
  resolution: 'HD',
  priceType: 'Free',
  durationSec,
  aeVersion,
});

async function submit(token: string, input = jobInput(2)): Promise<string> {
  const answer = await through.gql(SubmitRenderJobDocument, { input }, token);
  expect(answer.errors).toBeUndefined();
  const job = answer.data?.submitRenderJob;
  if (job?.__typename !== 'RenderJob') throw new Error(`submit answered ${JSON.stringify(answer)}`);
  return job.id;
}

function follow<R, V>(...args: Parameters<typeof subscribe<R, V>>): Subscriber<R> {
  const subscriber = subscribe(...args);
  subscribers.push(subscriber as Subscriber<unknown>);
  return subscriber;
}

const progressOf = (subscriber: Subscriber<{ renderProgress: Progress }>) => subscriber.received.map((result) => result.renderProgress);

beforeAll(async () => {
  replicas = await startReplicas(2);
  identity = await startIdentitySubgraph();
  gateway = await startGateway({ render: `${replicas.urls[0]}/graphql`, identity: identity.url });
  through = serviceClient(gateway.url);
  direct = serviceClient(replicas.urls[0] as string);
}, 120_000);

afterAll(async () => {
  await Promise.all(subscribers.map((subscriber) => subscriber.close()));
  await Promise.all(fleets.map((fleet) => fleet.stop()));
  await gateway?.stop();
  await identity?.stop();
  await replicas?.close();
});

describe('queries and mutations through the gateway', () => {
  it('lists, submits and cancels with the caller’s own token', async () => {
    const user = await replicas.user(0);
    const jobId = await submit(user.token);

    const listed = await through.gql(RenderJobsDocument, { first: 5 }, user.token);
    expect(listed.errors).toBeUndefined();
    expect(listed.data?.renderJobs.edges.map((edge) => edge.node.id)).toEqual([jobId]);

    const cancelled = await through.gql(CancelRenderJobDocument, { id: jobId, reason: 'changed my mind' }, user.token);
    expect(cancelled.data?.cancelRenderJob).toMatchObject({ __typename: 'CancelledRenderJob', cancelled: true, job: { id: jobId, step: 'Cancelled' } });
    const again = await through.gql(CancelRenderJobDocument, { id: jobId }, user.token);
    expect(again.data?.cancelRenderJob).toMatchObject({ __typename: 'InvalidStateError', code: 'INVALID_STATE', state: 'Cancelled' });
  });

  it('answers typed errors and error codes as the subgraph does', async () => {
    const owner = await replicas.user(0);
    const stranger = await replicas.user(0);
    const jobId = await submit(owner.token);
    const invalid = { input: { ...jobInput(2), frameRate: 7 } };

    for (const [document, variables, token] of [
      [RenderJobDocument, { id: jobId }, stranger.token],
      [RenderJobDocument, { id: jobId }, undefined],
      [CancelRenderJobDocument, { id: jobId }, stranger.token],
      [SubmitRenderJobDocument, invalid, owner.token],
    ] as const) {
      const [gatewayAnswer, directAnswer] = await Promise.all([
        through.gql(document as never, variables as never, token),
        direct.gql(document as never, variables as never, token),
      ]);
      expect(gatewayAnswer.data).toEqual(directAnswer.data);
      const codes = (answer: typeof gatewayAnswer) => (answer.errors ?? []).map((error) => [error.message, error.extensions?.code]);
      expect(codes(gatewayAnswer)).toEqual(codes(directAnswer));
    }
    const refused = await through.gql(RenderJobDocument, { id: jobId }, stranger.token);
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const anonymous = await through.gql(RenderJobDocument, { id: jobId }, undefined);
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const rejected = await through.gql(SubmitRenderJobDocument, invalid, owner.token);
    expect(rejected.data?.submitRenderJob.__typename).toBe('ValidationError');
  });

  it('resolves the identity’s User.renderJobs through entity resolution', async () => {
    const user = await replicas.user(0);
    const jobIds = [await submit(user.token), await submit(user.token)];
    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: '{ me { id email renderJobs(first: 5) { edges { node { id step } } } } }' }),
    });
    const answer = (await response.json()) as { data?: any; errors?: unknown };
    expect(answer.errors).toBeUndefined();
    expect(answer.data.me).toEqual({
      id: user.id,
      email: emailOf(user.id),
      renderJobs: { edges: jobIds.reverse().map((id) => ({ node: { id, step: 'Queued' } })) },
    });
  });
});

describe('subscriptions through the gateway', () => {
  it('follows a snapshot’s render to Cached with snapshotUpdated, then ends', async () => {
    const user = await replicas.user(0);
    const agent = snapshotAgent(direct);
    const project = await agent.savedProject(user);
    const node = await direct.onlineNode(undefined, { templates: [project.md5] });
    const asked = await through.gql(RequestSnapshotDocument, { input: { savedProjectId: project.id, sceneKey: 'intro', frameNumber: 12 } }, user.token);
    const snapshot = asked.data?.requestSnapshot;
    if (snapshot?.__typename !== 'Snapshot') throw new Error(`requestSnapshot answered ${JSON.stringify(asked)}`);

    const watcher = follow(gateway.url, user.token, SnapshotUpdatedDocument, { id: snapshot.id });
    await watcher.until((result) => result.snapshotUpdated.status === 'Pending');
    // The service's own scheduler hands the render to the node holding the template.
    let command: Awaited<ReturnType<typeof agent.commandsFor>>[number] | undefined;
    for (let attempt = 0; attempt < 60 && !command; attempt++) {
      command = (await agent.commandsFor(node)).find((candidate) => candidate.type === 'render_snapshot');
      if (!command) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (!command) throw new Error('the node was never given the snapshot to render');
    await agent.render(node, command);

    await watcher.end();
    expect(watcher.errors).toEqual([]);
    const statuses = watcher.received.map((result) => result.snapshotUpdated.status);
    expect(statuses[0]).toBe('Pending');
    expect(statuses.at(-1)).toBe('Cached');
    expect(watcher.received.at(-1)?.snapshotUpdated.imageUrl).toMatch(/^http/);
  }, 90_000);

  it('follows renderProgress and renderJobUpdated from submit to Completed, then the progress stream ends', async () => {
    const user = await replicas.user(0);
    const jobs = follow(gateway.url, user.token, WatchRenderJobsDocument, {});
    // A version only these nodes have: the snapshot test's node, which renders nothing, gets none of it.
    const adminToken = await replicas.token(randomUUID(), { admin: true });
    const fleet = await startFleet({ url: replicas.urls, nodes: 3, adminToken, aeVersion: '25.0', frameMs: 10, heartbeatSeconds: 0.5, seed: 13 });
    fleets.push(fleet);
    const jobId = await submit(user.token, jobInput(2, '25.0'));
    const progress = follow(gateway.url, user.token, FollowRenderProgressDocument, { jobId });

    await progress.end(120_000);
    expect(progress.errors).toEqual([]);
    const seen = progressOf(progress);
    expect(seen.at(-1)?.step).toBe('Completed');
    expect(seen[0]?.step).toBe('Queued');
    const { eventSeq } = await replicas.db.prisma.renderJob.findUniqueOrThrow({ where: { id: jobId } });
    expect(auditSeqs(seen, eventSeq)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0 });

    await jobs.until((result) => result.renderJobUpdated.id === jobId && result.renderJobUpdated.step === 'Completed');
    expect(jobs.errors).toEqual([]);
    await fleet.stop();
  }, 150_000);

  it('authenticates from connection_init whichever way the client spells Authorization', async () => {
    const user = await replicas.user(0);
    const jobId = await submit(user.token, jobInput(1));
    for (const param of ['Authorization', 'authorization']) {
      const watcher = follow(gateway.url, user.token, FollowRenderProgressDocument, { jobId }, { param });
      await watcher.until((result) => result.renderProgress.jobId === jobId);
      expect(watcher.errors).toEqual([]);
      await watcher.close();
    }
  });

  it('refuses another user’s job, and a caller without a token, as the subgraph does', async () => {
    const owner = await replicas.user(0);
    const stranger = await replicas.user(0);
    const jobId = await submit(owner.token, jobInput(1));
    const codes = async (url: string, token: string | undefined) => {
      const watcher = follow(url, token, FollowRenderProgressDocument, { jobId });
      await watcher.end();
      expect(watcher.received).toEqual([]);
      return watcher.errors.flat().map((error) => error.extensions?.code ?? error.close ?? error.message);
    };
    const refused = await codes(gateway.url, stranger.token);
    expect(refused).toEqual(await codes(direct.url, stranger.token));
    expect(refused).toEqual(['NOT_FOUND']);
    expect(await codes(gateway.url, undefined)).not.toEqual([]);
  });

  it('a subscriber resumes with afterSeq after the subgraph restarts, and misses nothing', async () => {
    const user = await replicas.user(0);
    const jobId = await submit(user.token, jobInput(1));
    const before = follow(gateway.url, user.token, FollowRenderProgressDocument, { jobId });
    await before.until((result) => result.renderProgress.step === 'Queued');

    // The replica behind the gateway dies. The gateway retries it for a while, then tells the
    // subscriber, whose stream ends; meanwhile another replica ends the job.
    await replicas.processes[0]?.kill();
    await before.end(90_000);
    const other = serviceClient(replicas.urls[1] as string);
    const cancelled = await other.gql(CancelRenderJobDocument, { id: jobId }, user.token);
    expect(cancelled.data?.cancelRenderJob.__typename).toBe('CancelledRenderJob');
    await replicas.revive(0);

    const lastSeen = progressOf(before).at(-1)?.seq ?? 0;
    const after = follow(gateway.url, user.token, FollowRenderProgressDocument, { jobId, afterSeq: lastSeen });
    await after.end(60_000);
    expect(after.errors).toEqual([]);
    const seen = [...progressOf(before), ...progressOf(after)];
    const { eventSeq } = await replicas.db.prisma.renderJob.findUniqueOrThrow({ where: { id: jobId } });
    expect(auditSeqs(seen, eventSeq)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0 });
    expect(seen.at(-1)?.step).toBe('Cancelled');
  }, 150_000);
});

describe('stopping the gateway', () => {
  it('closes its subscriptions and exits cleanly on SIGTERM', async () => {
    const user = await replicas.user(0);
    const jobId = await submit(user.token, jobInput(1));
    const watcher = follow(gateway.url, user.token, FollowRenderProgressDocument, { jobId });
    await watcher.until((result) => result.renderProgress.jobId === jobId);
    expect(await gateway.stop()).toBe(0);
    await watcher.end(5_000);
  });
});
