// Calling services (notifications, billing, support tools) send a service token, which the
// contract's ServiceToken scheme lets read any user's renders, exports and snapshots, through REST
// and GraphQL alike. They read only: every change stays the users', and a token that is not one
// of SERVICE_TOKENS is not a service's.
import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelRenderJobDocument,
  DeleteExportDocument,
  ExportDocument,
  ExportDownloadUrlDocument,
  ExportsDocument,
  RenderJobDocument,
  RenderJobLogsDocument,
  RenderJobsDocument,
  RenderJobsWithChunksDocument,
  RenderProgressNowDocument,
  RetryRenderJobDocument,
  SnapshotDocument,
} from '../generated/graphql.ts';
import { changedTables, databaseDigest } from '../hardening/authz-matrix.ts';
import { startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestUser } from '../support/app.ts';
import { createStoredExport } from '../support/exports.ts';
import { submitRender } from '../support/jobs.ts';
import { createSnapshotRows } from '../support/snapshots.ts';

let t: TestApp;
let owner: TestUser;
let other: TestUser;
let admin: string;
/** The owner's: a Queued job, a Cancelled one, an export and a snapshot. */
let jobId: string;
let cancelledJobId: string;
let exportId: string;
let snapshotId: string;
/** Another user's job and export, which lists show a service beside the owner's. */
let otherJobId: string;
let otherExportId: string;

const ids = (connection: { edges: { node: { id: string } }[] } | undefined) => connection?.edges.map((edge) => edge.node.id) ?? [];

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  [owner, other] = await Promise.all([t.user(1_000_000), t.user(1_000_000)]);
  admin = await t.token(randomUUID(), { admin: true });
  jobId = (await submitRender(t, owner.token)).id;
  cancelledJobId = (await submitRender(t, owner.token)).id;
  expect((await t.rest('POST', `/v1/renders/${cancelledJobId}/cancel`, { token: owner.token })).status).toBe(200);
  otherJobId = (await submitRender(t, other.token)).id;
  [{ id: exportId }, { id: otherExportId }] = await Promise.all([createStoredExport(t, owner.id), createStoredExport(t, other.id)]);
  snapshotId = (await createSnapshotRows(t, owner.id, 1))[0]!;
});
afterAll(() => t?.close());

describe('a service token', () => {
  it("reads another user's job, its progress and its log", async () => {
    const job = await t.rest('GET', `/v1/renders/${jobId}`, { token: TEST_SERVICE_TOKEN });
    expect(job.status, JSON.stringify(job.body)).toBe(200);
    expect(job.body).toMatchObject({ id: jobId, step: 'Queued' });
    expect(job.body.frame_jobs.length).toBeGreaterThan(0);
    const progress = await t.rest('GET', `/v1/renders/${jobId}/progress`, { token: TEST_SERVICE_TOKEN });
    expect(progress.status).toBe(200);
    expect(progress.body).toMatchObject({ job_id: jobId, step: 'Queued' });
    const logs = await t.rest('GET', `/v1/renders/${jobId}/logs`, { token: TEST_SERVICE_TOKEN });
    expect(logs.status).toBe(200);
    expect(logs.body.logs.map((line: { message: string }) => line.message)).toContain('Job queued');

    expect((await t.gql(RenderJobDocument, { id: jobId }, TEST_SERVICE_TOKEN)).data?.renderJob).toMatchObject({ id: jobId, userId: owner.id });
    expect((await t.gql(RenderProgressNowDocument, { jobId }, TEST_SERVICE_TOKEN)).data?.renderProgress).toMatchObject({ jobId, step: 'Queued' });
    const lines = (await t.gql(RenderJobLogsDocument, { jobId }, TEST_SERVICE_TOKEN)).data?.renderJobLogs ?? [];
    expect(lines.map((line) => line.message)).toContain('Job queued');
  });

  it("reads another user's export, its download URL and a snapshot", async () => {
    const exported = await t.rest('GET', `/v1/exports/${exportId}`, { token: TEST_SERVICE_TOKEN });
    expect(exported.status, JSON.stringify(exported.body)).toBe(200);
    expect(exported.body.id).toBe(exportId);
    const link = await t.rest('GET', `/v1/exports/${exportId}/download-url`, { token: TEST_SERVICE_TOKEN });
    expect(link.status).toBe(200);
    expect(link.body.url).toEqual(expect.any(String));
    const snapshot = await t.rest('GET', `/v1/snapshots/${snapshotId}`, { token: TEST_SERVICE_TOKEN });
    expect(snapshot.status, JSON.stringify(snapshot.body)).toBe(200);
    expect(snapshot.body).toMatchObject({ id: snapshotId, status: 'Pending' });

    expect((await t.gql(ExportDocument, { id: exportId }, TEST_SERVICE_TOKEN)).data?.export).toMatchObject({ id: exportId, userId: owner.id });
    expect((await t.gql(ExportDownloadUrlDocument, { id: exportId }, TEST_SERVICE_TOKEN)).data?.exportDownloadUrl.url).toEqual(expect.any(String));
    expect((await t.gql(SnapshotDocument, { id: snapshotId }, TEST_SERVICE_TOKEN)).data?.snapshot).toMatchObject({ id: snapshotId, userId: owner.id });
  });

  it("lists every user's jobs and exports, and one user's through the User entity", async () => {
    const jobs = await t.rest('GET', '/v1/renders?page_size=100', { token: TEST_SERVICE_TOKEN });
    expect(jobs.status).toBe(200);
    expect(jobs.body.data.map((job: { id: string }) => job.id)).toEqual(expect.arrayContaining([jobId, cancelledJobId, otherJobId]));
    const cancelled = await t.rest('GET', '/v1/renders?status=Cancelled', { token: TEST_SERVICE_TOKEN });
    expect(cancelled.body.data.map((job: { id: string }) => job.id)).toEqual([cancelledJobId]);
    const exports = await t.rest('GET', '/v1/exports', { token: TEST_SERVICE_TOKEN });
    expect(exports.status).toBe(200);
    expect(exports.body.data.map((exported: { id: string }) => exported.id)).toEqual(expect.arrayContaining([exportId, otherExportId]));

    expect(ids((await t.gql(RenderJobsDocument, { first: 100 }, TEST_SERVICE_TOKEN)).data?.renderJobs)).toEqual(expect.arrayContaining([jobId, otherJobId]));
    expect(ids((await t.gql(ExportsDocument, { first: 100 }, TEST_SERVICE_TOKEN)).data?.exports)).toEqual(expect.arrayContaining([exportId, otherExportId]));
    const user = await t.gql(
      parse('query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { renderJobs { edges { node { id } } } exports { edges { node { id } } } } } }'),
      { representations: [{ __typename: 'User', id: owner.id }] },
      TEST_SERVICE_TOKEN,
    );
    expect(user.errors).toBeUndefined();
    const [entity] = (user.data as { _entities: any[] })._entities;
    expect(ids(entity.renderJobs).sort()).toEqual([jobId, cancelledJobId].sort());
    expect(ids(entity.exports)).toEqual([exportId]);
  });

  it("sees which chunk a node holds, but not the node, which is an admin's to see", async () => {
    const node = await t.node();
    await t.app.services.db.prisma.frameJob.updateMany({ where: { renderJobId: jobId }, data: { nodeId: node.id } });
    const chunksOf = async (token: string) => {
      const jobs = (await t.gql(RenderJobsWithChunksDocument, { first: 100 }, token)).data?.renderJobs.edges ?? [];
      return jobs.find((edge) => edge.node.id === jobId)?.node.frameJobs ?? [];
    };
    expect((await chunksOf(admin)).map((chunk) => chunk.node?.id)).toContain(node.id);
    const seen = await chunksOf(TEST_SERVICE_TOKEN);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.map((chunk) => chunk.node)).toEqual(seen.map(() => null));
  });

  it('cancels, retries and deletes nothing of what it reads, and the refusals change nothing', async () => {
    expect((await t.rest('GET', `/v1/renders/${jobId}`, { token: TEST_SERVICE_TOKEN })).status).toBe(200);
    expect((await t.rest('GET', `/v1/renders/${cancelledJobId}`, { token: TEST_SERVICE_TOKEN })).status).toBe(200);
    expect((await t.rest('GET', `/v1/exports/${exportId}`, { token: TEST_SERVICE_TOKEN })).status).toBe(200);
    const before = await databaseDigest(t);
    const refusals = [
      await t.rest('POST', `/v1/renders/${jobId}/cancel`, { token: TEST_SERVICE_TOKEN, body: {} }),
      await t.rest('POST', `/v1/renders/${cancelledJobId}/retry`, { token: TEST_SERVICE_TOKEN }),
      await t.rest('DELETE', `/v1/exports/${exportId}`, { token: TEST_SERVICE_TOKEN }),
      await t.rest('POST', `/v1/exports/${exportId}/extend`, { token: TEST_SERVICE_TOKEN, body: { days: 1 } }),
    ];
    expect(refusals.map((answer) => [answer.status, answer.body.error?.code])).toEqual(refusals.map(() => [403, 'FORBIDDEN']));

    const cancel = await t.gql(CancelRenderJobDocument, { id: jobId }, TEST_SERVICE_TOKEN);
    expect(cancel.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const retry = await t.gql(RetryRenderJobDocument, { id: cancelledJobId }, TEST_SERVICE_TOKEN);
    expect(retry.data?.retryRenderJob).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    const deleted = await t.gql(DeleteExportDocument, { id: exportId }, TEST_SERVICE_TOKEN);
    expect(deleted.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(changedTables(before, await databaseDigest(t))).toEqual([]);
  });

  it('is only one of SERVICE_TOKENS: another token where it reads is 401', async () => {
    for (const token of [TEST_SERVICE_TOKEN, `${TEST_SERVICE_TOKEN}x`, TEST_SERVICE_TOKEN.toUpperCase()]) {
      const expected = token === TEST_SERVICE_TOKEN ? 200 : 401;
      const job = await t.rest('GET', `/v1/renders/${jobId}`, { token });
      expect(job.status, token).toBe(expected);
      const list = await t.gql(RenderJobsDocument, { first: 1 }, token);
      expect(list.status, token).toBe(expected);
      if (expected === 401) {
        expect(job.body.error.code).toBe('UNAUTHENTICATED');
        expect(list.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      }
    }
  });
});
