// A render job's log: every line oldest first through both doors, the level filter as a
// minimum, a line on every transition, who may read it, and the retention that prunes old lines.
// Agents have no route that writes a line, so the nodes' lines are written directly (see
// test/support/rows.ts).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneJobLogs } from '../../src/domain/jobs/log-retention.ts';
import { RenderJobLogsDocument } from '../generated/graphql.ts';
import { problemPaths, startTestApp, type TestApp, type TestUser } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { endedAt, logLines } from '../support/rows.ts';

let t: TestApp;
let admin: string;
const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t?.close());

describe('logs', () => {
  let owner: TestUser;
  let stranger: TestUser;
  let jobId: string;
  let nodeId: string;

  beforeAll(async () => {
    owner = await t.user(1000);
    stranger = await t.user(1000);
    jobId = (await submitRender(t, owner.token)).id;
    nodeId = (await t.node('logger')).id;
    const queuedAt = (await prisma().renderJob.findUniqueOrThrow({ where: { id: jobId } })).queuedAt;
    const at = (seconds: number) => new Date(queuedAt.getTime() + seconds * 1000);
    await logLines(t, [
      { renderJobId: jobId, timestamp: at(1), level: 'debug', message: 'Opening project', nodeId },
      { renderJobId: jobId, timestamp: at(2), level: 'warn', message: 'Missing font, substituted', nodeId, meta: { font: 'Comic' } },
      { renderJobId: jobId, timestamp: at(3), level: 'info', message: 'Chunk 0 done', nodeId },
      { renderJobId: jobId, timestamp: at(4), level: 'error', message: 'After Effects crashed', nodeId, meta: { exit_code: 3 } },
    ]);
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
    const job = await submitRender(t, owner.token);
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
    const user = await t.user(1000);
    const now = new Date();
    const daysAgo = (days: number) => new Date(now.getTime() - days * 24 * 60 * 60 * 1000);
    const running = (await submitRender(t, user.token)).id;
    const endedLongAgo = (await submitRender(t, user.token)).id;
    const endedRecently = (await submitRender(t, user.token)).id;
    const failedLongAgo = (await submitRender(t, user.token)).id;
    await endedAt(t, endedLongAgo, 'Cancelled', daysAgo(31));
    await endedAt(t, failedLongAgo, 'Failed', daysAgo(45));
    await endedAt(t, endedRecently, 'Completed', daysAgo(29));
    // Each job has its 'Job queued' line from now.
    await logLines(t, [
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
    ]);
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
