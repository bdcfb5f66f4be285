// The baseline the agent benchmarks compare with: a bare node:http server doing the least a
// database-backed endpoint can do per request (parse the JSON body, run one single-row statement
// through a pg Pool, answer), with no framework, authentication, validation or batching. Run as
// its own process by startBaseline (baseline-process.ts), so it has a core to itself like the
// service has.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE) });
pool.on('error', () => {});

const HEARTBEAT = /^\/heartbeat\/([0-9a-f-]{36})$/;
const FRAMES = /^\/frames\/([0-9a-f-]{36})$/;

function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      } catch (error) {
        reject(error);
      }
    });
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, status: number, body?: unknown): void {
  const payload = body === undefined ? '' : JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  response.end(payload);
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = request.url ?? '';
  const heartbeat = HEARTBEAT.exec(url);
  if (request.method === 'POST' && heartbeat) {
    const body = await readJson(request);
    const { rowCount } = await pool.query(
      'UPDATE render_nodes SET last_heartbeat_at = now(), last_cpu_pct = $2, last_ram_available_mb = $3 WHERE id = $1',
      [heartbeat[1], body.cpu_pct ?? 0, body.ram_available_mb ?? 0],
    );
    return rowCount === 1 ? answer(response, 200, { next_heartbeat_in_sec: 5, pending_commands: [] }) : answer(response, 404);
  }
  const frames = FRAMES.exec(url);
  if (request.method === 'POST' && frames) {
    const body = await readJson(request);
    await pool.query(
      `INSERT INTO bench_frame_reports (render_job_id, frame_number, frame_job_id, file_size_bytes, completed_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [frames[1], body.frame_number, body.frame_job_id, body.file_size_bytes ?? null, body.completed_at ?? new Date()],
    );
    return answer(response, 204);
  }
  answer(response, 404);
}


if (process.env.BASELINE_SERVER === '1') {
  const server = createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) answer(response, 500, { error: String(error) });
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
  });
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void pool.end().then(() => process.exit(0));
  });
}
