// The queries baseline: hand-written endpoints for the job listings the queries benchmark asks the
// service for, `{ id frameJobs { id node { id } } }` per job, each answer built whole in one SQL
// statement (json_agg) and served by bare node:http. Run as a child process (bench/lib/child.ts).
//   GET /jobs?first=N                  renderJobs(first: N) as an admin: everyone's jobs, chunks' nodes shown
//   GET /jobs?first=N&user=ID          renderJobs(first: N) as that user: their jobs, chunks' nodes hidden (null)
//   GET /entities?first=N&users=A,B,…  _entities of those Users, each with renderJobs(first: N), as an admin
import { createServer } from 'node:http';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });

/** A job's JSON, `j` a render_jobs row; chunks in frame order, their nodes as `$showNodes` says. */
const JOB_JSON = `json_build_object(
    'id', j.id,
    'frameJobs', (
      SELECT coalesce(json_agg(json_build_object(
        'id', f.id,
        'node', CASE WHEN n.id IS NULL OR NOT $2::boolean THEN NULL ELSE json_build_object('id', n.id) END
      ) ORDER BY f.order_value), '[]'::json)
      FROM frame_jobs f LEFT JOIN render_nodes n ON n.id = f.node_id
      WHERE f.render_job_id = j.id
    ))`;

// The same order as the service (newest first, then id).
const JOBS = `
SELECT json_build_object('data', json_build_object('renderJobs', json_build_object('edges',
  coalesce(json_agg(json_build_object('node', ${JOB_JSON}) ORDER BY j.queued_at DESC, j.id DESC), '[]'::json)
)))::text AS body
FROM (SELECT id, queued_at FROM render_jobs WHERE $3::uuid IS NULL OR user_id = $3
      ORDER BY queued_at DESC, id DESC LIMIT $1) j`;

// Users in the order asked, each with their newest jobs.
const ENTITIES = `
SELECT json_build_object('data', json_build_object('_entities',
  coalesce(json_agg(json_build_object('id', u.id, 'renderJobs', json_build_object('edges', (
    SELECT coalesce(json_agg(json_build_object('node', ${JOB_JSON}) ORDER BY j.queued_at DESC, j.id DESC), '[]'::json)
    FROM (SELECT id, queued_at FROM render_jobs WHERE user_id = u.id::uuid ORDER BY queued_at DESC, id DESC LIMIT $1) j
  ))) ORDER BY u.position), '[]'::json)
))::text AS body
FROM unnest($3::text[]) WITH ORDINALITY AS u(id, position)`;

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const first = Number(url.searchParams.get('first') ?? 20);
  const user = url.searchParams.get('user');
  const statement =
    url.pathname === '/entities'
      ? { text: ENTITIES, values: [first, true, (url.searchParams.get('users') ?? '').split(',')] }
      : { text: JOBS, values: [first, user === null, user] };
  // Drain the request body (if any) before answering, as a real endpoint would.
  request.resume();
  pool.query<{ body: string }>(statement).then(
    (result) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(result.rows[0]!.body);
    },
    (error: Error) => {
      response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(error.message);
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void pool.end().then(() => process.exit(0));
});
