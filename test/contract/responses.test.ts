// Every REST operation, called the way its callers call it, through the states where fields have
// no value yet (a chunk nobody holds, a snapshot still pending, a node that never reported, an
// export without an image) and through the refusals each operation gives. Every answer is
// recorded, then read the way legacy callers read it: against the original contract as its
// owners published it (test/fixtures/original-openapi.yaml) wherever the original documents that
// answer, and against the project's copy (rest-compat/openapi.yaml), which must document every
// status the service answered.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentedResponses, listOperations, loadContract, type OpenApiDocument, schemaProblems } from '../../rest-compat/contract.ts';
import { type AgentCommand, type HttpAnswer, startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { pngBytes, randomMd5 } from '../support/snapshots.ts';

const original = loadContract(new URL('../fixtures/original-openapi.yaml', import.meta.url));
const copy = loadContract();

/** Statuses the copy says any operation may answer, besides those it lists per operation. */
const ANY_OPERATION = ['413', '415', '429', '503'];

interface Exchange {
  /** As the contract names it: `GET /renders/{job_id}`. */
  operation: string;
  status: number;
  body: unknown;
}

const exchanges: Exchange[] = [];

let t: TestApp;
let admin: string;
let owner: TestUser;
let stranger: TestUser;
let projectId: string;
let md5: string;

beforeAll(async () => {
  // The folder object store, whose signed downloads are an operation of the contract; S3 serves its own.
  t = await startTestApp({ startLoops: false, env: { S3_ENDPOINT: '' } });
  admin = await t.token(randomUUID(), { admin: true });
  owner = await t.user(1_000_000);
  stranger = await t.user();
  projectId = randomUUID();
  md5 = randomMd5();
});
afterAll(() => t.close());

interface Call {
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

function urlOf(operation: string, { params = {}, query }: Call): { method: string; url: string } {
  const [method = '', template = ''] = operation.split(' ');
  const path = template.replace(/\{([a-z_]+)\}/g, (_match, name: string) => encodeURIComponent(params[name] ?? ''));
  return { method, url: `/v1${path}${query ? `?${query}` : ''}` };
}

function record(operation: string, answer: HttpAnswer): HttpAnswer {
  exchanges.push({ operation, status: answer.status, body: answer.body });
  return answer;
}

/** A call of a user, a service or nobody (no token). */
async function rest(operation: string, token: string | undefined, call: Call = {}): Promise<HttpAnswer> {
  const { method, url } = urlOf(operation, call);
  return record(operation, await t.rest(method, url, { token, body: call.body, headers: call.headers }));
}

/** A call signed by a node agent; a Buffer body is sent as bytes. */
async function agent(node: TestNode, operation: string, call: Call = {}): Promise<HttpAnswer> {
  const { method, url } = urlOf(operation, call);
  return record(operation, await t.signed(node, method, url, call.body));
}

let heartbeats = 0;

/** The commands a heartbeat delivers, each acknowledged as agents do. */
async function commandsFor(node: TestNode): Promise<AgentCommand[]> {
  // Stamped, so that two heartbeats in one second are not refused as a replay.
  const recordedAt = new Date(Date.now() + heartbeats++).toISOString();
  const beat = await agent(node, 'POST /internal/nodes/{node_id}/heartbeat', {
    params: { node_id: node.id },
    body: { recorded_at: recordedAt, status: 'Online', cpu_pct: 12, ram_available_mb: 8000, ae_running: false, ae_memory_mb: 0 },
  });
  expect(beat.status, JSON.stringify(beat.body)).toBe(200);
  const commands = beat.body.pending_commands as AgentCommand[];
  for (const command of commands) {
    const ack = await agent(node, 'POST /internal/nodes/{node_id}/commands/{command_id}/ack', { params: { node_id: node.id, command_id: command.command_id } });
    expect(ack.status).toBe(204);
  }
  return commands;
}

async function onlineNode(name: string): Promise<TestNode> {
  const registered = await rest('POST /nodes', admin, {
    body: { name, region: 'eu', node_ip: '10.0.0.7', worker_port: 9000, current_ae_version: '24.1' },
  });
  expect(registered.status, JSON.stringify(registered.body)).toBe(201);
  const node = { id: registered.body.id as string, agentKey: registered.body.agent_key as string };
  const online = await agent(node, 'POST /internal/nodes/{node_id}/online', {
    params: { node_id: node.id },
    body: { node_agent_version: '3.2.0', available_ae_versions: ['24.1'], cached_template_md5s: [md5], ram_gb: 64, cpu_cores: 16 },
  });
  expect(online.status).toBe(200);
  return node;
}

const assignWork = () => t.app.services.scheduler.assignWork();

describe('answers where fields have no value yet', () => {
  let registered: { id: string; agentKey: string };

  it('a node that never reported: no agent version, heartbeat or maintenance, health without recorded_at', async () => {
    const created = await rest('POST /nodes', admin, {
      body: { name: 'never-reported', region: 'eu', node_ip: '10.0.0.9', worker_port: 9000, current_ae_version: '24.1' },
    });
    expect(created.status).toBe(201);
    registered = { id: created.body.id, agentKey: created.body.agent_key };
    for (const body of [created.body, (await rest('GET /nodes/{node_id}', admin, { params: { node_id: registered.id } })).body]) {
      expect(body).not.toHaveProperty('node_agent_version');
      expect(body).not.toHaveProperty('last_heartbeat_at');
    }
    const detail = await rest('GET /nodes/{node_id}', admin, { params: { node_id: registered.id } });
    expect(detail.body).not.toHaveProperty('last_maintenance_at');
    expect(detail.body.next_maintenance_at).toBeNull();
    const listed = await rest('GET /nodes', admin, { query: 'region=eu&status=Registered' });
    expect(listed.body.data.map((node: { id: string }) => node.id)).toContain(registered.id);
    const health = await rest('GET /nodes/{node_id}/health', admin, { params: { node_id: registered.id } });
    expect(health.status).toBe(200);
    expect(health.body).not.toHaveProperty('recorded_at');
    expect(health.body).toMatchObject({ node_id: registered.id, ae_memory_mb: null, current_job_id: null, current_frame: null });
    expect((await rest('GET /nodes/{node_id}/health/history', admin, { params: { node_id: registered.id } })).body).toEqual({ data: [] });
    expect((await rest('GET /nodes/{node_id}/crashes', admin, { params: { node_id: registered.id } })).body).toEqual({ data: [] });
    const patched = await rest('PATCH /nodes/{node_id}', admin, { params: { node_id: registered.id }, body: { priority: 5, maintenance_reason: null } });
    expect(patched.status).toBe(200);
    expect(patched.body).not.toHaveProperty('last_heartbeat_at');
  });

  it('a job whose chunks nobody holds yet: frame jobs without node_id', async () => {
    const synced = await rest('PUT /saved-projects/{saved_project_id}', TEST_SERVICE_TOKEN, {
      params: { saved_project_id: projectId },
      body: { owner_user_id: owner.id, name: 'Promo', duration_sec: 1, aep_file_md5: md5, ae_version: '24.1' },
    });
    expect(synced.status).toBe(200);
    const job = await rest('POST /renders', owner.token, { body: { saved_project_id: projectId, quality: 'Low', resolution: 'HD', frame_rate: 24 } });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    const detail = await rest('GET /renders/{job_id}', owner.token, { params: { job_id: job.body.id } });
    expect(detail.body.frame_jobs.length).toBeGreaterThan(1);
    for (const chunk of detail.body.frame_jobs) expect(chunk).not.toHaveProperty('node_id');
    expect(detail.body.export).toBeNull();
    expect((await rest('GET /renders/{job_id}/progress', owner.token, { params: { job_id: job.body.id } })).status).toBe(200);
    expect((await rest('GET /renders/{job_id}/logs', owner.token, { params: { job_id: job.body.id }, query: 'level=info' })).status).toBe(200);
    expect((await rest('GET /renders', owner.token, { query: 'status=Queued&page=1&page_size=5' })).body.data).toHaveLength(1);
    const cancelled = await rest('POST /renders/{job_id}/cancel', owner.token, { params: { job_id: job.body.id }, body: { reason: 'changed my mind' } });
    expect(cancelled.body).toEqual({ cancelled: true, refund_amount_minor: expect.any(Number) });
    expect((await rest('POST /renders/{job_id}/retry', owner.token, { params: { job_id: job.body.id } })).status).toBe(201);
  });

  it('a snapshot still pending: no expires_at', async () => {
    const asked = await rest('POST /snapshots', owner.token, { body: { saved_project_id: projectId, scene_key: 'intro', frame_number: 3 } });
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ status: 'Pending', expires_at: null });
    const pending = await rest('GET /snapshots/{snapshot_id}', owner.token, { params: { snapshot_id: asked.body.snapshot_id } });
    expect(pending.body.status).toBe('Pending');
    expect(pending.body).not.toHaveProperty('expires_at');
  });
});

describe('a render, a snapshot and an update through the agent protocol', () => {
  let worker: TestNode;

  it('renders the retried job to an export without an image, a failed chunk and a crash on the way, and two snapshots', async () => {
    // The never-reported node of the first test takes no work: the worker gets all of it.
    worker = await onlineNode('worker');
    const another = await rest('POST /snapshots', owner.token, { body: { saved_project_id: projectId, scene_key: 'outro', frame_number: 1 } });
    expect(another.status).toBe(202);
    const cache = await agent(worker, 'POST /internal/nodes/{node_id}/cache-update', {
      params: { node_id: worker.id },
      body: { action: 'Verified', aep_file_md5: md5, project_id: projectId, cache_used_gb: 3 },
    });
    expect(cache.status).toBe(204);

    const done = { snapshots: 0, chunkFailures: 0, encoded: false };
    for (let pass = 0; pass < 30 && !(done.encoded && done.snapshots === 2); pass++) {
      await assignWork();
      const [work] = await commandsFor(worker);
      expect(work, 'the worker is given work while some is left').toBeDefined();
      if (work) await perform(work, done);
    }
    expect(done).toEqual({ snapshots: 2, chunkFailures: 2, encoded: true });
    const [job] = (await rest('GET /renders', owner.token, { query: 'status=Completed' })).body.data;
    const completed = await rest('GET /renders/{job_id}', owner.token, { params: { job_id: job.id } });
    expect(completed.body.export).not.toHaveProperty('image');
    expect((await rest('GET /nodes/{node_id}/crashes', admin, { params: { node_id: worker.id } })).body.data).toHaveLength(1);
    const history = await rest('GET /nodes/{node_id}/health/history', admin, {
      params: { node_id: worker.id },
      query: `to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    });
    expect(history.body.data.length).toBeGreaterThan(0);
  });

  /** The worker's side of one command: the first snapshot is rendered, the second fails; the first two chunks fail and crash. */
  async function perform(work: AgentCommand, done: { snapshots: number; chunkFailures: number; encoded: boolean }) {
    const lease = work.lease;
    const jobId = String(work.job_id);
    if (work.type === 'render_snapshot') {
      const snapshot = { snapshot_id: String(work.snapshot_id) };
      if (done.snapshots++ > 0) {
        expect((await agent(worker, 'POST /internal/snapshots/{snapshot_id}/fail', { params: snapshot, body: { lease, error: 'no such scene' } })).status).toBe(204);
        return;
      }
      for (const file of ['image', 'thumbnail']) {
        const uploaded = await agent(worker, `PUT /internal/snapshots/{snapshot_id}/${file}`, { params: snapshot, query: `lease=${lease}`, body: pngBytes(256) });
        expect(uploaded.status).toBe(204);
      }
      const complete = await agent(worker, 'POST /internal/snapshots/{snapshot_id}/complete', { params: snapshot, body: { lease, width: 640, height: 360, duration_ms: 900 } });
      expect(complete.status, JSON.stringify(complete.body)).toBe(204);
      return;
    }
    if (work.type === 'prepare_replica') {
      const ready = await agent(worker, 'POST /internal/render/jobs/{job_id}/replica-ready', {
        params: { job_id: jobId },
        body: { node_id: worker.id, replica_path: 'D:/replicas/promo.aep', replica_md5: md5, lease },
      });
      expect(ready.status).toBe(204);
      return;
    }
    if (work.type === 'encode') {
      const output = await agent(worker, 'PUT /internal/render/jobs/{job_id}/outputs/{format}', {
        params: { job_id: jobId, format: 'mp4' },
        query: `lease=${lease}`,
        body: Buffer.from('an encoded video'),
      });
      expect(output.status).toBe(204);
      const encoded = await agent(worker, 'POST /internal/render/jobs/{job_id}/encoded', {
        params: { job_id: jobId },
        body: { lease, width: 1280, height: 720, duration_sec: 1, formats: ['mp4'] },
      });
      expect(encoded.status, JSON.stringify(encoded.body)).toBe(204);
      done.encoded = true;
      return;
    }
    expect(work.type).toBe('render_chunk');
    const chunk = { job_id: jobId, frame_job_id: String(work.frame_job_id) };
    if (done.chunkFailures === 0) {
      done.chunkFailures++;
      expect((await agent(worker, 'POST /internal/render/jobs/{job_id}/chunks/{frame_job_id}/fail', { params: chunk, body: { lease, error: 'out of memory' } })).status).toBe(204);
      return;
    }
    if (done.chunkFailures === 1) {
      done.chunkFailures++;
      const crashed = await agent(worker, 'POST /internal/render/jobs/{job_id}/crash', {
        params: { job_id: jobId },
        body: { node_id: worker.id, frame_job_id: chunk.frame_job_id, lease, last_known_frame: work.start_frame, crash_signal: 'SIGSEGV' },
      });
      expect(crashed.status, JSON.stringify(crashed.body)).toBe(200);
      return;
    }
    for (let frame = Number(work.start_frame); frame <= Number(work.end_frame); frame++) {
      const reported = await agent(worker, 'POST /internal/render/jobs/{job_id}/frames', {
        params: { job_id: jobId },
        body: { frame_job_id: chunk.frame_job_id, frame_number: frame, file_size_bytes: 2048, lease },
      });
      expect(reported.status).toBe(204);
    }
    expect((await agent(worker, 'POST /internal/render/jobs/{job_id}/chunks/{frame_job_id}/complete', { params: chunk, body: { lease } })).status).toBe(204);
  }

  it('lists, reads, extends, downloads and deletes the export', async () => {
    const listed = await rest('GET /exports', owner.token, { query: 'page=1' });
    expect(listed.body.data).toHaveLength(1);
    const exportId = listed.body.data[0].id as string;
    expect(listed.body.data[0]).not.toHaveProperty('image');
    const detail = await rest('GET /exports/{export_id}', owner.token, { params: { export_id: exportId } });
    expect(detail.body).not.toHaveProperty('image');
    for (const file of detail.body.files) expect(file).not.toHaveProperty('thumbnail');
    const link = await rest('GET /exports/{export_id}/download-url', owner.token, { params: { export_id: exportId }, query: 'format=mp4' });
    expect(link.status).toBe(200);
    const url = new URL(link.body.url);
    const downloaded = record('GET /objects/{key}', await t.rest('GET', url.pathname + url.search));
    expect(downloaded.status).toBe(200);
    expect(downloaded.body).toBe('an encoded video');
    expect(downloaded.headers.get('content-disposition')).toBe(url.searchParams.get('disposition'));
    expect(downloaded.headers.get('content-disposition')).toMatch(/^attachment; filename="/);
    url.searchParams.set('disposition', 'attachment; filename="invoice.exe"');
    expect(record('GET /objects/{key}', await t.rest('GET', url.pathname + url.search)).status).toBe(403);
    // A calling service lists every user's exports and renders, the owner's among them.
    const served = await rest('GET /exports', TEST_SERVICE_TOKEN);
    expect(served.status).toBe(200);
    expect(served.body.data.map((exported: { id: string }) => exported.id)).toContain(exportId);
    const renders = await rest('GET /renders', TEST_SERVICE_TOKEN, { query: 'status=Completed' });
    expect(renders.status).toBe(200);
    expect(renders.body.data.map((job: { export_id: string }) => job.export_id)).toContain(exportId);
    expect((await rest('POST /exports/{export_id}/extend', owner.token, { params: { export_id: exportId }, body: { days: 7 } })).status).toBe(200);
    expect((await rest('DELETE /exports/{export_id}', owner.token, { params: { export_id: exportId } })).status).toBe(204);
  });

  it('restarts, releases and closes After Effects on the worker, and rolls an update out to it', async () => {
    const node = { node_id: worker.id };
    expect((await rest('POST /nodes/{node_id}/restart', admin, { params: node })).status).toBe(202);
    expect((await rest('POST /nodes/{node_id}/release', admin, { params: node })).status).toBe(204);
    expect((await rest('POST /nodes/{node_id}/close-ae', admin, { params: node })).status).toBe(204);
    expect((await rest('POST /nodes/{node_id}/maintenance', admin, { params: node, body: { reason: 'fans' } })).status).toBe(200);
    expect((await rest('DELETE /nodes/{node_id}/maintenance', admin, { params: node })).status).toBe(200);
    expect((await rest('DELETE /nodes/{node_id}/maintenance', admin, { params: node })).status).toBe(409);
    const published = await rest('POST /node-updates', admin, {
      body: { update_file_name: 'agent-3.3.msi', update_number: 33, target_ae_version: '24.1', download_key: 'updates/agent-3.3.msi', sha256: 'b'.repeat(64) },
    });
    expect(published.status, JSON.stringify(published.body)).toBe(201);
    expect((await rest('GET /node-updates', admin)).body.data).toHaveLength(1);
    const update = { update_id: published.body.id as string };
    const rollout = await rest('POST /node-updates/{update_id}/rollout', admin, { params: update, body: { node_ids: [worker.id] } });
    expect(rollout.status, JSON.stringify(rollout.body)).toBe(202);
    const report = { ...update, ...node };
    expect((await agent(worker, 'POST /internal/nodes/{node_id}/updates/{update_id}/applied', { params: report, body: { node_agent_version: '3.3.0' } })).status).toBe(204);
    const late = await agent(worker, 'POST /internal/nodes/{node_id}/updates/{update_id}/failed', { params: report, body: { error: 'too late' } });
    expect(late.status).toBe(409);
  });
});

describe('refusals', () => {
  it('of callers who may not, or who are not known', async () => {
    const someone = randomUUID();
    expect((await rest('GET /renders', undefined)).status).toBe(401);
    expect((await rest('POST /snapshots', TEST_SERVICE_TOKEN, { body: { saved_project_id: projectId, scene_key: 'intro', frame_number: 1 } })).status).toBe(403);
    expect((await rest('GET /nodes', owner.token)).status).toBe(403);
    expect((await rest('PUT /saved-projects/{saved_project_id}', owner.token, { params: { saved_project_id: someone }, body: { name: 'Mine', duration_sec: 2 } })).status).toBe(403);
    const plan = await rest('POST /renders', owner.token, { body: { saved_project_id: projectId, quality: 'Low', resolution: 'HD', price_type: 'Plan' } });
    expect(plan.status).toBe(403);
    const worker = await onlineNode('impostor-target');
    const impostor = { id: randomUUID(), agentKey: worker.agentKey };
    expect((await agent(impostor, 'POST /internal/nodes/{node_id}/heartbeat', { params: { node_id: worker.id }, body: {} })).status).toBe(401);
    expect((await agent(worker, 'POST /internal/nodes/{node_id}/heartbeat', { params: { node_id: someone }, body: {} })).status).toBe(403);
  });

  it('of what does not exist, or is someone else’s', async () => {
    const unknown = randomUUID();
    const strangers = await rest('POST /renders', stranger.token, { body: { saved_project_id: projectId, quality: 'Low', resolution: 'HD' } });
    expect(strangers.status).toBe(404);
    expect((await rest('POST /snapshots', owner.token, { body: { saved_project_id: unknown, scene_key: 'intro', frame_number: 1 } })).status).toBe(404);
    for (const operation of ['GET /renders/{job_id}', 'GET /renders/{job_id}/progress', 'GET /renders/{job_id}/logs', 'POST /renders/{job_id}/cancel', 'POST /renders/{job_id}/retry']) {
      expect((await rest(operation, owner.token, { params: { job_id: unknown } })).status, operation).toBe(404);
    }
    expect((await rest('GET /snapshots/{snapshot_id}', owner.token, { params: { snapshot_id: unknown } })).status).toBe(404);
    for (const operation of ['GET /exports/{export_id}', 'DELETE /exports/{export_id}', 'GET /exports/{export_id}/download-url']) {
      expect((await rest(operation, owner.token, { params: { export_id: unknown } })).status, operation).toBe(404);
    }
    expect((await rest('POST /exports/{export_id}/extend', owner.token, { params: { export_id: unknown }, body: { days: 3 } })).status).toBe(404);
    for (const operation of [
      'GET /nodes/{node_id}', 'GET /nodes/{node_id}/health', 'GET /nodes/{node_id}/health/history', 'GET /nodes/{node_id}/crashes',
      'POST /nodes/{node_id}/restart', 'POST /nodes/{node_id}/release', 'POST /nodes/{node_id}/close-ae',
      'POST /nodes/{node_id}/maintenance', 'DELETE /nodes/{node_id}/maintenance',
    ]) {
      expect((await rest(operation, admin, { params: { node_id: unknown } })).status, operation).toBe(404);
    }
    expect((await rest('PATCH /nodes/{node_id}', admin, { params: { node_id: unknown }, body: { priority: 1 } })).status).toBe(404);
    const node = await onlineNode('lost');
    expect((await rest('POST /node-updates/{update_id}/rollout', admin, { params: { update_id: unknown }, body: { node_ids: [node.id] } })).status).toBe(404);
    expect((await agent(node, 'POST /internal/render/jobs/{job_id}/frames', { params: { job_id: unknown }, body: { frame_job_id: unknown, frame_number: 1 } })).status).toBe(404);
    expect((await agent(node, 'POST /internal/render/jobs/{job_id}/crash', { params: { job_id: unknown }, body: { node_id: node.id } })).status).toBe(404);
    expect((await agent(node, 'POST /internal/nodes/{node_id}/commands/{command_id}/ack', { params: { node_id: node.id, command_id: unknown } })).status).toBe(404);
    expect((await agent(node, 'POST /internal/snapshots/{snapshot_id}/complete', { params: { snapshot_id: unknown }, body: { lease: 'l', width: 1, height: 1, duration_ms: 1 } })).status).toBe(404);
    expect((await agent(node, 'POST /internal/nodes/{node_id}/updates/{update_id}/applied', { params: { node_id: node.id, update_id: unknown }, body: { node_agent_version: '1' } })).status).toBe(404);
  });

  it('of malformed input, and of what the current state does not allow', async () => {
    expect((await rest('GET /renders', owner.token, { query: 'page_size=1000' })).status).toBe(400);
    expect((await rest('GET /renders/{job_id}', owner.token, { params: { job_id: 'not-a-uuid' } })).status).toBe(400);
    const unsynced = await rest('POST /renders', owner.token, { body: { saved_project_id: randomUUID(), quality: 'Low', resolution: 'HD' } });
    expect(unsynced.status).toBe(400);
    expect(unsynced.body.error.details.problems).toEqual([{ path: 'duration_sec', message: 'is required when the saved project has not been synced' }]);
    const poor = await rest('POST /renders', stranger.token, { body: { saved_project_id: randomUUID(), quality: 'High', resolution: 'FourK', duration_sec: 60 } });
    expect(poor.status).toBe(402);
    const noTemplate = randomUUID();
    await rest('PUT /saved-projects/{saved_project_id}', TEST_SERVICE_TOKEN, { params: { saved_project_id: noTemplate }, body: { owner_user_id: owner.id, name: 'Draft', duration_sec: 5 } });
    const untemplated = await rest('POST /snapshots', owner.token, { body: { saved_project_id: noTemplate, scene_key: 'intro', frame_number: 1 } });
    expect(untemplated.status).toBe(400);
    expect(untemplated.body.error.details.problems).toEqual([{ path: 'saved_project_id', message: 'has no aep_file_md5 yet' }]);
    expect((await rest('POST /nodes', admin, { body: { name: 'worker', region: 'eu', node_ip: '10.0.0.8', worker_port: 9000, current_ae_version: '24.1' } })).status).toBe(409);

    const keyed = { body: { saved_project_id: projectId, quality: 'Low', resolution: 'HD' }, headers: { 'Idempotency-Key': randomUUID() } };
    const queued = await rest('POST /renders', owner.token, keyed);
    expect(await rest('POST /renders', owner.token, keyed)).toMatchObject({ status: 201, body: queued.body });
    expect((await rest('POST /renders', owner.token, { ...keyed, body: { ...keyed.body, quality: 'High' } })).status).toBe(409);
    expect((await rest('POST /renders', owner.token, { ...keyed, headers: { 'Idempotency-Key': 'not a key' } })).status).toBe(400);
    expect((await rest('POST /renders/{job_id}/retry', owner.token, { params: { job_id: queued.body.id } })).status).toBe(409);
    expect((await rest('POST /renders/{job_id}/cancel', owner.token, { params: { job_id: queued.body.id } })).status).toBe(200);
    expect((await rest('POST /renders/{job_id}/cancel', owner.token, { params: { job_id: queued.body.id } })).status).toBe(409);
  });
});

/** Where an answer departs from what the document says of it; undefined when the document does not list that answer. */
function problemsBy(document: OpenApiDocument, exchange: Exchange): string[] | undefined {
  const [method = '', path = ''] = exchange.operation.split(' ');
  const operation = document.paths[path]?.[method.toLowerCase() as 'get'];
  if (!operation) return undefined;
  const documented = documentedResponses(document, operation);
  if (!(String(exchange.status) in documented)) return undefined;
  const schema = documented[String(exchange.status)];
  return schema ? schemaProblems(schema, exchange.body) : [];
}

describe('every answer of this suite', () => {
  it('came from every operation of the contract', () => {
    const called = new Set(exchanges.map((exchange) => exchange.operation));
    const operations = listOperations(copy).map((operation) => `${operation.method} ${operation.path}`);
    expect(operations.filter((operation) => !called.has(operation))).toEqual([]);
  });

  it('has a status the project’s copy documents for its operation', () => {
    const undocumented = exchanges.filter((exchange) => !ANY_OPERATION.includes(String(exchange.status)) && problemsBy(copy, exchange) === undefined);
    expect(undocumented.map((exchange) => `${exchange.operation} -> ${exchange.status} ${JSON.stringify(exchange.body)}`)).toEqual([]);
    console.log(`responses: ${exchanges.length} answers of ${new Set(exchanges.map((exchange) => exchange.operation)).size} operations`);
  });

  it('matches the project’s copy', () => {
    const mismatches = exchanges.flatMap((exchange) => (problemsBy(copy, exchange) ?? []).map((problem) => `${exchange.operation} ${exchange.status}: ${problem}`));
    expect(mismatches).toEqual([]);
  });

  it('matches the original contract wherever the original documents the answer', () => {
    const checked = exchanges.filter((exchange) => problemsBy(original, exchange) !== undefined);
    // Every operation of the original gave at least one answer the original documents.
    expect(new Set(checked.map((exchange) => exchange.operation)).size).toBe(listOperations(original).length);
    const mismatches = checked.flatMap((exchange) => (problemsBy(original, exchange) ?? []).map((problem) => `${exchange.operation} ${exchange.status}: ${problem}`));
    expect(mismatches).toEqual([]);
  });
});
