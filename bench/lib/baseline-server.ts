// The baseline the agent benchmarks compare with: a bare node:http server doing the essential work
// of a signed agent request and nothing more: read the body, check its HMAC-SHA256 signature, parse
// the JSON, run one single-row statement through a pg Pool, answer. No framework, replay check,
// rate limit, validation or batching. Run as its own process by startBaseline
// (baseline-process.ts), so its CPU counters hold its own work only, like the service's.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';
import { deriveAgentKey, signAgentRequest } from '../../src/adapters/auth/agent-signature.ts';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE) });
pool.on('error', () => {});

const HEARTBEAT = /^\/heartbeat\/([0-9a-f-]{36})$/;
const FRAMES = /^\/frames\/([0-9a-f-]{36})$/;
const ACK = /^\/ack\/([0-9a-f-]{36})\/([0-9a-f-]{36})$/;
const NODE_HMAC_SECRET = process.env.NODE_HMAC_SECRET ?? '';

class Refused extends Error {}

/** The body, once its signature checked out over the path the agent signed (X-Signed-Path). */
function readSigned(request: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        const body = Buffer.concat(chunks);
        const header = (name: string) => String(request.headers[name] ?? '');
        const nodeId = header('x-node-id');
        const expected = signAgentRequest({
          nodeId,
          agentKey: deriveAgentKey(NODE_HMAC_SECRET, nodeId),
          method: request.method ?? 'POST',
          path: header('x-signed-path'),
          body,
          timestamp: Number(header('x-node-timestamp')),
        })['X-Node-Signature'];
        const given = Buffer.from(header('x-node-signature'));
        if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) throw new Refused('bad signature');
        resolve(body.length === 0 ? {} : (JSON.parse(body.toString('utf8')) as Record<string, unknown>));
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
    const body = await readSigned(request);
    const { rowCount } = await pool.query(
      'UPDATE render_nodes SET last_heartbeat_at = now(), last_cpu_pct = $2, last_ram_available_mb = $3 WHERE id = $1',
      [heartbeat[1], body.cpu_pct ?? 0, body.ram_available_mb ?? 0],
    );
    return rowCount === 1 ? answer(response, 200, { next_heartbeat_in_sec: 5, pending_commands: [] }) : answer(response, 404);
  }
  const frames = FRAMES.exec(url);
  if (request.method === 'POST' && frames) {
    const body = await readSigned(request);
    await pool.query(
      `INSERT INTO bench_frame_reports (render_job_id, frame_number, frame_job_id, file_size_bytes, completed_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [frames[1], body.frame_number, body.frame_job_id, body.file_size_bytes ?? null, body.completed_at ?? new Date()],
    );
    return answer(response, 204);
  }
  const ack = ACK.exec(url);
  if (request.method === 'POST' && ack) {
    await readSigned(request);
    const { rowCount } = await pool.query(
      `UPDATE node_commands SET status = 'Acknowledged', acknowledged_at = now() WHERE id = $2 AND node_id = $1 AND status = 'Pending'`,
      [ack[1], ack[2]],
    );
    return answer(response, rowCount === 1 ? 204 : 404);
  }
  answer(response, 404);
}

if (process.env.BASELINE_SERVER === '1') {
  const server = createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) answer(response, error instanceof Refused ? 401 : 500, { error: String(error) });
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
