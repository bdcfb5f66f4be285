// The render job lifecycle through both doors, against the real server, PostgreSQL and Redis:
// cancel (with exact refunds, also under concurrent cancels), retry, progress, logs and their
// retention, the state machine, notifications, subscriptions over a real WebSocket, admin
// discount codes, and the number of SQL statements a listing costs.
import { randomUUID } from 'node:crypto';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { createClient as createWsClient, type FormattedExecutionResult } from 'graphql-ws';
import { createClient as createRedisClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import WebSocket from 'ws';
import { InvalidStateError, NotFoundError } from '../../src/domain/errors.ts';
import { publishJobEvents, topics } from '../../src/domain/events.ts';
import { recordJobEvents } from '../../src/domain/jobs/job-events.ts';
import { pruneJobLogs } from '../../src/domain/jobs/log-retention.ts';
import { moveJob } from '../../src/domain/jobs/state-machine.ts';
import type { Actor } from '../../src/domain/actor.ts';
import {
  CancelRenderJobDocument,
  CreateDiscountCodeDocument,
  DeactivateDiscountCodeDocument,
  DiscountCodesDocument,
  RenderJobLogsDocument,
  RenderJobsWithChunksDocument,
  RenderProgressNowDocument,
  RetryRenderJobDocument,
  WatchRenderJobsDocument,
  WatchRenderProgressDocument,
} from '../generated/graphql.ts';
import { startTestApp, TEST_SERVICE_TOKEN, type TestApp } from '../support/app.ts';

let t: TestApp;
let admin: string;
const adminId = randomUUID();

interface User {
  id: string;
  token: string;
}

const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;

async function newUser(options: { admin?: boolean } = {}): Promise<User> {
  const id = randomUUID();
  return { id, token: await t.token(id, options) };
}

function funded(amountMinor: number, options: { admin?: boolean } = {}): Promise<User> {
  return t.user(amountMinor, options);
}

async function balanceOf(userId: string): Promise<number> {
  const wallet = await prisma().wallet.findUnique({ where: { userId } });
  return Number(wallet?.balanceMinor ?? 0n);
}

/** HD High 30 fps 10 s, Cash: 50, 300 frames. */
const jobBody = (overrides: Record<string, unknown> = {}) => ({
  saved_project_id: randomUUID(),
  quality: 'High',
  resolution: 'HD',
  frame_rate: 30,
  duration_sec: 10,
  ...overrides,
});

async function submit(user: User, overrides: Record<string, unknown> = {}): Promise<{ id: string; paid_price_minor: number } & Record<string, any>> {
  const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody(overrides) });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

async function markRendered(jobId: string, count: number): Promise<void> {
  const { count: updated } = await prisma().frame.updateMany({
    where: { renderJobId: jobId, frameNumber: { lt: count } },
    data: { rendered: true },
  });
  expect(updated).toBe(count);
  // The job's counter, which agents' frame reports keep in step with the frames.
  await prisma().renderJob.update({ where: { id: jobId }, data: { framesRendered: count } });
}

async function refundsOf(jobId: string) {
  return prisma().ledgerEntry.findMany({ where: { renderJobId: jobId, kind: 'Refund' } });
}

/** Everything a refused request must leave alone. */
async function snapshotOf(jobId: string, userId: string) {
  const db = prisma();
  const [job, frameJobs, entries, logs, balance, commands] = await Promise.all([
    db.renderJob.findUniqueOrThrow({ where: { id: jobId } }),
    db.frameJob.findMany({ where: { renderJobId: jobId }, orderBy: { orderValue: 'asc' }, select: { status: true, nodeId: true } }),
    db.ledgerEntry.count({ where: { userId } }),
    db.jobLog.count({ where: { renderJobId: jobId } }),
    balanceOf(userId),
    db.nodeCommand.count({ where: { renderJobId: jobId } }),
  ]);
  return {
    step: job.step,
    cancelReason: job.cancelReason,
    refundedMinor: job.refundedMinor,
    updatedAt: job.updatedAt.toISOString(),
    frameJobs,
    entries,
    logs,
    balance,
    commands,
    jobCount: await db.renderJob.count({ where: { userId } }),
  };
}

const problemPaths = (body: any): string[] => body.error.details.problems.map((problem: { path: string }) => problem.path).sort();

const nodeBody = (name: string) => ({
  name: `${name}-${randomUUID().slice(0, 8)}`,
  region: 'eu-west',
  node_ip: '10.1.2.3',
  worker_port: 8181,
  current_ae_version: '24.1',
  ram_gb: 64,
  cpu_cores: 16,
});

async function registerNode(name: string): Promise<{ id: string; agentKey: string }> {
  const response = await t.rest('POST', '/v1/nodes', { token: admin, body: nodeBody(name) });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return { id: response.body.id as string, agentKey: response.body.agent_key as string };
}

const info = (message: string) => ({ level: 'info' as const, message });

// ------------------------------------------------------------------ Redis and WebSocket helpers

const redisUrl = inject('redisUrl');
let redis: ReturnType<typeof createRedisClient>;
let redisSubscriber: ReturnType<typeof createRedisClient>;
const notifications: Array<Record<string, unknown>> = [];

/** Waits until the service has subscribed a Redis channel (a subscription is live). */
async function channelSubscribed(channel: string): Promise<void> {
  await vi.waitFor(
    async () => {
      const name = t.redisPrefix + channel;
      const counts = (await redis.pubSubNumSub([name])) as Record<string, number>;
      expect(counts[name] ?? 0).toBeGreaterThan(0);
    },
    { timeout: 10_000, interval: 25 },
  );
}

interface Subscription<R> {
  received: FormattedExecutionResult<R>[];
  /** Set when the server completed the operation (after an error, for instance). */
  completed: () => boolean;
  waitFor(count: number): Promise<FormattedExecutionResult<R>[]>;
  close(): Promise<void>;
}

const openClients: Array<{ dispose(): void | Promise<void> }> = [];

function subscribe<R, V>(document: TypedDocumentNode<R, V>, variables: V, token?: string): Subscription<R> {
  const client = createWsClient({
    url: `${t.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  openClients.push(client);
  const received: FormattedExecutionResult<R>[] = [];
  let done = false;
  let failure: unknown;
  const iterator = client.iterate<R>({ query: print(document), variables: variables as Record<string, unknown> });
  void (async () => {
    try {
      for await (const result of iterator) received.push(result as FormattedExecutionResult<R>);
    } catch (error) {
      failure = error;
    } finally {
      done = true;
    }
  })();
  return {
    received,
    completed: () => done,
    async waitFor(count) {
      await vi.waitFor(
        () => {
          if (failure) throw new Error(`subscription failed: ${JSON.stringify(failure)}`);
          expect(received.length).toBeGreaterThanOrEqual(count);
        },
        { timeout: 15_000, interval: 20 },
      );
      return received.slice(0, count);
    },
    async close() {
      await iterator.return?.();
      await client.dispose();
    },
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(adminId, { admin: true });
  redis = createRedisClient({ url: redisUrl });
  redisSubscriber = redis.duplicate();
  await redis.connect();
  await redisSubscriber.connect();
  await redisSubscriber.subscribe(t.redisPrefix + topics.notifications, (message) => {
    notifications.push(JSON.parse(message) as Record<string, unknown>);
  });
});

afterAll(async () => {
  for (const client of openClients) await client.dispose();
  await redisSubscriber?.close();
  await redis?.close();
  await t?.close();
});

// ------------------------------------------------------------------------------------ cancel

describe('cancelling over REST', () => {
  it('cancels a Queued job, refunding everything paid including the tip, and logs it', async () => {
    const user = await funded(1000);
    // HD High 10 s = 50, + tip 100.
    const job = await submit(user, { support_flatrender: true });
    expect(job.paid_price_minor).toBe(150);
    expect(await balanceOf(user.id)).toBe(850);

    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: {} });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 150 });

    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id }, include: { frameJobs: true } });
    expect(stored).toMatchObject({ step: 'Cancelled', refundedMinor: 150n, cancelReason: 'Cancelled by the user' });
    expect(stored.completedAt).not.toBeNull();
    expect(stored.frameJobs.length).toBeGreaterThan(0);
    expect(stored.frameJobs.every((chunk) => chunk.status === 'Cancelled')).toBe(true);

    const refunds = await refundsOf(job.id);
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ userId: user.id, kind: 'Refund', amountMinor: 150n, balanceAfterMinor: 1000n });
    expect(await balanceOf(user.id)).toBe(1000);

    const logs = await prisma().jobLog.findMany({ where: { renderJobId: job.id }, orderBy: { id: 'asc' } });
    expect(logs.map((line) => [line.level, line.message])).toEqual([
      ['info', 'Job queued'],
      ['info', 'Job cancelled: Cancelled by the user'],
    ]);
    expect(logs[1]?.meta).toMatchObject({ refund_minor: 150, frames_rendered: 0 });

    const detail = await t.rest('GET', `/v1/renders/${job.id}`, { token: user.token });
    expect(detail.body.step).toBe('Cancelled');
    expect(detail.body.frame_jobs.every((chunk: { status: string }) => chunk.status === 'Cancelled')).toBe(true);
  });

  it('answers a second cancel with 409 INVALID_STATE and the error body, refunding nothing more', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const first = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(first.status).toBe(200);
    const before = await snapshotOf(job.id, user.id);
    const second = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(second.status).toBe(409);
    expect(second.body).toEqual({
      error: {
        code: 'INVALID_STATE',
        message: `Render job ${job.id} is Cancelled; it cannot become Cancelled`,
        details: { job_id: job.id, step: 'Cancelled', requested_step: 'Cancelled', allowed_steps: [] },
      },
    });
    expect(await snapshotOf(job.id, user.id)).toEqual(before);
    expect(await refundsOf(job.id)).toHaveLength(1);
    expect(await balanceOf(user.id)).toBe(1000);
  });

  it('refunds exactly the unrendered share of the price without the tip once frames are rendered', async () => {
    const user = await funded(1000);
    // FullHD Full 30 fps 8 s = 5 x 8 x 1.5 x 1.25 = 75, + 100 voiceover = 175, + tip 100 = 275; 240 frames.
    const job = await submit(user, { resolution: 'FullHD', quality: 'Full', duration_sec: 8, has_voiceover: true, support_flatrender: true });
    expect(job.paid_price_minor).toBe(275);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored).toMatchObject({ totalFrames: 240, tipMinor: 100n });
    await markRendered(job.id, 60);

    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: 'Wrong music' } });
    expect(response.status).toBe(200);
    // (275 - 100) x 180 / 240 = 131.25, rounded down.
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 131 });
    expect(await balanceOf(user.id)).toBe(1000 - 275 + 131);
    const refunds = await refundsOf(job.id);
    expect(refunds.map((entry) => entry.amountMinor)).toEqual([131n]);
    const after = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(after).toMatchObject({ step: 'Cancelled', cancelReason: 'Wrong music', refundedMinor: 131n });
  });

  it('refunds nothing, and writes no refund entry, when every frame was rendered', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    await markRendered(job.id, 300);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 0 });
    expect(await refundsOf(job.id)).toEqual([]);
    expect(await balanceOf(user.id)).toBe(950);
  });

  it('stores the reason, trimmed', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: '  Changed my mind  ' } });
    expect(response.status).toBe(200);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored.cancelReason).toBe('Changed my mind');
    const line = await prisma().jobLog.findFirst({ where: { renderJobId: job.id }, orderBy: { id: 'desc' } });
    expect(line?.message).toBe('Job cancelled: Changed my mind');
  });

  it('answers 400 for a bad reason or an unknown field, changing nothing', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const before = await snapshotOf(job.id, user.id);
    const cases: [unknown, string[]][] = [
      [{ reason: 'x'.repeat(501) }, ['reason']],
      [{ reason: 42 }, ['reason']],
      [{ reason: ['why'] }, ['reason']],
      [{ reason: '   ' }, ['reason']],
      [{ reason: 'fine', colour: 'red' }, ['colour']],
    ];
    for (const [body, paths] of cases) {
      const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(problemPaths(response.body)).toEqual(paths);
    }
    const array = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: ['reason'] });
    expect(array.status).toBe(400);
    const malformed = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, rawBody: '{"reason":' });
    expect(malformed.status).toBe(400);
    const notUuid = await t.rest('POST', '/v1/renders/not-a-uuid/cancel', { token: user.token });
    expect(notUuid.status).toBe(400);
    expect(await snapshotOf(job.id, user.id)).toEqual(before);
    // 500 characters is still fine.
    const longest = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: 'y'.repeat(500) } });
    expect(longest.status).toBe(200);
  });

  it("answers 404 for another user's job and for an unknown one, changing nothing", async () => {
    const owner = await funded(1000);
    const stranger = await funded(1000);
    const job = await submit(owner);
    const before = await snapshotOf(job.id, owner.id);
    const strangerBefore = await balanceOf(stranger.id);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: stranger.token, body: { reason: 'mine now' } });
    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: 'NOT_FOUND', details: { entity: 'render job', id: job.id } });
    const unknown = await t.rest('POST', `/v1/renders/${randomUUID()}/cancel`, { token: owner.token });
    expect(unknown.status).toBe(404);
    expect(await snapshotOf(job.id, owner.id)).toEqual(before);
    expect(await balanceOf(stranger.id)).toBe(strangerBefore);
  });

  it("lets an admin cancel anyone's job, refunding the owner", async () => {
    const owner = await funded(1000);
    const job = await submit(owner);
    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: admin });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ cancelled: true, refund_amount_minor: 50 });
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(stored).toMatchObject({ step: 'Cancelled', cancelReason: 'Cancelled by an administrator' });
    expect(await balanceOf(owner.id)).toBe(1000);
    expect(await prisma().ledgerEntry.count({ where: { userId: adminId } })).toBe(0);
  });

  it('refuses anonymous callers (401) and service tokens (403), changing nothing', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const before = await snapshotOf(job.id, user.id);
    const anonymous = await t.rest('POST', `/v1/renders/${job.id}/cancel`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const service = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: TEST_SERVICE_TOKEN });
    expect(service.status).toBe(403);
    expect(await snapshotOf(job.id, user.id)).toEqual(before);
  });

  it('refunds once when ten cancels of one job arrive together', async () => {
    const user = await funded(1000);
    // FullHD Full 20 s with voiceover and tip: 388.
    const job = await submit(user, { resolution: 'FullHD', quality: 'Full', duration_sec: 20, has_voiceover: true, support_flatrender: true });
    expect(job.paid_price_minor).toBe(388);
    await markRendered(job.id, 150);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200), JSON.stringify(answers.map((a) => a.body))).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(9);
    for (const answer of answers.filter((a) => a.status === 409)) expect(answer.body.error.code).toBe('INVALID_STATE');
    // 600 frames, 150 rendered: (388 - 100) x 450 / 600 = 216.
    expect(answers.find((answer) => answer.status === 200)?.body).toEqual({ cancelled: true, refund_amount_minor: 216 });
    expect((await refundsOf(job.id)).map((entry) => entry.amountMinor)).toEqual([216n]);
    expect(await balanceOf(user.id)).toBe(1000 - 388 + 216);
    expect(await prisma().jobLog.count({ where: { renderJobId: job.id, message: { startsWith: 'Job cancelled' } } })).toBe(1);
  });

  it('tells a node working on a chunk to stop (cancel_job on its next heartbeat)', async () => {
    const node = await registerNode('cancel-target');
    const idle = await registerNode('cancel-bystander');
    const user = await funded(1000);
    const job = await submit(user);
    const [first] = await prisma().frameJob.findMany({ where: { renderJobId: job.id }, orderBy: { orderValue: 'asc' } });
    await prisma().frameJob.update({ where: { id: first!.id }, data: { status: 'Assigned', nodeId: node.id, assignedAt: new Date(), leaseToken: 'lease-1' } });

    const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token, body: { reason: 'Stop it' } });
    expect(response.status).toBe(200);
    const chunk = await prisma().frameJob.findUniqueOrThrow({ where: { id: first!.id } });
    expect(chunk).toMatchObject({ status: 'Cancelled', leaseToken: null });

    const heartbeat = await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/heartbeat`, { node_id: node.id });
    expect(heartbeat.status, JSON.stringify(heartbeat.body)).toBe(200);
    const commands = heartbeat.body.pending_commands as Array<Record<string, unknown>>;
    expect(commands).toEqual([{ type: 'cancel_job', command_id: expect.any(String), job_id: job.id, reason: 'Stop it' }]);
    const stored = await prisma().nodeCommand.findMany({ where: { renderJobId: job.id } });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ nodeId: node.id, type: 'cancel_job' });

    const other = await t.signed(idle, 'POST', `/v1/internal/nodes/${idle.id}/heartbeat`, { node_id: idle.id });
    expect(other.status).toBe(200);
    expect(other.body.pending_commands).toEqual([]);
  });
});

describe('cancelling through GraphQL', () => {
  it('answers CancelledRenderJob with the refund, then InvalidStateError, and NotFoundError for others', async () => {
    const owner = await funded(1000);
    const stranger = await funded(1000);
    const job = await submit(owner, { support_flatrender: true });

    const foreign = await t.gql(CancelRenderJobDocument, { id: job.id }, stranger.token);
    expect(foreign.errors).toBeUndefined();
    expect(foreign.data?.cancelRenderJob).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'render job', id: job.id });
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).step).toBe('Queued');

    const tooLong = await t.gql(CancelRenderJobDocument, { id: job.id, reason: 'z'.repeat(501) }, owner.token);
    expect(tooLong.data?.cancelRenderJob).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    if (tooLong.data?.cancelRenderJob.__typename === 'ValidationError') {
      expect(tooLong.data.cancelRenderJob.problems.map((problem) => problem.path)).toEqual(['reason']);
    }
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).step).toBe('Queued');

    const result = await t.gql(CancelRenderJobDocument, { id: job.id, reason: 'From the app' }, owner.token);
    expect(result.errors).toBeUndefined();
    const payload = result.data?.cancelRenderJob;
    expect(payload?.__typename).toBe('CancelledRenderJob');
    if (payload?.__typename !== 'CancelledRenderJob') return;
    expect(payload.cancelled).toBe(true);
    expect(Number(payload.refundAmountMinor)).toBe(150);
    expect(payload.job).toEqual({ id: job.id, step: 'Cancelled' });
    expect(await balanceOf(owner.id)).toBe(1000);
    expect((await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } })).cancelReason).toBe('From the app');

    const again = await t.gql(CancelRenderJobDocument, { id: job.id }, owner.token);
    expect(again.data?.cancelRenderJob).toMatchObject({
      __typename: 'InvalidStateError',
      code: 'INVALID_STATE',
      state: 'Cancelled',
      message: `Render job ${job.id} is Cancelled; it cannot become Cancelled`,
    });
    expect(await refundsOf(job.id)).toHaveLength(1);

    const anonymous = await t.gql(CancelRenderJobDocument, { id: job.id });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

// ------------------------------------------------------------------------------------- retry

describe('retrying', () => {
  async function detail(user: User, id: string) {
    const response = await t.rest('GET', `/v1/renders/${id}`, { token: user.token });
    expect(response.status).toBe(200);
    return response.body;
  }

  it('retries a Cancelled job as a new Queued job with the same configuration, charged again', async () => {
    const user = await funded(2000);
    const job = await submit(user, { resolution: 'FullHD', quality: 'Full', duration_sec: 20, has_voiceover: true, support_flatrender: true, frame_rate: 25 });
    // 5 x 20 x 1.5 x 1.25 x 25/30 = 156.25 -> 157, + 100 voiceover = 257, + tip 100 = 357.
    expect(job.paid_price_minor).toBe(357);
    expect((await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })).status).toBe(200);
    expect(await balanceOf(user.id)).toBe(2000);

    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const retried = response.body;
    expect(retried.id).not.toBe(job.id);
    expect(retried).toMatchObject({
      step: 'Queued',
      saved_project_id: job.saved_project_id,
      name: job.name,
      quality: 'Full',
      resolution: 'FullHD',
      frame_rate: 25,
      duration_sec: 20,
      has_voiceover: true,
      price_type: 'Cash',
      paid_price_minor: 357,
      started_at: null,
      completed_at: null,
    });
    expect((await detail(user, retried.id)).retry_count).toBe(1);
    expect((await detail(user, job.id)).retry_count).toBe(0);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: retried.id }, include: { frameJobs: true } });
    expect(stored).toMatchObject({ userId: user.id, retriedFromId: job.id, tipMinor: 100n, supportFlatrender: true, totalFrames: 500 });
    expect(stored.frameJobs.length).toBeGreaterThan(0);
    expect(await balanceOf(user.id)).toBe(2000 - 357);
    const charges = await prisma().ledgerEntry.findMany({ where: { renderJobId: retried.id } });
    expect(charges.map((entry) => [entry.kind, entry.amountMinor])).toEqual([['Charge', -357n]]);
    const log = await prisma().jobLog.findFirstOrThrow({ where: { renderJobId: retried.id } });
    expect(log.message).toBe(`Job queued as a retry of ${job.id}`);

    // A retry of the retry counts on.
    expect((await t.rest('POST', `/v1/renders/${retried.id}/cancel`, { token: user.token })).status).toBe(200);
    const third = await t.rest('POST', `/v1/renders/${retried.id}/retry`, { token: user.token });
    expect(third.status).toBe(201);
    expect((await detail(user, third.body.id)).retry_count).toBe(2);
  });

  it('retries a Failed job (which was refunded in full)', async () => {
    const user = await funded(1000);
    const job = await submit(user, { support_flatrender: true });
    await markRendered(job.id, 100);
    const failed = await jobs().fail(job.id, 'boom');
    expect(failed).toMatchObject({ step: 'Failed', failedMessage: 'boom', refundedMinor: 150n });
    // Failure refunds everything, rendered frames and tip included.
    expect((await refundsOf(job.id)).map((entry) => entry.amountMinor)).toEqual([150n]);
    expect(await balanceOf(user.id)).toBe(1000);
    const rest = await t.rest('GET', `/v1/renders/${job.id}`, { token: user.token });
    expect(rest.body).toMatchObject({ step: 'Failed', failed_message: 'boom' });

    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ step: 'Queued', quality: 'High', resolution: 'HD', frame_rate: 30, duration_sec: 10, paid_price_minor: 150, failed_message: null });
    expect((await detail(user, response.body.id)).retry_count).toBe(1);
    expect(await balanceOf(user.id)).toBe(850);
  });

  it('does not use a discount code twice', async () => {
    const user = await funded(1000);
    const code = `RETRY-${randomUUID().slice(0, 8)}`;
    await prisma().discountCode.create({ data: { code, percentOff: 25 } });
    // 5 x 40 = 200, 25% off = 150.
    const job = await submit(user, { duration_sec: 40, discount_code: code });
    expect(job.paid_price_minor).toBe(150);
    expect((await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })).status).toBe(200);
    const retried = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(retried.status).toBe(201);
    expect(retried.body.paid_price_minor).toBe(200);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code } })).usedCount).toBe(1);
  });

  it('answers 409 for a job that is not Failed or Cancelled, creating nothing', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const before = await snapshotOf(job.id, user.id);
    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({ code: 'INVALID_STATE', details: { job_id: job.id, step: 'Queued' } });
    expect(response.body.error.message).toContain('Queued');
    await jobs().move(job.id, { to: 'Preparing', log: info('Preparing') });
    const preparing = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(preparing.status).toBe(409);
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(before.jobCount);
    expect(await balanceOf(user.id)).toBe(before.balance);
  });

  it("answers 404 for another user's job, and lets an admin retry it for its owner", async () => {
    const owner = await funded(1000);
    const stranger = await funded(1000);
    const job = await submit(owner);
    await jobs().fail(job.id, 'crashed');
    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: stranger.token });
    expect(response.status).toBe(404);
    expect(await prisma().renderJob.count({ where: { retriedFromId: job.id } })).toBe(0);
    expect(await balanceOf(stranger.id)).toBe(1000);

    const byAdmin = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: admin });
    expect(byAdmin.status).toBe(201);
    const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: byAdmin.body.id } });
    expect(stored.userId).toBe(owner.id);
    expect(await balanceOf(owner.id)).toBe(950);
    expect(await prisma().ledgerEntry.count({ where: { userId: adminId } })).toBe(0);
  });

  it('answers 402 when the balance no longer covers the price, creating nothing', async () => {
    const user = await funded(110);
    const job = await submit(user);
    await submit(user);
    // Everything rendered: the cancel refunds nothing and 10 is left.
    await markRendered(job.id, 300);
    expect((await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token })).status).toBe(200);
    expect(await balanceOf(user.id)).toBe(10);
    const before = await prisma().renderJob.count({ where: { userId: user.id } });
    const entries = await prisma().ledgerEntry.count({ where: { userId: user.id } });

    const response = await t.rest('POST', `/v1/renders/${job.id}/retry`, { token: user.token });
    expect(response.status).toBe(402);
    expect(response.body.error).toMatchObject({ code: 'PAYMENT_REQUIRED', details: { required_minor: 50, balance_minor: 10 } });
    const gql = await t.gql(RetryRenderJobDocument, { id: job.id }, user.token);
    expect(gql.data?.retryRenderJob).toMatchObject({ __typename: 'PaymentRequiredError', code: 'PAYMENT_REQUIRED' });
    if (gql.data?.retryRenderJob.__typename === 'PaymentRequiredError') {
      expect(Number(gql.data.retryRenderJob.requiredMinor)).toBe(50);
      expect(Number(gql.data.retryRenderJob.balanceMinor)).toBe(10);
    }
    expect(await prisma().renderJob.count({ where: { userId: user.id } })).toBe(before);
    expect(await prisma().ledgerEntry.count({ where: { userId: user.id } })).toBe(entries);
    expect(await prisma().frameJob.count({ where: { renderJob: { retriedFromId: job.id } } })).toBe(0);
    expect(await balanceOf(user.id)).toBe(10);
  });

  it('retries through GraphQL with typed errors', async () => {
    const owner = await funded(1000);
    const stranger = await funded(1000);
    // 5 x 15 x 24/30 = 60.
    const job = await submit(owner, { frame_rate: 24, duration_sec: 15 });

    const queued = await t.gql(RetryRenderJobDocument, { id: job.id }, owner.token);
    expect(queued.errors).toBeUndefined();
    expect(queued.data?.retryRenderJob).toMatchObject({ __typename: 'InvalidStateError', code: 'INVALID_STATE', state: 'Queued' });

    await jobs().fail(job.id, 'no luck');
    const foreign = await t.gql(RetryRenderJobDocument, { id: job.id }, stranger.token);
    expect(foreign.data?.retryRenderJob).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });

    const result = await t.gql(RetryRenderJobDocument, { id: job.id }, owner.token);
    expect(result.errors).toBeUndefined();
    const payload = result.data?.retryRenderJob;
    expect(payload?.__typename).toBe('RenderJob');
    if (payload?.__typename !== 'RenderJob') return;
    expect(payload).toMatchObject({ userId: owner.id, step: 'Queued', quality: 'High', resolution: 'HD', frameRate: 24, durationSec: 15, retryCount: 1 });
    expect(Number(payload.paidPriceMinor)).toBe(60);
    expect(await balanceOf(owner.id)).toBe(1000 - 60);
    expect(await prisma().renderJob.count({ where: { userId: owner.id } })).toBe(2);
  });
});

// ---------------------------------------------------------------------------------- progress

describe('progress', () => {
  const REST_KEYS = ['job_id', 'step', 'progress', 'current_frame', 'total_frames', 'eta_seconds', 'preview_b64', 'active_nodes', 'message'];

  it('answers the RenderProgress shape over REST and GraphQL, before and while rendering', async () => {
    const owner = await funded(1000);
    const stranger = await funded(1000);
    // 60 s at 30 fps: 1800 frames, chunks of 300.
    const job = await submit(owner, { duration_sec: 60 });

    const queued = await t.rest('GET', `/v1/renders/${job.id}/progress`, { token: owner.token });
    expect(queued.status).toBe(200);
    expect(Object.keys(queued.body).sort()).toEqual([...REST_KEYS].sort());
    expect(queued.body).toEqual({
      job_id: job.id,
      step: 'Queued',
      progress: 0,
      current_frame: 0,
      total_frames: 1800,
      eta_seconds: null,
      preview_b64: null,
      active_nodes: 0,
      message: 'Job queued',
    });
    const gqlQueued = await t.gql(RenderProgressNowDocument, { jobId: job.id }, owner.token);
    expect(gqlQueued.errors).toBeUndefined();
    expect(gqlQueued.data?.renderProgress).toEqual({
      jobId: job.id,
      step: 'Queued',
      progress: 0,
      currentFrame: 0,
      totalFrames: 1800,
      etaSeconds: null,
      previewB64: null,
      activeNodes: 0,
      message: 'Job queued',
    });

    await jobs().move(job.id, { to: 'Preparing', log: info('Copying the project to the render nodes') });
    const preparing = await t.rest('GET', `/v1/renders/${job.id}/progress`, { token: owner.token });
    expect(preparing.body).toMatchObject({ step: 'Preparing', progress: 0, eta_seconds: null, message: 'Copying the project to the render nodes' });
    await jobs().move(job.id, { to: 'Rendering', log: info('Rendering started') });

    // Three nodes on chunks: two distinct ones on Assigned/Rendering chunks, one on a finished chunk.
    const [a, b, c] = await Promise.all([registerNode('progress-a'), registerNode('progress-b'), registerNode('progress-c')]);
    const chunks = await prisma().frameJob.findMany({ where: { renderJobId: job.id }, orderBy: { orderValue: 'asc' } });
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    await prisma().frameJob.update({ where: { id: chunks[0]!.id }, data: { status: 'Assigned', nodeId: a!.id } });
    await prisma().frameJob.update({ where: { id: chunks[1]!.id }, data: { status: 'Rendering', nodeId: a!.id } });
    await prisma().frameJob.update({ where: { id: chunks[2]!.id }, data: { status: 'Rendering', nodeId: b!.id } });
    await prisma().frameJob.update({ where: { id: chunks[3]!.id }, data: { status: 'Completed', nodeId: c!.id } });
    await markRendered(job.id, 360);
    // The chunks went out a minute ago and the frames completed within it; the job queued long before.
    await prisma().frameJob.updateMany({ where: { renderJobId: job.id }, data: { assignedAt: new Date(Date.now() - 60_000) } });
    await prisma().frame.updateMany({ where: { renderJobId: job.id, rendered: true }, data: { completedAt: new Date(Date.now() - 30_000) } });
    await prisma().renderJob.update({ where: { id: job.id }, data: { startedAt: new Date(Date.now() - 3_600_000), imagePreviewB64: 'cHJldmlldw==' } });

    const rendering = await t.rest('GET', `/v1/renders/${job.id}/progress`, { token: owner.token });
    expect(rendering.status).toBe(200);
    expect(Object.keys(rendering.body).sort()).toEqual([...REST_KEYS].sort());
    expect(rendering.body).toMatchObject({
      job_id: job.id,
      step: 'Rendering',
      progress: 20,
      current_frame: 360,
      total_frames: 1800,
      preview_b64: 'cHJldmlldw==',
      active_nodes: 2,
      message: 'Rendering started',
    });
    // 360 frames in the last 60 s: the 1440 left take about 240 s.
    expect(rendering.body.eta_seconds).toBeGreaterThanOrEqual(240);
    expect(rendering.body.eta_seconds).toBeLessThan(270);

    const gql = await t.gql(RenderProgressNowDocument, { jobId: job.id }, owner.token);
    expect(gql.errors).toBeUndefined();
    const progress = gql.data!.renderProgress;
    expect(progress).toMatchObject({
      jobId: job.id,
      step: 'Rendering',
      progress: 20,
      currentFrame: 360,
      totalFrames: 1800,
      previewB64: 'cHJldmlldw==',
      activeNodes: 2,
      message: 'Rendering started',
    });
    expect(progress.etaSeconds).toBeGreaterThanOrEqual(240);

    // Everything rendered but not encoded yet: 99, not 100.
    await markRendered(job.id, 1800);
    await jobs().move(job.id, { to: 'Encoding', log: info('Encoding') });
    const encoding = await t.rest('GET', `/v1/renders/${job.id}/progress`, { token: owner.token });
    expect(encoding.body).toMatchObject({ step: 'Encoding', progress: 99, current_frame: 1800, eta_seconds: null });
    await jobs().move(job.id, { to: 'Completed', log: info('Done') });
    const completed = await t.rest('GET', `/v1/renders/${job.id}/progress`, { token: owner.token });
    expect(completed.body).toMatchObject({ step: 'Completed', progress: 100, current_frame: 1800, total_frames: 1800, eta_seconds: 0, message: 'Done' });

    // Others' jobs do not exist; admins see them.
    const foreign = await t.rest('GET', `/v1/renders/${job.id}/progress`, { token: stranger.token });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('NOT_FOUND');
    const gqlForeign = await t.gql(RenderProgressNowDocument, { jobId: job.id }, stranger.token);
    expect(gqlForeign.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(gqlForeign.data?.renderProgress ?? null).toBeNull();
    const byAdmin = await t.rest('GET', `/v1/renders/${job.id}/progress`, { token: admin });
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.step).toBe('Completed');
    expect((await t.rest('GET', `/v1/renders/${job.id}/progress`)).status).toBe(401);
    expect((await t.rest('GET', `/v1/renders/${randomUUID()}/progress`, { token: owner.token })).status).toBe(404);
  });
});

// -------------------------------------------------------------------------------------- logs

describe('logs', () => {
  let owner: User;
  let stranger: User;
  let jobId: string;
  let nodeId: string;

  beforeAll(async () => {
    owner = await funded(1000);
    stranger = await funded(1000);
    jobId = (await submit(owner)).id;
    nodeId = (await registerNode('logger')).id;
    const queuedAt = (await prisma().renderJob.findUniqueOrThrow({ where: { id: jobId } })).queuedAt;
    const at = (seconds: number) => new Date(queuedAt.getTime() + seconds * 1000);
    await prisma().jobLog.createMany({
      data: [
        { renderJobId: jobId, timestamp: at(1), level: 'debug', message: 'Opening project', nodeId },
        { renderJobId: jobId, timestamp: at(2), level: 'warn', message: 'Missing font, substituted', nodeId, meta: { font: 'Comic' } },
        { renderJobId: jobId, timestamp: at(3), level: 'info', message: 'Chunk 0 done', nodeId },
        { renderJobId: jobId, timestamp: at(4), level: 'error', message: 'After Effects crashed', nodeId, meta: { exit_code: 3 } },
      ],
    });
  });

  it('answers every line oldest first over REST, starting with "Job queued"', async () => {
    const response = await t.rest('GET', `/v1/renders/${jobId}/logs`, { token: owner.token });
    expect(response.status).toBe(200);
    expect(Object.keys(response.body)).toEqual(['logs']);
    const lines = response.body.logs as Array<Record<string, unknown>>;
    expect(lines.map((line) => [line.level, line.message])).toEqual([
      ['info', 'Job queued'],
      ['debug', 'Opening project'],
      ['warn', 'Missing font, substituted'],
      ['info', 'Chunk 0 done'],
      ['error', 'After Effects crashed'],
    ]);
    expect(Object.keys(lines[0]!).sort()).toEqual(['level', 'message', 'meta', 'node_id', 'timestamp']);
    expect(lines[0]).toMatchObject({ node_id: null, meta: { price_type: 'Cash', charged_minor: 50 } });
    expect(lines[2]).toMatchObject({ node_id: nodeId, meta: { font: 'Comic' } });
    expect(new Date(lines[0]!.timestamp as string).toISOString()).toBe(lines[0]!.timestamp);
  });

  it('treats the level filter as a minimum', async () => {
    const messages = async (level: string) => {
      const response = await t.rest('GET', `/v1/renders/${jobId}/logs?level=${level}`, { token: owner.token });
      expect(response.status).toBe(200);
      return response.body.logs.map((line: { level: string; message: string }) => `${line.level}:${line.message}`);
    };
    expect(await messages('warn')).toEqual(['warn:Missing font, substituted', 'error:After Effects crashed']);
    expect(await messages('error')).toEqual(['error:After Effects crashed']);
    expect(await messages('info')).toEqual(['info:Job queued', 'warn:Missing font, substituted', 'info:Chunk 0 done', 'error:After Effects crashed']);
    expect(await messages('debug')).toHaveLength(5);
  });

  it('answers 400 for an unknown level', async () => {
    for (const level of ['verbose', 'WARN', 'fatal']) {
      const response = await t.rest('GET', `/v1/renders/${jobId}/logs?level=${level}`, { token: owner.token });
      expect(response.status, level).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(problemPaths(response.body)).toEqual(['level']);
    }
  });

  it("answers 404 for another user's job, and shows the lines to an admin", async () => {
    const foreign = await t.rest('GET', `/v1/renders/${jobId}/logs`, { token: stranger.token });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('NOT_FOUND');
    const byAdmin = await t.rest('GET', `/v1/renders/${jobId}/logs?level=warn`, { token: admin });
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.logs).toHaveLength(2);
    expect((await t.rest('GET', `/v1/renders/${jobId}/logs`)).status).toBe(401);
  });

  it('answers the same lines through GraphQL', async () => {
    const all = await t.gql(RenderJobLogsDocument, { jobId }, owner.token);
    expect(all.errors).toBeUndefined();
    expect(all.data!.renderJobLogs.map((line) => line.message)).toEqual([
      'Job queued',
      'Opening project',
      'Missing font, substituted',
      'Chunk 0 done',
      'After Effects crashed',
    ]);
    const warn = await t.gql(RenderJobLogsDocument, { jobId, level: 'warn' }, owner.token);
    expect(warn.data!.renderJobLogs).toEqual([
      { timestamp: expect.any(String), level: 'warn', nodeId, message: 'Missing font, substituted', meta: { font: 'Comic' } },
      { timestamp: expect.any(String), level: 'error', nodeId, message: 'After Effects crashed', meta: { exit_code: 3 } },
    ]);
    const foreign = await t.gql(RenderJobLogsDocument, { jobId }, stranger.token);
    expect(foreign.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const byAdmin = await t.gql(RenderJobLogsDocument, { jobId, level: 'error' }, admin);
    expect(byAdmin.data!.renderJobLogs.map((line) => line.message)).toEqual(['After Effects crashed']);
    const bad = await t.gql(RenderJobLogsDocument, { jobId, level: 'verbose' as never }, owner.token);
    expect(bad.errors?.length).toBeGreaterThan(0);
  });

  it('writes a line on every transition', async () => {
    const job = await submit(owner);
    await jobs().move(job.id, { to: 'Preparing', log: { level: 'info', message: 'Preparing the replica', nodeId, meta: { step: 1 } } });
    await jobs().fail(job.id, 'Replica broken', nodeId);
    const lines = await prisma().jobLog.findMany({ where: { renderJobId: job.id }, orderBy: { id: 'asc' } });
    expect(lines.map((line) => [line.level, line.message, line.nodeId])).toEqual([
      ['info', 'Job queued', null],
      ['info', 'Preparing the replica', nodeId],
      ['error', 'Job failed: Replica broken', nodeId],
    ]);
    expect(lines[1]?.meta).toEqual({ step: 1 });
  });
});

describe('log retention', () => {
  it('deletes debug lines older than 7 days and every line of jobs ended more than 30 days ago, keeping the rest', async () => {
    const user = await funded(1000);
    const now = new Date();
    const daysAgo = (days: number) => new Date(now.getTime() - days * 24 * 60 * 60 * 1000);
    const running = (await submit(user)).id;
    const endedLongAgo = (await submit(user)).id;
    const endedRecently = (await submit(user)).id;
    const failedLongAgo = (await submit(user)).id;
    await prisma().renderJob.update({ where: { id: endedLongAgo }, data: { step: 'Cancelled', completedAt: daysAgo(31) } });
    await prisma().renderJob.update({ where: { id: failedLongAgo }, data: { step: 'Failed', completedAt: daysAgo(45) } });
    await prisma().renderJob.update({ where: { id: endedRecently }, data: { step: 'Completed', completedAt: daysAgo(29) } });
    // Each job has its 'Job queued' line from now.
    await prisma().jobLog.createMany({
      data: [
        { renderJobId: running, timestamp: daysAgo(8), level: 'debug', message: 'old debug' },
        { renderJobId: running, timestamp: daysAgo(6), level: 'debug', message: 'recent debug' },
        { renderJobId: running, timestamp: daysAgo(60), level: 'info', message: 'old info of a running job' },
        { renderJobId: running, timestamp: daysAgo(60), level: 'error', message: 'old error of a running job' },
        { renderJobId: endedLongAgo, timestamp: daysAgo(32), level: 'info', message: 'ended info' },
        { renderJobId: endedLongAgo, timestamp: daysAgo(31), level: 'error', message: 'ended error' },
        { renderJobId: failedLongAgo, timestamp: daysAgo(50), level: 'warn', message: 'failed warn' },
        { renderJobId: endedRecently, timestamp: daysAgo(40), level: 'info', message: 'recently ended info' },
        { renderJobId: endedRecently, timestamp: daysAgo(10), level: 'debug', message: 'recently ended old debug' },
        { renderJobId: endedRecently, timestamp: daysAgo(1), level: 'debug', message: 'recently ended new debug' },
      ],
    });
    const othersBefore = await prisma().jobLog.count({ where: { renderJobId: { notIn: [running, endedLongAgo, endedRecently, failedLongAgo] } } });

    const result = await pruneJobLogs(prisma(), now);
    // old debug, recently ended old debug, 3 lines of endedLongAgo, 2 of failedLongAgo.
    expect(result).toEqual({ deleted: 7 });

    const remaining = async (jobId: string) =>
      (await prisma().jobLog.findMany({ where: { renderJobId: jobId }, orderBy: { id: 'asc' } })).map((line) => line.message);
    expect(await remaining(running)).toEqual(['Job queued', 'recent debug', 'old info of a running job', 'old error of a running job']);
    expect(await remaining(endedLongAgo)).toEqual([]);
    expect(await remaining(failedLongAgo)).toEqual([]);
    expect(await remaining(endedRecently)).toEqual(['Job queued', 'recently ended info', 'recently ended new debug']);
    expect(await prisma().jobLog.count({ where: { renderJobId: { notIn: [running, endedLongAgo, endedRecently, failedLongAgo] } } })).toBe(othersBefore);
    // The jobs themselves stay.
    expect(await prisma().renderJob.count({ where: { id: { in: [running, endedLongAgo, endedRecently, failedLongAgo] } } })).toBe(4);

    // A second pass finds nothing.
    expect(await pruneJobLogs(prisma(), now)).toEqual({ deleted: 0 });
  });
});

// ---------------------------------------------------------------------------- state machine

describe('the state machine through the service', () => {
  it('refuses an invalid move with InvalidStateError naming the current step, changing nothing', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const before = await snapshotOf(job.id, user.id);
    const move = jobs().move(job.id, { to: 'Completed', log: info('Done?') });
    await expect(move).rejects.toBeInstanceOf(InvalidStateError);
    await expect(jobs().move(job.id, { to: 'Completed', log: info('Done?') })).rejects.toThrow(
      `Render job ${job.id} is Queued; it cannot become Completed`,
    );
    await expect(jobs().move(job.id, { to: 'Rendering', log: info('Skip ahead') })).rejects.toMatchObject({
      code: 'INVALID_STATE',
      status: 409,
      details: { step: 'Queued', requested_step: 'Rendering' },
    });
    expect(await snapshotOf(job.id, user.id)).toEqual(before);
    await expect(jobs().move(randomUUID(), { to: 'Preparing', log: info('ghost') })).rejects.toBeInstanceOf(NotFoundError);

    // The valid path, and the two fallbacks.
    await jobs().move(job.id, { to: 'Preparing', log: info('p') });
    await jobs().move(job.id, { to: 'Queued', log: info('node lost') });
    await jobs().move(job.id, { to: 'Preparing', log: info('p again') });
    await jobs().move(job.id, { to: 'Rendering', log: info('r') });
    await jobs().move(job.id, { to: 'Encoding', log: info('e') });
    await jobs().move(job.id, { to: 'Rendering', log: info('missing frames') });
    await jobs().move(job.id, { to: 'Encoding', log: info('e again') });
    const done = await jobs().move(job.id, { to: 'Completed', log: info('done') });
    expect(done.step).toBe('Completed');
    expect(done.startedAt).not.toBeNull();
    expect(done.completedAt).not.toBeNull();
    // Terminal: nothing moves it any more, neither cancel nor fail.
    await expect(jobs().move(job.id, { to: 'Rendering', log: info('again') })).rejects.toBeInstanceOf(InvalidStateError);
    await expect(jobs().fail(job.id, 'late')).rejects.toBeInstanceOf(InvalidStateError);
    const cancel = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.details.step).toBe('Completed');
    expect(await refundsOf(job.id)).toEqual([]);
  });

  it('serializes a cancel racing a move: the job ends Cancelled, refunded once', async () => {
    for (let round = 0; round < 4; round++) {
      const user = await funded(1000);
      const job = await submit(user);
      const [cancel, move] = await Promise.allSettled([
        t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token }),
        jobs().move(job.id, { to: 'Preparing', log: info('Preparing') }),
      ]);
      expect(cancel.status).toBe('fulfilled');
      if (cancel.status === 'fulfilled') expect(cancel.value.status).toBe(200);
      if (move.status === 'rejected') {
        // The cancel came first: the move found the job Cancelled.
        expect(move.reason).toBeInstanceOf(InvalidStateError);
        expect((move.reason as InvalidStateError).details.step).toBe('Cancelled');
      }
      const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
      expect(stored.step).toBe('Cancelled');
      expect((await refundsOf(job.id)).map((entry) => entry.amountMinor)).toEqual([50n]);
      expect(await balanceOf(user.id)).toBe(1000);
      const messages = (await prisma().jobLog.findMany({ where: { renderJobId: job.id }, orderBy: { id: 'asc' } })).map((l) => l.message);
      expect(messages).toEqual(
        move.status === 'fulfilled'
          ? ['Job queued', 'Preparing', 'Job cancelled: Cancelled by the user']
          : ['Job queued', 'Job cancelled: Cancelled by the user'],
      );
    }
  });

  it('lets exactly one of a cancel and a failure racing each other end the job, refunding once', async () => {
    for (let round = 0; round < 4; round++) {
      const user = await funded(1000);
      const job = await submit(user);
      const [cancel, fail] = await Promise.allSettled([
        t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token }),
        jobs().fail(job.id, 'node died'),
      ]);
      const cancelled = cancel.status === 'fulfilled' && cancel.value.status === 200;
      const failed = fail.status === 'fulfilled';
      expect([cancelled, failed].filter(Boolean)).toHaveLength(1);
      if (!cancelled) expect(cancel.status === 'fulfilled' && cancel.value.status).toBe(409);
      if (!failed) expect((fail as PromiseRejectedResult).reason).toBeInstanceOf(InvalidStateError);
      const stored = await prisma().renderJob.findUniqueOrThrow({ where: { id: job.id } });
      expect(stored.step).toBe(cancelled ? 'Cancelled' : 'Failed');
      expect(await refundsOf(job.id)).toHaveLength(1);
      expect(await balanceOf(user.id)).toBe(1000);
    }
  });
});

// ----------------------------------------------------------------------------- notifications

describe('tell_me_when_done notifications on Redis', () => {
  const about = (jobId: string) => notifications.filter((message) => message.job_id === jobId);

  it('publishes one render.finished message when a job that asked fails', async () => {
    const user = await funded(1000);
    const job = await submit(user, { tell_me_when_done: true });
    await jobs().fail(job.id, 'boom');
    await vi.waitFor(() => expect(about(job.id)).toHaveLength(1), { timeout: 10_000 });
    expect(about(job.id)[0]).toEqual({ type: 'render.finished', user_id: user.id, job_id: job.id, outcome: 'Failed', message: 'boom' });
    await pause(500);
    expect(about(job.id)).toHaveLength(1);
  });

  it('publishes one message with outcome Completed when a job that asked completes', async () => {
    const user = await funded(1000);
    const job = await submit(user, { tell_me_when_done: true });
    for (const to of ['Preparing', 'Rendering', 'Encoding', 'Completed'] as const) await jobs().move(job.id, { to, log: info(to) });
    await vi.waitFor(() => expect(about(job.id)).toHaveLength(1), { timeout: 10_000 });
    expect(about(job.id)[0]).toEqual({ type: 'render.finished', user_id: user.id, job_id: job.id, outcome: 'Completed', message: null });
    await pause(500);
    expect(about(job.id)).toHaveLength(1);
  });

  it('publishes nothing for a job that did not ask, nor for a cancel', async () => {
    const user = await funded(1000);
    const silent = await submit(user);
    await jobs().fail(silent.id, 'boom');
    const silentDone = await submit(user);
    for (const to of ['Preparing', 'Rendering', 'Encoding', 'Completed'] as const) await jobs().move(silentDone.id, { to, log: info(to) });
    const cancelled = await submit(user, { tell_me_when_done: true });
    expect((await t.rest('POST', `/v1/renders/${cancelled.id}/cancel`, { token: user.token })).status).toBe(200);
    await pause(750);
    expect(about(silent.id)).toEqual([]);
    expect(about(silentDone.id)).toEqual([]);
    expect(about(cancelled.id)).toEqual([]);
  });
});

// ----------------------------------------------------------------------------- subscriptions

describe('subscriptions over a real WebSocket (graphql-ws)', () => {
  it('renderProgress yields the current state first, then one event per change, in order', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const watch = subscribe(WatchRenderProgressDocument, { jobId: job.id }, user.token);
    try {
      const [first] = await watch.waitFor(1);
      expect(first?.errors).toBeUndefined();
      expect(first?.data?.renderProgress).toEqual({
        jobId: job.id,
        step: 'Queued',
        progress: 0,
        currentFrame: 0,
        totalFrames: 300,
        etaSeconds: null,
        activeNodes: 0,
        message: 'Job queued',
      });

      await jobs().move(job.id, { to: 'Preparing', log: info('Preparing the replica') });
      await watch.waitFor(2);
      await jobs().move(job.id, { to: 'Rendering', log: info('Rendering started') });
      await watch.waitFor(3);
      await markRendered(job.id, 60);
      const response = await t.rest('POST', `/v1/renders/${job.id}/cancel`, { token: user.token });
      expect(response.status).toBe(200);
      const events = await watch.waitFor(4);
      expect(events.map((event) => event.errors)).toEqual([undefined, undefined, undefined, undefined]);
      expect(events.map((event) => [event.data?.renderProgress.step, event.data?.renderProgress.progress, event.data?.renderProgress.message])).toEqual([
        ['Queued', 0, 'Job queued'],
        ['Preparing', 0, 'Preparing the replica'],
        ['Rendering', 0, 'Rendering started'],
        ['Cancelled', 20, 'Job cancelled: Cancelled by the user'],
      ]);
      expect(events[3]?.data?.renderProgress).toMatchObject({ currentFrame: 60, etaSeconds: null, totalFrames: 300 });
      await pause(300);
      expect(watch.received).toHaveLength(4);
    } finally {
      await watch.close();
    }
  });

  it('renderProgress shows every change as it was, also when its events queue up behind one another', async () => {
    const user = await funded(1000);
    const job = await submit(user);
    const watch = subscribe(WatchRenderProgressDocument, { jobId: job.id }, user.token);
    try {
      await watch.waitFor(1);
      // Changes that land faster than the subscriber takes their events (a busy replica, a
      // lagging Redis connection, agents reporting in bursts). Made deterministic here by
      // committing the moves first and publishing their events right after, as moveJob's
      // callers do, in the same order.
      const steps = ['Preparing', 'Rendering', 'Encoding', 'Completed'] as const;
      const recorded = [];
      for (const to of steps) {
        recorded.push(
          ...(await prisma().$transaction(async (tx) => {
            await moveJob(tx, job.id, { to, log: info(`now ${to}`) }, new Date());
            return recordJobEvents(tx, [job.id], new Date());
          })),
        );
      }
      await publishJobEvents(t.app.services.bus, recorded);
      const events = await watch.waitFor(5);
      expect(events.map((event) => event.data?.renderProgress.step)).toEqual(['Queued', ...steps]);
    } finally {
      await watch.close();
    }
  });

  it("renderProgress of another user's job ends with a NOT_FOUND error; an admin may watch it", async () => {
    const owner = await funded(1000);
    const stranger = await newUser();
    const job = await submit(owner);
    const watch = subscribe(WatchRenderProgressDocument, { jobId: job.id }, stranger.token);
    try {
      const [event] = await watch.waitFor(1);
      expect(event?.data?.renderProgress ?? null).toBeNull();
      expect(event?.errors?.[0]?.message).toBe(`render job ${job.id} was not found`);
      // The same code as over HTTP, so clients can tell the failures apart.
      expect.soft(event?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      await vi.waitFor(() => expect(watch.completed()).toBe(true));
    } finally {
      await watch.close();
    }
    const byAdmin = subscribe(WatchRenderProgressDocument, { jobId: job.id }, admin);
    try {
      const [event] = await byAdmin.waitFor(1);
      expect(event?.data?.renderProgress.step).toBe('Queued');
    } finally {
      await byAdmin.close();
    }
    const anonymous = subscribe(WatchRenderProgressDocument, { jobId: job.id });
    try {
      const [event] = await anonymous.waitFor(1);
      expect(event?.data?.renderProgress ?? null).toBeNull();
      expect(event?.errors?.[0]?.message).toBe('Authentication is required');
      expect.soft(event?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await anonymous.close();
    }
  });

  it("renderJobUpdated delivers the caller's own job changes and not another user's", async () => {
    const user = await funded(1000);
    const other = await funded(1000);
    const watch = subscribe(WatchRenderJobsDocument, {}, user.token);
    try {
      await channelSubscribed(`render-job-updated:user:${user.id}`);
      const theirs = await submit(other);
      const mine = await submit(user);
      await watch.waitFor(1);
      await jobs().move(theirs.id, { to: 'Preparing', log: info('theirs') });
      await jobs().move(mine.id, { to: 'Preparing', log: info('mine') });
      const events = await watch.waitFor(2);
      expect(events.map((event) => event.data?.renderJobUpdated)).toEqual([
        { id: mine.id, userId: user.id, step: 'Queued' },
        { id: mine.id, userId: user.id, step: 'Preparing' },
      ]);
      await pause(500);
      expect(watch.received).toHaveLength(2);
    } finally {
      await watch.close();
    }
  });

  it("lets an admin watch one user's jobs or everyone's, and refuses that to other users (FORBIDDEN)", async () => {
    const user = await funded(10_000);
    const nosy = await newUser();
    const watch = subscribe(WatchRenderJobsDocument, { userId: user.id }, admin);
    try {
      await channelSubscribed(`render-job-updated:user:${user.id}`);
      const job = await submit(user);
      const [event] = await watch.waitFor(1);
      expect(event?.data?.renderJobUpdated).toEqual({ id: job.id, userId: user.id, step: 'Queued' });
    } finally {
      await watch.close();
    }

    // Without userId an admin watches everyone (other test files share this Redis: look for ours).
    const everyone = subscribe(WatchRenderJobsDocument, {}, admin);
    try {
      const seen = (jobId: string) => everyone.received.some((event) => event.data?.renderJobUpdated?.id === jobId);
      // The channel is shared with other test files, so its subscriber count proves nothing:
      // change jobs until one shows up, then the subscription is live.
      await vi.waitFor(
        async () => {
          const probe = await submit(user);
          await pause(200);
          expect(seen(probe.id)).toBe(true);
        },
        { timeout: 15_000, interval: 50 },
      );
      const job = await submit(user);
      await vi.waitFor(() => expect(seen(job.id)).toBe(true), { timeout: 15_000 });
      expect(everyone.received.find((event) => event.data?.renderJobUpdated?.id === job.id)?.data?.renderJobUpdated).toEqual({
        id: job.id,
        userId: user.id,
        step: 'Queued',
      });
    } finally {
      await everyone.close();
    }

    const refused = subscribe(WatchRenderJobsDocument, { userId: user.id }, nosy.token);
    try {
      const [event] = await refused.waitFor(1);
      expect(event?.data?.renderJobUpdated ?? null).toBeNull();
      expect(event?.errors?.[0]?.message).toBe('Only administrators may do this');
      expect.soft(event?.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    } finally {
      await refused.close();
    }

    // Naming oneself is fine.
    const solo = await funded(1000);
    const self = subscribe(WatchRenderJobsDocument, { userId: solo.id }, solo.token);
    try {
      await channelSubscribed(`render-job-updated:user:${solo.id}`);
      const job = await submit(solo);
      const [event] = await self.waitFor(1);
      expect(event?.data?.renderJobUpdated.id).toBe(job.id);
    } finally {
      await self.close();
    }
  });
});

describe('errors over the WebSocket', () => {
  it('masks an internal failure as over HTTP instead of sending its message', async () => {
    const user = await funded(1000);
    const watch = subscribe(WatchRenderJobsDocument, {}, user.token);
    try {
      await channelSubscribed(`render-job-updated:user:${user.id}`);
      // An event about a job the database no longer has (deleted between change and delivery).
      await t.app.services.bus.publish(topics.renderJobUpdated(user.id), { jobId: randomUUID(), userId: user.id, step: 'Queued', seq: 1 });
      const [event] = await watch.waitFor(1);
      expect(event?.errors).toHaveLength(1);
      expect.soft(event?.errors?.[0]?.message).toBe('Internal server error');
      expect.soft(event?.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    } finally {
      await watch.close();
    }
  });
});

// ---------------------------------------------------------------------------- discount codes

describe('discount codes (admin GraphQL)', () => {
  const newCode = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

  it('creates percentage and amount codes that submissions redeem', async () => {
    const percent = newCode('PCT');
    const created = await t.gql(CreateDiscountCodeDocument, { input: { code: percent, percentOff: 25, maxUses: 3 } }, admin);
    expect(created.errors).toBeUndefined();
    expect(created.data?.createDiscountCode).toMatchObject({
      __typename: 'DiscountCode',
      code: percent,
      percentOff: 25,
      amountOffMinor: null,
      expiresAt: null,
      maxUses: 3,
      usedCount: 0,
      active: true,
    });
    const amount = newCode('AMT');
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const byAmount = await t.gql(CreateDiscountCodeDocument, { input: { code: amount, amountOffMinor: 30, expiresAt } }, admin);
    expect(byAmount.data?.createDiscountCode).toMatchObject({ __typename: 'DiscountCode', percentOff: null, expiresAt });
    if (byAmount.data?.createDiscountCode.__typename === 'DiscountCode') {
      expect(Number(byAmount.data.createDiscountCode.amountOffMinor)).toBe(30);
    }

    const user = await funded(1000);
    // 5 x 40 = 200: 25% off = 150; 30 off = 170.
    expect((await submit(user, { duration_sec: 40, discount_code: percent })).paid_price_minor).toBe(150);
    expect((await submit(user, { duration_sec: 40, discount_code: amount })).paid_price_minor).toBe(170);
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code: percent } })).usedCount).toBe(1);

    const list = await t.gql(DiscountCodesDocument, {}, admin);
    expect(list.data?.discountCodes.map((code) => code.code)).toEqual(expect.arrayContaining([percent, amount]));
  });

  it('refuses both or neither of percentOff and amountOffMinor, and bad values, creating nothing', async () => {
    const before = await prisma().discountCode.count();
    const both = await t.gql(CreateDiscountCodeDocument, { input: { code: newCode('BOTH'), percentOff: 10, amountOffMinor: 10 } }, admin);
    expect(both.data?.createDiscountCode).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    if (both.data?.createDiscountCode.__typename === 'ValidationError') {
      expect(both.data.createDiscountCode.problems.map((problem) => problem.path)).toEqual(['percentOff']);
    }
    const neither = await t.gql(CreateDiscountCodeDocument, { input: { code: newCode('NONE') } }, admin);
    expect(neither.data?.createDiscountCode.__typename).toBe('ValidationError');
    const tooMuch = await t.gql(CreateDiscountCodeDocument, { input: { code: newCode('BIG'), percentOff: 101 } }, admin);
    expect(tooMuch.data?.createDiscountCode.__typename).toBe('ValidationError');
    const badCode = await t.gql(CreateDiscountCodeDocument, { input: { code: 'no spaces allowed', percentOff: 10 } }, admin);
    expect(badCode.data?.createDiscountCode.__typename).toBe('ValidationError');
    expect(await prisma().discountCode.count()).toBe(before);
  });

  it('answers ConflictError for a duplicate code', async () => {
    const code = newCode('DUP');
    expect((await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 10 } }, admin)).data?.createDiscountCode.__typename).toBe(
      'DiscountCode',
    );
    const again = await t.gql(CreateDiscountCodeDocument, { input: { code, amountOffMinor: 5 } }, admin);
    expect(again.errors).toBeUndefined();
    expect(again.data?.createDiscountCode).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
    const stored = await prisma().discountCode.findUniqueOrThrow({ where: { code } });
    expect(stored).toMatchObject({ percentOff: 10, amountOffMinor: null });
  });

  it('deactivates a code, which submissions then refuse', async () => {
    const code = newCode('STOP');
    await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 10 } }, admin);
    const result = await t.gql(DeactivateDiscountCodeDocument, { code }, admin);
    expect(result.data?.deactivateDiscountCode).toEqual({ __typename: 'DiscountCode', code, active: false });
    const user = await funded(1000);
    const response = await t.rest('POST', '/v1/renders', { token: user.token, body: jobBody({ discount_code: code }) });
    expect(response.status).toBe(400);
    expect(problemPaths(response.body)).toEqual(['discount_code']);
    expect(await balanceOf(user.id)).toBe(1000);
    const unknown = await t.gql(DeactivateDiscountCodeDocument, { code: newCode('GHOST') }, admin);
    expect(unknown.data?.deactivateDiscountCode).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });

  it('refuses non-admins with FORBIDDEN and anonymous callers with UNAUTHENTICATED', async () => {
    const user = await newUser();
    const code = newCode('MINE');
    const create = await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 90 } }, user.token);
    expect(create.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await prisma().discountCode.findUnique({ where: { code } })).toBeNull();
    const existing = newCode('KEEP');
    await t.gql(CreateDiscountCodeDocument, { input: { code: existing, percentOff: 10 } }, admin);
    const deactivate = await t.gql(DeactivateDiscountCodeDocument, { code: existing }, user.token);
    expect(deactivate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await prisma().discountCode.findUniqueOrThrow({ where: { code: existing } })).active).toBe(true);
    const list = await t.gql(DiscountCodesDocument, {}, user.token);
    expect(list.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const service = await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 90 } }, TEST_SERVICE_TOKEN);
    expect(service.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await t.gql(CreateDiscountCodeDocument, { input: { code, percentOff: 90 } });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await prisma().discountCode.findUnique({ where: { code } })).toBeNull();
  });
});

// ------------------------------------------------------------------------------------- N + 1

describe('SQL statements per listing', () => {
  beforeAll(async () => {
    const user = await funded(10_000);
    const actor: Actor = { kind: 'user', userId: user.id, isAdmin: false, plan: null, isReseller: false };
    const node = await registerNode('n-plus-one');
    for (let index = 0; index < 50; index++) {
      // 60 s jobs: several chunks each.
      const job = await jobs().submit(actor, { savedProjectId: randomUUID(), quality: 'Low', resolution: 'HD', durationSec: 60, name: `Listed ${index}` });
      if (index % 2 === 0) {
        const [chunk] = await prisma().frameJob.findMany({ where: { renderJobId: job.id }, orderBy: { orderValue: 'asc' }, take: 1 });
        await prisma().frameJob.update({ where: { id: chunk!.id }, data: { nodeId: node.id, status: 'Assigned' } });
      }
    }
  }, 120_000);

  async function statementsFor(request: () => Promise<unknown>): Promise<number> {
    let count = 0;
    const off = t.app.services.db.onQuery(() => count++);
    try {
      await request();
    } finally {
      off();
    }
    return count;
  }

  it('lists jobs with their chunks and nodes through GraphQL in the same number of statements for 5, 20 and 50', async () => {
    const counts: Record<number, number> = {};
    for (const first of [5, 20, 50]) {
      let answer: any;
      counts[first] = await statementsFor(async () => {
        answer = await t.gql(RenderJobsWithChunksDocument, { first }, admin);
      });
      expect(answer?.errors).toBeUndefined();
      const edges = answer?.data.renderJobs.edges as Array<{ node: { id: string; frameJobs: Array<{ id: string; node: { id: string } | null }> } }>;
      expect(edges).toHaveLength(first);
      expect(edges.every((edge) => edge.node.frameJobs.length > 0)).toBe(true);
      if (first === 50) {
        const withNode = edges.filter((edge) => edge.node.frameJobs.some((chunk) => chunk.node !== null));
        expect(withNode.length).toBeGreaterThanOrEqual(25);
      }
    }
    expect(counts[5]).toBeGreaterThan(0);
    expect(counts, JSON.stringify(counts)).toEqual({ 5: counts[5], 20: counts[5], 50: counts[5] });
  });

  it('lists jobs over REST in the same number of statements for page_size 5 and 50', async () => {
    const counts: number[] = [];
    for (const size of [5, 50]) {
      let answer: any;
      counts.push(
        await statementsFor(async () => {
          answer = await t.rest('GET', `/v1/renders?page_size=${size}`, { token: admin });
        }),
      );
      expect(answer.status).toBe(200);
      expect(answer.body.data).toHaveLength(size);
    }
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBe(counts[0]);
  });
});
