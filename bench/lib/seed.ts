// Test data for benchmarks, written straight in SQL: thousands of rows in a few statements.
import { withClient } from './service.ts';

export interface SeededJobs {
  /** Job ids, newest first. */
  jobIds: string[];
  nodeIds: string[];
  /** The chunks on a node, in job order then frame order. */
  rendering: Array<{ jobId: string; frameJobId: string; nodeId: string; startFrame: number; endFrame: number }>;
}

/**
 * Rendering jobs, their chunks of 60 frames (every other one on a node) and the nodes; the jobs
 * belong to `userId`, to `userIds` in turn, or each to a user of its own; with
 * `frames`, the frame rows too, so that nodes can report the frames of their chunks. One
 * transaction: a running service's scheduler sees the jobs whole or not at all (it re-cuts the
 * pending chunks of a job it sees, which could leave frames without their chunk).
 */
export async function seedJobs(
  databaseUrl: string,
  options: { jobs: number; chunksPerJob: number; nodes: number; userId?: string; userIds?: string[]; frames?: boolean; aeVersion?: string },
): Promise<SeededJobs> {
  return withClient(databaseUrl, async (client) => {
    await client.query('BEGIN');
    const nodes = await client.query<{ id: string }>(
      `INSERT INTO render_nodes (id, name, region, node_ip, worker_port, status, current_ae_version, updated_at)
       SELECT gen_random_uuid(), 'bench-node-' || n || '-' || gen_random_uuid(), 'eu-west', '10.0.0.' || (n % 250), 9000, 'Busy', '24.1', now()
       FROM generate_series(1, $1::int) AS n
       RETURNING id`,
      [options.nodes],
    );
    const jobs = await client.query<{ id: string }>(
      `INSERT INTO render_jobs (id, user_id, saved_project_id, name, step, price_type, quality, resolution,
                                frame_rate, duration_sec, total_frames, started_at, queued_at, updated_at, ae_version)
       SELECT gen_random_uuid(), coalesce(($2::uuid[])[1 + n % cardinality($2::uuid[])], gen_random_uuid()), gen_random_uuid(), 'Bench job ' || n, 'Rendering',
              'Cash', 'High', 'FullHD', 30, 60, 1800, now(), now() - make_interval(secs => n), now(), $3
       FROM generate_series(1, $1::int) AS n
       ORDER BY n
       RETURNING id`,
      [options.jobs, options.userIds ?? (options.userId ? [options.userId] : null), options.aeVersion ?? null],
    );
    await client.query(
      `WITH nodes AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS position FROM render_nodes WHERE id = ANY($3::uuid[]))
       INSERT INTO frame_jobs (id, render_job_id, node_id, start_frame, end_frame, order_value, status, updated_at)
       SELECT gen_random_uuid(), j.id,
              CASE WHEN c % 2 = 0 THEN (SELECT id FROM nodes WHERE position = (abs(hashtext(j.id::text)) + c) % $2::int) END,
              c * 60, c * 60 + 59, c, CASE WHEN c % 2 = 0 THEN 'Rendering' ELSE 'Pending' END::"FrameJobStatus", now()
       FROM render_jobs j, generate_series(0, $1::int - 1) AS c
       WHERE j.id = ANY($4::uuid[])`,
      [options.chunksPerJob, options.nodes, nodes.rows.map((row) => row.id), jobs.rows.map((row) => row.id)],
    );
    if (options.frames) {
      await client.query(
        `INSERT INTO frames (render_job_id, frame_number, frame_job_id)
         SELECT f.render_job_id, n, f.id FROM frame_jobs f, generate_series(f.start_frame, f.end_frame) AS n
         WHERE f.render_job_id = ANY($1::uuid[])`,
        [jobs.rows.map((row) => row.id)],
      );
    }
    const rendering = await client.query<{ jobId: string; frameJobId: string; nodeId: string; startFrame: number; endFrame: number }>(
      `SELECT f.render_job_id AS "jobId", f.id AS "frameJobId", f.node_id AS "nodeId", f.start_frame AS "startFrame", f.end_frame AS "endFrame"
       FROM frame_jobs f JOIN unnest($1::uuid[]) WITH ORDINALITY AS j(id, position) ON j.id = f.render_job_id
       WHERE f.node_id IS NOT NULL ORDER BY j.position, f.order_value`,
      [jobs.rows.map((row) => row.id)],
    );
    await client.query('COMMIT');
    await client.query('ANALYZE');
    return { jobIds: jobs.rows.map((row) => row.id), nodeIds: nodes.rows.map((row) => row.id), rendering: rendering.rows };
  });
}
