// Listing render jobs (REST pages newest first with page meta, the GraphQL connection, filters
// by status, each user's own jobs and everyone's for admins and services) and reading one (the
// RenderJobDetail shape, another user's job as not found).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RenderJobDocument,
  RenderJobsDocument,
  type RenderJobsQuery,
  type RenderJobsQueryVariables,
} from '../generated/graphql.ts';
import { problemPaths, startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestUser } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';

let t: TestApp;
let admin: string;
const prisma = () => t.app.services.db.prisma;

beforeAll(async () => {
  t = await startTestApp();
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t?.close());

describe('listing render jobs', () => {
  let owner: TestUser;
  let other: TestUser;
  let ownerJobs: string[];
  let otherJob: string;
  let cancelledJob: string;

  beforeAll(async () => {
    owner = await t.user(10_000);
    other = await t.user(10_000);
    ownerJobs = [];
    for (let index = 0; index < 5; index++) {
      ownerJobs.push((await submitRender(t, owner.token, { name: `Listed ${index}` })).id);
    }
    otherJob = (await submitRender(t, other.token, { name: 'Not yours' })).id;
    // A job that left the queue, to check that filters filter.
    cancelledJob = ownerJobs[1]!;
    expect((await t.rest('POST', `/v1/renders/${cancelledJob}/cancel`, { token: owner.token })).status).toBe(200);
  });

  it('pages REST results newest first with page meta', async () => {
    const newestFirst = [...ownerJobs].reverse();
    const first = await t.rest('GET', '/v1/renders?page=1&page_size=2', { token: owner.token });
    expect(first.status).toBe(200);
    expect(first.body.meta).toEqual({ page: 1, page_size: 2, total: 5, has_more: true });
    expect(first.body.data.map((job: { id: string }) => job.id)).toEqual(newestFirst.slice(0, 2));
    expect(first.body.data[0]).toMatchObject({ name: 'Listed 4', step: 'Queued', price_type: 'Cash', paid_price_minor: 50, export_id: null });
    const last = await t.rest('GET', '/v1/renders?page=3&page_size=2', { token: owner.token });
    expect(last.body.meta).toEqual({ page: 3, page_size: 2, total: 5, has_more: false });
    expect(last.body.data.map((job: { id: string }) => job.id)).toEqual(newestFirst.slice(4));
    const beyond = await t.rest('GET', '/v1/renders?page=4&page_size=2', { token: owner.token });
    expect(beyond.status).toBe(200);
    expect(beyond.body).toEqual({ data: [], meta: { page: 4, page_size: 2, total: 5, has_more: false } });
    const defaults = await t.rest('GET', '/v1/renders', { token: owner.token });
    expect(defaults.body.meta).toEqual({ page: 1, page_size: 20, total: 5, has_more: false });
    expect(defaults.body.data.map((job: { id: string }) => job.id)).toEqual(newestFirst);
    const times = defaults.body.data.map((job: { queued_at: string }) => Date.parse(job.queued_at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('filters by status', async () => {
    const queued = await t.rest('GET', '/v1/renders?status=Queued', { token: owner.token });
    expect(queued.status).toBe(200);
    expect(queued.body.meta.total).toBe(4);
    expect(queued.body.data.map((job: { id: string }) => job.id)).not.toContain(cancelledJob);
    const cancelled = await t.rest('GET', '/v1/renders?status=Cancelled', { token: owner.token });
    expect(cancelled.body.data.map((job: { id: string }) => job.id)).toEqual([cancelledJob]);
    expect(cancelled.body.data[0].step).toBe('Cancelled');
    const completed = await t.rest('GET', '/v1/renders?status=Completed', { token: owner.token });
    expect(completed.status).toBe(200);
    expect(completed.body).toEqual({ data: [], meta: { page: 1, page_size: 20, total: 0, has_more: false } });
  });

  it('answers 400 for a bad status, page or page_size', async () => {
    const status = await t.rest('GET', '/v1/renders?status=Sleeping', { token: owner.token });
    expect(status.status).toBe(400);
    expect(problemPaths(status.body)).toEqual(['status']);
    const big = await t.rest('GET', '/v1/renders?page_size=101', { token: owner.token });
    expect(big.status).toBe(400);
    expect(problemPaths(big.body)).toEqual(['page_size']);
    const zero = await t.rest('GET', '/v1/renders?page=0', { token: owner.token });
    expect(zero.status).toBe(400);
    expect(problemPaths(zero.body)).toEqual(['page']);
    const word = await t.rest('GET', '/v1/renders?page=two', { token: owner.token });
    expect(word.status).toBe(400);
    expect(problemPaths(word.body)).toEqual(['page']);
    const empty = await t.rest('GET', '/v1/renders?page_size=0', { token: owner.token });
    expect(empty.status).toBe(400);
  });

  it("shows users their own jobs only, admins and services everyone's", async () => {
    const mine = await t.rest('GET', '/v1/renders?page_size=100', { token: other.token });
    expect(mine.body.data.map((job: { id: string }) => job.id)).toEqual([otherJob]);
    const all = await t.rest('GET', '/v1/renders?page_size=100', { token: admin });
    expect(all.status).toBe(200);
    const ids = all.body.data.map((job: { id: string }) => job.id);
    expect(ids).toEqual(expect.arrayContaining([...ownerJobs, otherJob]));
    expect(all.body.meta.total).toBe(await prisma().renderJob.count());
    const service = await t.rest('GET', '/v1/renders?page_size=100', { token: TEST_SERVICE_TOKEN });
    expect(service.status).toBe(200);
    expect(service.body.data).toEqual(all.body.data);
    expect(service.body.meta).toEqual(all.body.meta);
  });

  it('refuses anonymous callers with 401', async () => {
    const anonymous = await t.rest('GET', '/v1/renders');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const gql = await t.gql(RenderJobsDocument, {});
    expect(gql.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('walks the GraphQL connection page by page without duplicates', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let pageCount = 0; pageCount < 10; pageCount++) {
      const variables: RenderJobsQueryVariables = { first: 2, after };
      const result = await t.gql(RenderJobsDocument, variables, owner.token);
      expect(result.errors).toBeUndefined();
      const connection: RenderJobsQuery['renderJobs'] = result.data!.renderJobs;
      expect(connection.edges.length).toBeLessThanOrEqual(2);
      seen.push(...connection.edges.map((edge) => edge.node.id));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
      expect(after).not.toBeNull();
    }
    expect(seen).toEqual([...ownerJobs].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('filters the GraphQL connection by status and shows only own jobs', async () => {
    const queued = await t.gql(RenderJobsDocument, { status: 'Queued', first: 100 }, owner.token);
    const queuedIds = queued.data!.renderJobs.edges.map((edge) => edge.node.id);
    expect(queuedIds).toEqual([...ownerJobs].reverse().filter((id) => id !== cancelledJob));
    const cancelled = await t.gql(RenderJobsDocument, { status: 'Cancelled' }, owner.token);
    expect(cancelled.data!.renderJobs.edges.map((edge) => edge.node)).toEqual([
      { id: cancelledJob, step: 'Cancelled', name: 'Listed 1', priceType: 'Cash', paidPriceMinor: expect.anything() },
    ]);
    const none = await t.gql(RenderJobsDocument, { status: 'Rendering' }, owner.token);
    expect(none.data!.renderJobs.edges).toEqual([]);
    const theirs = await t.gql(RenderJobsDocument, {}, other.token);
    expect(theirs.data!.renderJobs.edges.map((edge) => edge.node.id)).toEqual([otherJob]);
    const everyone = await t.gql(RenderJobsDocument, { first: 100 }, admin);
    expect(everyone.data!.renderJobs.edges.map((edge) => edge.node.id)).toEqual(expect.arrayContaining([...ownerJobs, otherJob]));
  });
});

describe('reading one render job', () => {
  let owner: TestUser;
  let stranger: TestUser;
  let jobId: string;

  beforeAll(async () => {
    owner = await t.user(1000);
    stranger = await t.user(1000);
    jobId = (await submitRender(t, owner.token, { name: 'Detail', duration_sec: 8, frame_rate: 24 })).id;
  });

  it('answers the RenderJobDetail shape over REST', async () => {
    const response = await t.rest('GET', `/v1/renders/${jobId}`, { token: owner.token });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      id: jobId,
      name: 'Detail',
      step: 'Queued',
      frame_rate: 24,
      duration_sec: 8,
      paid_price_minor: 50,
      export_id: null,
      retry_count: 0,
      repair_attempts: 0,
      export: null,
    });
    // 192 frames and no node online: two chunks, covering every frame once, waiting for nodes.
    expect(response.body.frame_jobs).toEqual([
      { id: expect.any(String), start_frame: 0, end_frame: 95, order_value: 0, status: 'Pending', frames_rendered: 0, frames_validated: 0, attempt: 0, last_error: null },
      { id: expect.any(String), start_frame: 96, end_frame: 191, order_value: 1, status: 'Pending', frames_rendered: 0, frames_validated: 0, attempt: 0, last_error: null },
    ]);
    const frames = await t.app.services.db.prisma.frame.findMany({ where: { renderJobId: jobId }, orderBy: { frameNumber: 'asc' } });
    expect(frames.map((frame) => frame.frameNumber)).toEqual(Array.from({ length: 192 }, (_, n) => n));
    expect(frames.every((frame) => !frame.rendered && !frame.validated)).toBe(true);
    expect(frames[96]?.frameJobId).toBe(response.body.frame_jobs[1].id);
  });

  it('answers the job over GraphQL', async () => {
    const result = await t.gql(RenderJobDocument, { id: jobId }, owner.token);
    expect(result.errors).toBeUndefined();
    expect(result.data?.renderJob).toMatchObject({
      id: jobId,
      userId: owner.id,
      name: 'Detail',
      step: 'Queued',
      frameRate: 24,
      durationSec: 8,
      totalFrames: 192,
      priceType: 'Cash',
      priorityQueue: 'Priority',
    });
    expect(result.data?.renderJob.frameJobs.map((chunk) => [chunk.startFrame, chunk.endFrame])).toEqual([
      [0, 95],
      [96, 191],
    ]);
    expect(Number(result.data?.renderJob.paidPriceMinor)).toBe(50);
  });

  it("hides another user's job as 404 (REST) and NOT_FOUND (GraphQL), and shows it to admins", async () => {
    const rest = await t.rest('GET', `/v1/renders/${jobId}`, { token: stranger.token });
    expect(rest.status).toBe(404);
    expect(rest.body.error.code).toBe('NOT_FOUND');
    const gql = await t.gql(RenderJobDocument, { id: jobId }, stranger.token);
    expect(gql.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(gql.data?.renderJob ?? null).toBeNull();
    const adminRest = await t.rest('GET', `/v1/renders/${jobId}`, { token: admin });
    expect(adminRest.status).toBe(200);
    expect(adminRest.body.id).toBe(jobId);
    const adminGql = await t.gql(RenderJobDocument, { id: jobId }, admin);
    expect(adminGql.data?.renderJob.userId).toBe(owner.id);
  });

  it('answers 400 for a non-uuid id, 404 for an unknown one, 401 without credentials', async () => {
    const notUuid = await t.rest('GET', '/v1/renders/not-a-uuid', { token: owner.token });
    expect(notUuid.status).toBe(400);
    expect(notUuid.body.error.code).toBe('VALIDATION_FAILED');
    const unknown = await t.rest('GET', `/v1/renders/${randomUUID()}`, { token: owner.token });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
    const gqlUnknown = await t.gql(RenderJobDocument, { id: randomUUID() }, owner.token);
    expect(gqlUnknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await t.rest('GET', `/v1/renders/${jobId}`)).status).toBe(401);
  });
});
