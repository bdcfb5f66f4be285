// The scenario both replica tests run: a simulated fleet spread over the replicas renders several
// jobs while a subscriber on the first replica follows each of them, a sampler checks in SQL that
// no frame is ever held by two live chunks at once, and at the end every count is taken from the
// database. The kill test SIGKILLs a replica part-way.
import { randomUUID } from 'node:crypto';
import { startFleet } from '../../agent-sim/fleet.ts';
import { serviceClient } from '../support/app.ts';
import { submitRender } from '../support/jobs.ts';
import { auditSeqs, type ProgressWatch, type Replicas, watchProgress } from '../support/replicas.ts';

/** 60 and 90 frames at 30 fps. */
const DURATIONS_SEC = [2, 3, 2, 3];
const TIMEOUT_MS = 70_000;

export interface RenderOutcome {
  jobs: { id: string; step: string; totalFrames: number; framesRendered: number; renderedRows: number; lastSeq: number }[];
  /** Frames whose report the fleet was told was accepted, per job and frame number. */
  acceptedReports: Map<string, number>;
  /** SQL samples taken while rendering, and the violations they found. */
  samples: number;
  overlappingChunks: number;
  nodesWithTwoPieces: number;
  /** Chunks handed out by more than one render_chunk command. */
  chunksAssignedTwice: number;
  /** Ledger entries per job and kind, e.g. "Charge:1". */
  ledger: Map<string, string[]>;
  audits: ReturnType<typeof auditSeqs>[];
  retries: number;
  killedAfterFrames: number | null;
}

const submit = async (url: string, token: string, durationSec: number) =>
  (await submitRender(serviceClient(url), token, { quality: 'Low', duration_sec: durationSec })).id;

export async function renderOnReplicas(replicas: Replicas, options: { seed: number; killReplica?: { index: number; afterFrames: number } }): Promise<RenderOutcome> {
  const prisma = replicas.db.prisma;
  const admin = await replicas.token(randomUUID(), { admin: true });
  const user = await replicas.user(1_000_000);
  const acceptedReports = new Map<string, number>();
  let accepted = 0;
  let killedAfterFrames: number | null = null;
  let killing: Promise<void> | undefined;
  const fleet = await startFleet({
    url: replicas.urls,
    nodes: 6,
    adminToken: admin,
    frameMs: 10,
    heartbeatSeconds: 0.5,
    failureRate: 0.05,
    seed: options.seed,
    onEvent: (event) => {
      if (event.type !== 'frame' || !event.accepted) return;
      const key = `${event.jobId}:${event.frame}`;
      acceptedReports.set(key, (acceptedReports.get(key) ?? 0) + 1);
      accepted++;
      const kill = options.killReplica;
      if (kill && killing === undefined && accepted >= kill.afterFrames) {
        killedAfterFrames = accepted;
        killing = replicas.processes[kill.index]!.kill();
      }
    },
  });
  const watches: ProgressWatch[] = [];
  let sampling = true;
  let samples = 0;
  let overlappingChunks = 0;
  let nodesWithTwoPieces = 0;
  const sampler = (async () => {
    while (sampling) {
      const [overlaps] = await prisma.$queryRaw<{ count: number }[]>`
        SELECT count(*)::int AS count FROM frame_jobs a JOIN frame_jobs b
          ON a.render_job_id = b.render_job_id AND a.id < b.id AND a.start_frame <= b.end_frame AND b.start_frame <= a.end_frame
        WHERE a.status IN ('Pending', 'Assigned', 'Rendering') AND b.status IN ('Pending', 'Assigned', 'Rendering')`;
      const [doubled] = await prisma.$queryRaw<{ count: number }[]>`
        SELECT count(*)::int AS count FROM (
          SELECT node_id FROM node_commands
          WHERE type IN ('prepare_replica', 'render_chunk', 'encode') AND status IN ('Pending', 'Acknowledged')
          GROUP BY node_id HAVING count(*) > 1) AS busy`;
      samples++;
      overlappingChunks += overlaps?.count ?? 0;
      nodesWithTwoPieces += doubled?.count ?? 0;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  try {
    const jobIds: string[] = [];
    for (const [index, durationSec] of DURATIONS_SEC.entries()) {
      jobIds.push(await submit(replicas.urls[index % replicas.urls.length]!, user.token, durationSec));
    }
    for (const jobId of jobIds) watches.push(await watchProgress(replicas.urls[0]!, user.token, jobId, 0));

    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const open = await prisma.renderJob.count({ where: { id: { in: jobIds }, step: { not: 'Completed' } } });
      if (open === 0) break;
      if (Date.now() > deadline) {
        const steps = await prisma.renderJob.findMany({ where: { id: { in: jobIds } }, select: { step: true, framesRendered: true } });
        throw new Error(`jobs not completed within ${TIMEOUT_MS} ms: ${JSON.stringify(steps)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const watch of watches) await watch.until((message) => message.step === 'Completed', 15_000);
    await killing;

    const jobs: RenderOutcome['jobs'] = [];
    for (const jobId of jobIds) {
      const job = await prisma.renderJob.findUniqueOrThrow({ where: { id: jobId } });
      const renderedRows = await prisma.frame.count({ where: { renderJobId: jobId, rendered: true } });
      jobs.push({ id: jobId, step: job.step, totalFrames: job.totalFrames, framesRendered: job.framesRendered, renderedRows, lastSeq: job.eventSeq });
    }
    const [assignedTwice] = await prisma.$queryRaw<{ count: number }[]>`
      SELECT count(*)::int AS count FROM (
        SELECT frame_job_id FROM node_commands WHERE type = 'render_chunk' AND render_job_id = ANY(${jobIds}::uuid[])
        GROUP BY frame_job_id HAVING count(*) > 1) AS twice`;
    const entries = await prisma.$queryRaw<{ jobId: string; kind: string; count: number }[]>`
      SELECT render_job_id AS "jobId", kind::text AS kind, count(*)::int AS count FROM ledger_entries
      WHERE render_job_id = ANY(${jobIds}::uuid[]) GROUP BY 1, 2 ORDER BY 1, 2`;
    const ledger = new Map(jobIds.map((jobId) => [jobId, entries.filter((entry) => entry.jobId === jobId).map((entry) => `${entry.kind}:${entry.count}`)]));
    return {
      jobs,
      acceptedReports,
      samples,
      overlappingChunks,
      nodesWithTwoPieces,
      chunksAssignedTwice: assignedTwice?.count ?? 0,
      ledger,
      audits: watches.map((watch, index) => auditSeqs(watch.received, jobs[index]!.lastSeq)),
      retries: fleet.stats().retries,
      killedAfterFrames,
    };
  } finally {
    sampling = false;
    await sampler;
    for (const watch of watches) await watch.close();
    await fleet.stop();
    await killing;
  }
}
