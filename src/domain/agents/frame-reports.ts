// Frame reports written in batches (see group-commit.ts): a fleet reports thousands of frames a
// second, each one a row of `frames` and +1 on its chunk's and its job's counters. Written one by
// one, every report of a job waited for the job row's lock in turn; here a batch checks every
// report's lease in one query, marks its frames rendered in one statement and adds to each chunk
// and job once, and the job's progress event is recorded once per batch.
//
// A batch locks its jobs and no node: the node's current frame comes from its heartbeats, which
// lock the node rows. When batches set it too, every heartbeat of a rendering node waited for the
// frame batch that held its row, and frame batches waited for heartbeat batches in turn.
import { Prisma } from '../../generated/prisma/client.ts';
import { ValidationError } from '../errors.ts';
import type { SqlChanges } from '../jobs/job-changes.ts';
import { chunkRefusal, type HeldChunkFacts } from '../work/leases.ts';

export interface FrameReportToWrite {
  nodeId: string;
  jobId: string;
  frameJobId: string;
  frameNumber: number;
  lease?: string;
  fileSizeBytes?: number;
  completedAt: Date;
  previewB64?: string;
}

/**
 * Writes a batch of frame reports in the caller's unit of work. Answers, per report, nothing
 * (stored, or already stored before) or the error that report alone is refused with.
 */
export async function writeFrameReports({ sql, now, touch, lock }: SqlChanges, reports: readonly FrameReportToWrite[]): Promise<Array<Error | undefined>> {
  // The jobs first, then their chunks: an ending (cancel, failure) holds the job while it
  // withdraws the chunks, so the chunks are read as it left them. Read before the lock, a chunk
  // withdrawn meanwhile still took its frame, went back to Rendering, and gave its ended job an
  // event after the terminal one (found by the soak).
  await lock(reports.map((report) => report.jobId));
  const chunkIds = [...new Set(reports.map((report) => report.frameJobId))];
  const chunks = await sql<HeldChunkFacts & { startFrame: number; endFrame: number }>(
    Prisma.sql`
      SELECT id::text, render_job_id::text AS "renderJobId", node_id::text AS "nodeId", status::text AS status, lease_token AS "leaseToken",
        start_frame AS "startFrame", end_frame AS "endFrame"
      FROM frame_jobs WHERE id = ANY(${chunkIds}::uuid[])`,
    'frame-batch-chunks',
  );
  const chunkById = new Map(chunks.map((chunk) => [chunk.id, chunk]));
  const outcomes = reports.map((report): Error | undefined => {
    const chunk = chunkById.get(report.frameJobId.toLowerCase()) ?? null;
    const refusal = chunkRefusal(chunk, report.nodeId, report.jobId, report.frameJobId, report.lease);
    if (refusal || !chunk) return refusal;
    if (report.frameNumber < chunk.startFrame || report.frameNumber > chunk.endFrame) {
      return new ValidationError('The frame is outside the frame job', [
        { path: 'frameNumber', message: `must be between ${chunk.startFrame} and ${chunk.endFrame}` },
      ]);
    }
    return undefined;
  });
  const accepted = reports.filter((_report, index) => outcomes[index] === undefined);
  if (accepted.length === 0) return outcomes;

  const input = JSON.stringify(
    accepted.map((report, index) => ({
      position: index,
      job_id: report.jobId,
      frame_number: report.frameNumber,
      frame_job_id: report.frameJobId,
      node_id: report.nodeId,
      file_size_bytes: report.fileSizeBytes ?? null,
      validated: (report.fileSizeBytes ?? 0) > 0,
      completed_at: report.completedAt.toISOString(),
      preview_b64: report.previewB64 ?? null,
    })),
  );
  const changed = await sql<{ job_id: string; previewed: boolean }>(
    Prisma.sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${input}::jsonb) AS i(
        position int, job_id uuid, frame_number int, frame_job_id uuid, node_id uuid,
        file_size_bytes bigint, validated boolean, completed_at timestamptz, preview_b64 text)
    ), rendered AS (
      -- A frame reported twice (in this batch or before) is rendered once: reports are idempotent.
      UPDATE frames f SET rendered = true, validated = i.validated, node_id = i.node_id,
        file_size_bytes = i.file_size_bytes, completed_at = i.completed_at
      FROM input i
      WHERE f.render_job_id = i.job_id AND f.frame_number = i.frame_number AND f.frame_job_id = i.frame_job_id AND NOT f.rendered
      RETURNING f.render_job_id, f.frame_number, f.frame_job_id, f.validated
    ), fresh AS (
      SELECT DISTINCT ON (r.render_job_id, r.frame_number) i.*
      FROM rendered r JOIN input i ON i.job_id = r.render_job_id AND i.frame_number = r.frame_number
      ORDER BY r.render_job_id, r.frame_number, i.position
    ), chunks AS (
      UPDATE frame_jobs fj SET status = 'Rendering', frames_rendered = fj.frames_rendered + c.frames,
        frames_validated = fj.frames_validated + c.validated, updated_at = ${now}
      FROM (SELECT frame_job_id, count(*)::int AS frames, count(*) FILTER (WHERE validated)::int AS validated FROM fresh GROUP BY frame_job_id) c
      WHERE fj.id = c.frame_job_id
    ), jobs AS (
      UPDATE render_jobs j SET frames_rendered = j.frames_rendered + c.frames,
        image_preview_b64 = COALESCE(c.preview_b64, j.image_preview_b64), updated_at = ${now}
      FROM (
        SELECT job_id, count(*)::int AS frames, (array_agg(preview_b64 ORDER BY position DESC) FILTER (WHERE preview_b64 IS NOT NULL))[1] AS preview_b64
        FROM fresh GROUP BY job_id
      ) c
      WHERE j.id = c.job_id
      RETURNING j.id, c.preview_b64 IS NOT NULL AS previewed
    )
    SELECT id::text AS job_id, previewed FROM jobs`,
    'frame-batch',
  );
  touch(changed.filter((row) => !row.previewed).map((row) => row.job_id));
  touch(changed.filter((row) => row.previewed).map((row) => row.job_id), { preview: true });
  return outcomes;
}
