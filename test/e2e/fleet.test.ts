// Renders on a simulated fleet: the real service with its loops running, agents over real HTTP
// with real signatures, a subscriber over a real WebSocket.
import { randomUUID } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Fleet, startFleet } from '../../agent-sim/fleet.ts';
import { placeholderOutput } from '../../agent-sim/placeholders.ts';
import { SubmitRenderJobDocument } from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until, waitFor } from '../support/poll.ts';

let t: TestApp;
let admin: string;
let user: { id: string; token: string };
const fleets: Fleet[] = [];

// Generous: CI shares two cores with the fleet, the service and PostgreSQL.
const GENEROUS = { timeoutMs: 150_000, intervalMs: 200 };
const SOON = { timeoutMs: 10_000, intervalMs: 200 };

const stepOf = async (jobId: string) => (await t.rest('GET', `/v1/renders/${jobId}/progress`, { token: user.token })).body.step as string;

beforeAll(async () => {
  t = await startTestApp();
  admin = await t.token(randomUUID(), { admin: true });
  user = await t.user(100_000);
});
afterAll(async () => {
  for (const fleet of fleets) await fleet.stop();
  await t.close();
});

describe('rendering on a simulated fleet', () => {
  it('takes a job submitted through GraphQL from Queued to Completed on 5 nodes, streams its steps, and its export downloads', async () => {
    const submitted = await t.gql(
      SubmitRenderJobDocument,
      { input: { savedProjectId: randomUUID(), quality: 'Medium', resolution: 'HD', durationSec: 4, frameRate: 30 } },
      user.token,
    );
    const job = submitted.data?.submitRenderJob;
    expect(job?.__typename).toBe('RenderJob');
    const jobId = job?.__typename === 'RenderJob' ? job.id : '';

    const steps: string[] = [];
    const client = createClient({
      url: `${t.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${user.token}` },
    });
    const unsubscribe = client.subscribe<{ renderProgress: { step: string; progress: number } }>(
      { query: `subscription { renderProgress(jobId: "${jobId}") { step progress } }` },
      { next: ({ data }) => data && steps.push(data.renderProgress.step), error: () => undefined, complete: () => undefined },
    );
    // The fleet starts once the subscriber holds the job's first state, so it sees every step.
    await until('the first progress event', () => steps.length > 0, SOON);
    const fleet = await startFleet({ url: t.url, nodes: 5, adminToken: admin, frameMs: 5, heartbeatSeconds: 0.3, seed: 1 });
    fleets.push(fleet);

    await until('the job to complete', async () => (await stepOf(jobId)) === 'Completed', GENEROUS);
    await until('the Completed event', () => steps.includes('Completed'), SOON);
    unsubscribe();
    await client.dispose();
    // Every step, in order (a step may repeat while its frames arrive).
    expect([...new Set(steps)]).toEqual(['Queued', 'Preparing', 'Rendering', 'Encoding', 'Completed']);

    const detail = await t.rest('GET', `/v1/renders/${jobId}`, { token: user.token });
    expect(detail.body).toMatchObject({ step: 'Completed', render_progress: 100 });
    // Cut at submission, before the fleet came online: two chunks of 60 frames.
    expect(detail.body.frame_jobs.length).toBeGreaterThanOrEqual(2);
    const nodesUsed = new Set(detail.body.frame_jobs.map((chunk: { node_id: string }) => chunk.node_id));
    expect(nodesUsed.size).toBeGreaterThan(1);
    const link = await t.rest('GET', `/v1/exports/${detail.body.export_id}/download-url`, { token: user.token });
    expect(link.status).toBe(200);
    const download = await fetch(link.body.url);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(placeholderOutput(jobId, 'mp4', 120));

    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/render_frames_reported_total \d+/);
    expect(Number(/render_frames_reported_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(120);
    expect(Number(/render_scheduler_pass_duration_seconds_count (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    await fleet.stop();
  }, 200_000);

  it('finishes a job whose node dies mid-chunk, rendering only the missing frames again, and refuses the dead node\'s late report', async () => {
    for (const earlier of fleets) await earlier.stop();
    const fleet = await startFleet({ url: t.url, nodes: 5, adminToken: admin, frameMs: 40, heartbeatSeconds: 0.5, seed: 2 });
    fleets.push(fleet);
    const submitted = await t.rest('POST', '/v1/renders', {
      token: user.token,
      body: { saved_project_id: randomUUID(), quality: 'Low', resolution: 'HD', duration_sec: 10, frame_rate: 30 },
    });
    expect(submitted.status).toBe(201);
    const jobId = submitted.body.id as string;
    const before = fleet.stats().framesAccepted;

    // Kill a node that holds a chunk once it has reported a few frames of it.
    const victim = await waitFor('a node rendering the job', async () => {
      const chunk = await t.app.services.db.prisma.frameJob.findFirst({
        where: { renderJobId: jobId, status: 'Rendering', framesRendered: { gte: 3 }, nodeId: { in: [...fleet.nodes] } },
      });
      return chunk?.nodeId ?? undefined;
    }, GENEROUS);
    fleet.kill(victim);

    await until('the job to complete', async () => (await stepOf(jobId)) === 'Completed', GENEROUS);
    const prisma = t.app.services.db.prisma;
    expect(await prisma.frame.count({ where: { renderJobId: jobId, rendered: true } })).toBe(300);
    // Each of the 300 frames was accepted exactly once: nothing the dead node reported was rendered again.
    expect(fleet.stats().framesAccepted - before).toBe(300);
    expect(await prisma.frame.count({ where: { renderJobId: jobId, nodeId: victim } })).toBeGreaterThanOrEqual(3);
    const victimNode = await prisma.renderNode.findUniqueOrThrow({ where: { id: victim } });
    expect(victimNode.status).toBe('Offline');

    const late = await fleet.revive(victim);
    expect(late).toMatchObject({ status: 409, code: 'STALE_LEASE' });
    expect(fleet.stats().lateReports.refusedStale).toBe(1);
  }, 200_000);
});
