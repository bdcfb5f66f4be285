// The RenderProgress answer over REST and GraphQL at each step of a job: its shape, the percent
// and frames done, the nodes at work, an ETA from the recent frame rate, 99 until encoded, and
// who may ask. The rendering state is set up directly (see test/support/rows.ts); the progress of
// a render driven through the agent protocol is test/jobs/progress.test.ts.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RenderProgressNowDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { info, submitRender } from '../support/jobs.ts';
import { backdateRendering, holdChunks, markRendered } from '../support/rows.ts';

let t: TestApp;
let admin: string;
const prisma = () => t.app.services.db.prisma;
const jobs = () => t.app.services.jobs;

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  admin = await t.token(randomUUID(), { admin: true });
});
afterAll(() => t?.close());

describe('the progress answer', () => {
  const REST_KEYS = ['job_id', 'step', 'progress', 'current_frame', 'total_frames', 'eta_seconds', 'preview_b64', 'active_nodes', 'message'];

  it('answers the RenderProgress shape over REST and GraphQL, before and while rendering', async () => {
    const owner = await t.user(1000);
    const stranger = await t.user(1000);
    // 60 s at 30 fps: 1800 frames, chunks of 300.
    const job = await submitRender(t, owner.token, { duration_sec: 60 });

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
    const [a, b, c] = await Promise.all([t.node('progress-a'), t.node('progress-b'), t.node('progress-c')]);
    const chunks = await prisma().frameJob.findMany({ where: { renderJobId: job.id }, orderBy: { orderValue: 'asc' } });
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    await holdChunks(t, [
      { chunkId: chunks[0]!.id, nodeId: a.id, status: 'Assigned' },
      { chunkId: chunks[1]!.id, nodeId: a.id, status: 'Rendering' },
      { chunkId: chunks[2]!.id, nodeId: b.id, status: 'Rendering' },
      { chunkId: chunks[3]!.id, nodeId: c.id, status: 'Completed' },
    ]);
    await markRendered(t, job.id, 360);
    // The chunks went out a minute ago and the frames completed within it; the job queued long before.
    await backdateRendering(t, job.id, {
      chunksAssignedAt: new Date(Date.now() - 60_000),
      framesCompletedAt: new Date(Date.now() - 30_000),
      startedAt: new Date(Date.now() - 3_600_000),
      previewB64: 'cHJldmlldw==',
    });

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
    await markRendered(t, job.id, 1800);
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
