// The queries baseline: a hand-written endpoint for `renderJobs(first) { edges { node { id
// frameJobs { id node { id } } } } }`, one SQL statement building the whole JSON answer in
// PostgreSQL, served by bare node:http. Run as a child process (bench/lib/child.ts).
import { createServer } from 'node:http';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });

// The same order as the service (newest first, then id), chunks in frame order.
const QUERY = `
SELECT json_build_object('data', json_build_object('renderJobs', json_build_object('edges',
  coalesce(json_agg(json_build_object('node', json_build_object(
    'id', j.id,
    'frameJobs', (
      SELECT coalesce(json_agg(json_build_object(
        'id', f.id,
        'node', CASE WHEN n.id IS NULL THEN NULL ELSE json_build_object('id', n.id) END
      ) ORDER BY f.order_value), '[]'::json)
      FROM frame_jobs f LEFT JOIN render_nodes n ON n.id = f.node_id
      WHERE f.render_job_id = j.id
    )
  )) ORDER BY j.queued_at DESC, j.id DESC), '[]'::json)
)))::text AS body
FROM (SELECT id, queued_at FROM render_jobs ORDER BY queued_at DESC, id DESC LIMIT $1) j`;

const server = createServer((request, response) => {
  const first = Number(new URL(request.url ?? '/', 'http://localhost').searchParams.get('first') ?? 20);
  // Drain the request body (if any) before answering, as a real endpoint would.
  request.resume();
  pool.query<{ body: string }>(QUERY, [first]).then(
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
