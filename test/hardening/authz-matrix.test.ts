// The REST authorization matrix: every operation of the contract, called by every kind of caller,
// answers what its declared policy says, with the exact status and error code, and a refused call
// changes no row. An operation added to the contract without a row here fails the first test.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { listOperations, loadContract } from '../../rest-compat/contract.ts';
import { restRoutes } from '../../rest-compat/routes.ts';
import { signAgentRequest } from '../../src/adapters/auth/agent-signature.ts';
import { commandOf, completeChunk, placeOn, replicaReady, reportFrames } from '../support/agent.ts';
import { type AgentCommand, startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestNode, type TestUser } from '../support/app.ts';
import { createStoredExport } from '../support/exports.ts';
import { pngBytes, randomMd5 } from '../support/snapshots.ts';
import { updateBody } from '../support/updates.ts';
import {
  BEARER_CALLERS,
  type BearerCaller,
  CALLERS,
  type Caller,
  cancelledJob,
  changedTables,
  createUpdate,
  databaseDigest,
  expectedOutcome,
  jobBody,
  nodeBody,
  type Outcome,
  type Policy,
  nodeInMaintenance,
  registerNode,
  submitJob,
  syncProject,
} from './authz-matrix.ts';

let t: TestApp;
let f: Fixtures;

const NODE_ROLES = ['render', 'render2', 'prepare', 'encoder', 'acks', 'snapshot', 'failingSnapshot', 'bystander', 'admin', 'applies', 'fails'] as const;

interface Fixtures {
  owner: TestUser;
  other: TestUser;
  admin: TestUser;
  projectId: string;
  /** Owned by the owner, Rendering, one chunk held by nodes.render and one by nodes.render2. */
  jobId: string;
  chunk: AgentCommand;
  secondChunk: AgentCommand;
  /** Owned by the owner, Encoding on nodes.encoder. */
  encodingJobId: string;
  encode: AgentCommand;
  /** A close_ae command nodes.acks has received and not acknowledged. */
  pendingCommandId: string;
  /** Owned by the owner, Preparing on nodes.prepare. */
  preparingJobId: string;
  prepare: AgentCommand;
  /** Owned by the owner, Cancelled, so it may be retried. */
  cancelledJobId: string;
  exportId: string;
  /** Owned by the owner, rendering on nodes.snapshot and nodes.failingSnapshot. */
  snapshot: AgentCommand;
  failingSnapshot: AgentCommand;
  updateId: string;
  appliedUpdateId: string;
  failedUpdateId: string;
  nodes: Record<(typeof NODE_ROLES)[number], TestNode>;
}

/** What a caller sends: the path with its parameters, and a JSON body or bytes. */
interface Call {
  path: string;
  body?: unknown;
}

interface Row {
  policy: Policy;
  /** The node whose signature is the good one: the node named in the path or holding the work. */
  node?: (f: Fixtures) => TestNode;
  /** Answers that differ from the policy's, such as 409 STALE_LEASE for a node that holds no lease. */
  except?: Partial<Record<Caller, Outcome>>;
  /**
   * The call a caller makes. An allowed caller of an operation that changes state gets a target
   * of its own (`fresh`), so each allowed call meets the state its success needs.
   */
  call(f: Fixtures, fresh: boolean): Call | Promise<Call>;
  /** What an allowed answer must hold, and what another user's must not. */
  check?(answer: Answer, caller: Caller, f: Fixtures): void;
}

interface Answer {
  status: number;
  body: any;
  text: string;
}

const STALE_LEASE: Outcome = { status: 409, code: 'STALE_LEASE' };
const FUNDS_MINOR = 1_000_000;

const ownerIds = (f: Fixtures) => [f.jobId, f.preparingJobId, f.exportId, f.snapshot.snapshot_id as string];

/** Lists: the owner, admins and services (where allowed) see the owner's object; another user does not. */
const listed = (id: (f: Fixtures) => string) => (answer: Answer, caller: Caller, f: Fixtures) => {
  if (caller === 'owner' || caller === 'admin' || caller === 'service') expect(answer.text).toContain(id(f));
};

const ROWS: Record<string, Row> = {
  'GET /renders': { policy: 'userOrService', call: () => ({ path: '/v1/renders?page_size=100' }), check: listed((f) => f.jobId) },
  'POST /renders': { policy: 'owner', call: (f) => ({ path: '/v1/renders', body: jobBody(f.projectId) }) },
  'GET /renders/{job_id}': { policy: 'ownerOrService', call: (f) => ({ path: `/v1/renders/${f.jobId}` }) },
  'POST /renders/{job_id}/cancel': {
    policy: 'owner',
    call: async (f, fresh) => ({ path: `/v1/renders/${fresh ? await submitJob(t, f.owner, f.projectId) : f.preparingJobId}/cancel`, body: {} }),
  },
  'POST /renders/{job_id}/retry': {
    policy: 'owner',
    call: async (f, fresh) => ({ path: `/v1/renders/${fresh ? await cancelledJob(t, f.owner, f.projectId) : f.cancelledJobId}/retry` }),
  },
  'GET /renders/{job_id}/progress': { policy: 'ownerOrService', call: (f) => ({ path: `/v1/renders/${f.jobId}/progress` }) },
  'GET /renders/{job_id}/logs': { policy: 'ownerOrService', call: (f) => ({ path: `/v1/renders/${f.jobId}/logs` }) },
  'POST /snapshots': {
    policy: 'owner',
    call: (f) => ({ path: '/v1/snapshots', body: { saved_project_id: f.projectId, scene_key: `scene-${randomUUID()}`, frame_number: 1 } }),
  },
  'GET /snapshots/{snapshot_id}': { policy: 'ownerOrService', call: (f) => ({ path: `/v1/snapshots/${f.snapshot.snapshot_id}` }) },
  'GET /exports': { policy: 'userOrService', call: () => ({ path: '/v1/exports' }), check: listed((f) => f.exportId) },
  'GET /exports/{export_id}': { policy: 'ownerOrService', call: (f) => ({ path: `/v1/exports/${f.exportId}` }) },
  'DELETE /exports/{export_id}': {
    policy: 'owner',
    call: async (f, fresh) => ({ path: `/v1/exports/${fresh ? (await createStoredExport(t, f.owner.id)).id : f.exportId}` }),
  },
  'POST /exports/{export_id}/extend': {
    policy: 'owner',
    call: async (f, fresh) => ({ path: `/v1/exports/${fresh ? (await createStoredExport(t, f.owner.id)).id : f.exportId}/extend`, body: { days: 1 } }),
  },
  'GET /exports/{export_id}/download-url': { policy: 'ownerOrService', call: (f) => ({ path: `/v1/exports/${f.exportId}/download-url` }) },
  'GET /nodes': { policy: 'admin', call: () => ({ path: '/v1/nodes' }), check: listed((f) => f.nodes.render.id) },
  'POST /nodes': { policy: 'admin', call: () => ({ path: '/v1/nodes', body: nodeBody() }) },
  'GET /nodes/{node_id}': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.render.id}` }) },
  'PATCH /nodes/{node_id}': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.admin.id}`, body: { priority: 3 } }) },
  'POST /nodes/{node_id}/maintenance': {
    policy: 'admin',
    call: async (f, fresh) => ({ path: `/v1/nodes/${fresh ? await registerNode(t) : f.nodes.admin.id}/maintenance`, body: { reason: 'checks' } }),
  },
  'DELETE /nodes/{node_id}/maintenance': {
    policy: 'admin',
    call: async (f, fresh) => ({ path: `/v1/nodes/${fresh ? await nodeInMaintenance(t, f.admin) : f.nodes.admin.id}/maintenance` }),
  },
  'POST /nodes/{node_id}/restart': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.admin.id}/restart` }) },
  'POST /nodes/{node_id}/release': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.admin.id}/release` }) },
  'POST /nodes/{node_id}/close-ae': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.admin.id}/close-ae` }) },
  'GET /nodes/{node_id}/health': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.render.id}/health` }) },
  'GET /nodes/{node_id}/health/history': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.render.id}/health/history` }) },
  'GET /nodes/{node_id}/crashes': { policy: 'admin', call: (f) => ({ path: `/v1/nodes/${f.nodes.render.id}/crashes` }) },
  'GET /node-updates': { policy: 'admin', call: () => ({ path: '/v1/node-updates' }), check: listed((f) => f.updateId) },
  'POST /node-updates': { policy: 'admin', call: () => ({ path: '/v1/node-updates', body: updateBody() }) },
  'POST /node-updates/{update_id}/rollout': {
    policy: 'admin',
    call: async (f, fresh) =>
      fresh
        ? { path: `/v1/node-updates/${await createUpdate(t, f.admin)}/rollout`, body: { node_ids: [await registerNode(t)] } }
        : { path: `/v1/node-updates/${f.updateId}/rollout`, body: { node_ids: [f.nodes.admin.id] } },
  },
  'POST /internal/nodes/{node_id}/heartbeat': {
    policy: 'node',
    node: (f) => f.nodes.render,
    call: (f) => ({ path: `/v1/internal/nodes/${f.nodes.render.id}/heartbeat`, body: { cpu_pct: 10, recorded_at: new Date().toISOString() } }),
  },
  'POST /internal/nodes/{node_id}/online': {
    policy: 'node',
    node: (f) => f.nodes.bystander,
    call: (f) => ({ path: `/v1/internal/nodes/${f.nodes.bystander.id}/online`, body: { available_ae_versions: ['24.1'] } }),
  },
  'POST /internal/render/jobs/{job_id}/frames': {
    policy: 'node',
    node: (f) => f.nodes.render,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({
      path: `/v1/internal/render/jobs/${f.jobId}/frames`,
      body: { frame_job_id: f.chunk.frame_job_id, frame_number: f.chunk.start_frame, file_size_bytes: 1024, lease: f.chunk.lease },
    }),
  },
  'POST /internal/render/jobs/{job_id}/chunks/{frame_job_id}/complete': {
    policy: 'node',
    node: (f) => f.nodes.render,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({ path: `/v1/internal/render/jobs/${f.jobId}/chunks/${f.chunk.frame_job_id}/complete`, body: { lease: f.chunk.lease } }),
  },
  'POST /internal/render/jobs/{job_id}/chunks/{frame_job_id}/fail': {
    policy: 'node',
    node: (f) => f.nodes.render2,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({
      path: `/v1/internal/render/jobs/${f.jobId}/chunks/${f.secondChunk.frame_job_id}/fail`,
      body: { lease: f.secondChunk.lease, error: 'out of memory' },
    }),
  },
  // After its chunk is done, as a crash while preparing or between chunks is reported.
  'POST /internal/render/jobs/{job_id}/crash': {
    policy: 'node',
    node: (f) => f.nodes.render,
    call: (f) => ({ path: `/v1/internal/render/jobs/${f.jobId}/crash`, body: { node_id: f.nodes.render.id, crash_signal: 'SIGSEGV' } }),
  },
  'PUT /internal/render/jobs/{job_id}/outputs/{format}': {
    policy: 'node',
    node: (f) => f.nodes.encoder,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({ path: `/v1/internal/render/jobs/${f.encodingJobId}/outputs/mp4?lease=${f.encode.lease}`, body: randomBytes(4096) }),
  },
  'POST /internal/render/jobs/{job_id}/encoded': {
    policy: 'node',
    node: (f) => f.nodes.encoder,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({
      path: `/v1/internal/render/jobs/${f.encodingJobId}/encoded`,
      body: { lease: f.encode.lease, width: 1920, height: 1080, duration_sec: 1, formats: ['mp4'] },
    }),
  },
  'POST /internal/nodes/{node_id}/commands/{command_id}/ack': {
    policy: 'node',
    node: (f) => f.nodes.acks,
    call: (f) => ({ path: `/v1/internal/nodes/${f.nodes.acks.id}/commands/${f.pendingCommandId}/ack` }),
  },
  'POST /internal/render/jobs/{job_id}/replica-ready': {
    policy: 'node',
    node: (f) => f.nodes.prepare,
    call: (f) => ({
      path: `/v1/internal/render/jobs/${f.preparingJobId}/replica-ready`,
      body: { node_id: f.nodes.prepare.id, replica_path: 'D:/replicas/authz.aep', lease: f.prepare.lease },
    }),
  },
  'POST /internal/nodes/{node_id}/cache-update': {
    policy: 'node',
    node: (f) => f.nodes.render,
    call: (f) => ({ path: `/v1/internal/nodes/${f.nodes.render.id}/cache-update`, body: { action: 'Downloaded', aep_file_md5: randomMd5() } }),
  },
  'POST /internal/nodes/{node_id}/updates/{update_id}/applied': {
    policy: 'node',
    node: (f) => f.nodes.applies,
    call: (f) => ({ path: `/v1/internal/nodes/${f.nodes.applies.id}/updates/${f.appliedUpdateId}/applied`, body: { node_agent_version: '2.0.0' } }),
  },
  'POST /internal/nodes/{node_id}/updates/{update_id}/failed': {
    policy: 'node',
    node: (f) => f.nodes.fails,
    call: (f) => ({ path: `/v1/internal/nodes/${f.nodes.fails.id}/updates/${f.failedUpdateId}/failed`, body: { error: 'disk full' } }),
  },
  'PUT /internal/snapshots/{snapshot_id}/image': {
    policy: 'node',
    node: (f) => f.nodes.snapshot,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({ path: `/v1/internal/snapshots/${f.snapshot.snapshot_id}/image?lease=${f.snapshot.lease}`, body: pngBytes(2048) }),
  },
  'PUT /internal/snapshots/{snapshot_id}/thumbnail': {
    policy: 'node',
    node: (f) => f.nodes.snapshot,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({ path: `/v1/internal/snapshots/${f.snapshot.snapshot_id}/thumbnail?lease=${f.snapshot.lease}`, body: pngBytes(256) }),
  },
  'POST /internal/snapshots/{snapshot_id}/complete': {
    policy: 'node',
    node: (f) => f.nodes.snapshot,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({
      path: `/v1/internal/snapshots/${f.snapshot.snapshot_id}/complete`,
      body: { lease: f.snapshot.lease, width: 1920, height: 1080, duration_ms: 1200 },
    }),
  },
  'POST /internal/snapshots/{snapshot_id}/fail': {
    policy: 'node',
    node: (f) => f.nodes.failingSnapshot,
    except: { otherNode: STALE_LEASE },
    call: (f) => ({ path: `/v1/internal/snapshots/${f.failingSnapshot.snapshot_id}/fail`, body: { lease: f.failingSnapshot.lease, error: 'AE crashed' } }),
  },
  'PUT /saved-projects/{saved_project_id}': {
    policy: 'service',
    call: () => ({
      path: `/v1/saved-projects/${randomUUID()}`,
      body: { owner_user_id: null, name: 'Synced', duration_sec: 10, aep_file_md5: randomMd5(), ae_version: '24.1' },
    }),
  },
};

// The folder store's signed downloads are served only without S3 (test/config/embedded-defaults.test.ts covers
// them): the signed URL is the credential, so the route answers no caller differently.
const ONLY_EMBEDDED = new Set(['GET /objects/{key}']);

const contract = loadContract();
const operationKey = (operation: { method: string; path: string }) => `${operation.method} ${operation.path}`;
/** The contract's operations and the routes served, which test/contract/routes.test.ts holds to be the same. */
const operations = [
  ...new Set([
    ...listOperations(contract).map(operationKey),
    ...restRoutes.map((route) => operationKey({ method: route.method, path: route.url.replace(/:([a-z_]+)/g, '{$1}') })),
  ]),
].filter((key) => !ONLY_EMBEDDED.has(key));

/** The status the route answers on success (the contract's 2xx for its operations). */
function allowedOutcome(key: string): Outcome {
  const route = restRoutes.find((candidate) => operationKey({ method: candidate.method, path: candidate.url.replace(/:([a-z_]+)/g, '{$1}') }) === key);
  if (!route) throw new Error(`no route serves ${key}`);
  return { status: route.status };
}

async function send(method: string, call: Call, headers: Record<string, string>): Promise<Answer> {
  const bytes = Buffer.isBuffer(call.body);
  const payload = call.body === undefined ? undefined : bytes ? (call.body as Buffer) : JSON.stringify(call.body);
  const response = await fetch(`${t.url}${call.path}`, {
    method,
    headers: { ...(payload === undefined ? {} : { 'content-type': bytes ? 'application/octet-stream' : 'application/json' }), ...headers },
    body: payload,
  });
  const text = await response.text();
  let body: unknown = text;
  if (response.headers.get('content-type')?.includes('application/json') && text !== '') body = JSON.parse(text);
  return { status: response.status, body, text };
}

function signed(node: TestNode, method: string, call: Call, timestamp?: number): Record<string, string> {
  const body = call.body === undefined ? '' : Buffer.isBuffer(call.body) ? call.body : JSON.stringify(call.body);
  return signAgentRequest({ nodeId: node.id, agentKey: node.agentKey, method, path: call.path, body, timestamp });
}

/** The credentials of each caller but `replay`, which resends the `agent` call's exact request. */
function credentials(caller: Exclude<Caller, 'replay'>, method: string, call: Call, node: TestNode): Record<string, string> {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  switch (caller) {
    case 'none':
      return {};
    case 'other':
      return bearer(f.other.token);
    case 'owner':
      return bearer(f.owner.token);
    case 'admin':
      return bearer(f.admin.token);
    case 'service':
      return bearer(TEST_SERVICE_TOKEN);
    case 'agent':
      return signed(node, method, call);
    case 'otherNode':
      return signed(f.nodes.bystander.id === node.id ? f.nodes.render : f.nodes.bystander, method, call);
    case 'wrongSignature':
      // Signed with another node's key under this node's id.
      return { ...signed({ id: node.id, agentKey: f.nodes.admin.agentKey }, method, call), 'X-Node-Id': node.id };
    case 'staleTimestamp':
      return signed(node, method, call, Math.floor(Date.now() / 1000) - 301);
    case 'futureTimestamp':
      // A few seconds past the window, so the request's own travel cannot bring it back inside.
      return signed(node, method, call, Math.floor(Date.now() / 1000) + 305);
  }
}

interface Tried {
  operation: string;
  caller: Caller;
  expected: Outcome;
  got: Outcome;
  leaked: boolean;
}

interface Refusals {
  operation: string;
  callers: Caller[];
  changed: string[];
}

/** A caller's request, ready to send. */
interface Prepared {
  caller: Caller;
  expected: Outcome;
  call: Call;
  headers: Record<string, string>;
}

/**
 * Calls one operation as every caller. The refusals go first, side by side between two digests
 * of the database, which must be equal; then the allowed calls, one by one; then the replay of
 * the agent's exact request, which must change nothing either.
 */
async function tryOperation(key: string, row: Row, refusals: Refusals[]): Promise<Tried[]> {
  const [method = ''] = key.split(' ');
  const allowed = allowedOutcome(key);
  const node = row.node?.(f) ?? f.nodes.render;
  const expectations = CALLERS.map((caller) => ({ caller, expected: row.except?.[caller] ?? expectedOutcome(row.policy, caller, allowed) }));
  const isRefused = (expected: Outcome) => expected.code !== undefined;
  const prepare = async ({ caller, expected }: { caller: Exclude<Caller, 'replay'>; expected: Outcome }): Promise<Prepared> => {
    const call = await row.call(f, !isRefused(expected));
    return { caller, expected, call, headers: credentials(caller, method, call, node) };
  };
  const unchanged = async (requests: Prepared[]) => {
    const before = await databaseDigest(t);
    const tried = await Promise.all(requests.map((request) => attempt(key, method, request, row)));
    const changed = changedTables(before, await databaseDigest(t));
    if (changed.length > 0) refusals.push({ operation: key, callers: requests.map((request) => request.caller), changed });
    return tried;
  };

  const firstCalls = expectations.filter((e): e is { caller: Exclude<Caller, 'replay'>; expected: Outcome } => e.caller !== 'replay');
  const refused = await Promise.all(firstCalls.filter((e) => isRefused(e.expected)).map(prepare));
  const tried = await unchanged(refused);
  let agentRequest = refused.find((request) => request.caller === 'agent');
  for (const expectation of firstCalls.filter((e) => !isRefused(e.expected))) {
    const request = await prepare(expectation);
    tried.push(await attempt(key, method, request, row));
    if (request.caller === 'agent') agentRequest = request;
  }
  const replay = expectations.find((e) => e.caller === 'replay') as { expected: Outcome };
  tried.push(...(await unchanged([{ ...(agentRequest as Prepared), caller: 'replay', expected: replay.expected }])));
  return tried;
}

async function attempt(key: string, method: string, { caller, expected, call, headers }: Prepared, row: Row): Promise<Tried> {
  const answer = await send(method, call, headers);
  if (expected.code === undefined) row.check?.(answer, caller, f);
  // Another user learns nothing of the owner's objects beyond the ids it sent.
  const sent = `${call.path} ${Buffer.isBuffer(call.body) ? '' : JSON.stringify(call.body ?? '')}`;
  const leaked = caller === 'other' && ownerIds(f).some((id) => answer.text.includes(id) && !sent.includes(id));
  const got: Outcome = { status: answer.status, ...(answer.status >= 400 ? { code: answer.body?.error?.code } : {}) };
  if (got.status !== expected.status || got.code !== expected.code) {
    console.error(`${key} as ${caller}: expected ${JSON.stringify(expected)}, got ${answer.status} ${answer.text.slice(0, 300)}`);
  }
  return { operation: key, caller, expected, got, leaked };
}

/** Renders every frame of the job on the node through the agent protocol; answers the encode command that follows. */
async function renderUpToEncode(node: TestNode, jobId: string): Promise<AgentCommand> {
  await replicaReady(t, node, jobId, commandOf(await placeOn(t, node), 'prepare_replica'), 'D:/replicas/authz.aep');
  for (let chunks = 0; chunks < 20; chunks++) {
    const commands = await placeOn(t, node);
    const encode = commands.find((command) => command.type === 'encode');
    if (encode) return encode;
    const chunk = commandOf(commands, 'render_chunk');
    const [first, last] = [chunk.start_frame as number, chunk.end_frame as number];
    await reportFrames(t, node, jobId, chunk, Array.from({ length: last - first + 1 }, (_, index) => first + index));
    await completeChunk(t, node, jobId, chunk);
  }
  throw new Error(`job ${jobId} never reached its encode command`);
}

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  const [owner, other, admin] = await Promise.all([t.user(FUNDS_MINOR), t.user(FUNDS_MINOR), t.user(FUNDS_MINOR, { admin: true })]);
  const nodes = Object.fromEntries(
    await Promise.all(NODE_ROLES.map(async (role) => [role, await t.onlineNode(`authz-${role}-${randomUUID().slice(0, 6)}`)])),
  ) as Fixtures['nodes'];
  const projectId = await syncProject(t, owner);
  f = { owner, other, admin, projectId, nodes } as Fixtures;

  // Work is placed one job at a time, while nothing else waits, so each lands on its node.
  f.encodingJobId = await submitJob(t, owner, projectId);
  f.encode = await renderUpToEncode(nodes.encoder, f.encodingJobId);

  f.preparingJobId = await submitJob(t, owner, projectId);
  f.prepare = commandOf(await placeOn(t, nodes.prepare), 'prepare_replica');

  // Snapshots before the render job, whose second chunk would otherwise go to the snapshot node.
  for (const [scene, node] of [
    ['complete', nodes.snapshot],
    ['fail', nodes.failingSnapshot],
  ] as const) {
    const requested = await t.rest('POST', '/v1/snapshots', {
      token: owner.token,
      body: { saved_project_id: projectId, scene_key: scene, frame_number: 1 },
    });
    expect(requested.status, JSON.stringify(requested.body)).toBe(202);
    const command = commandOf(await placeOn(t, node), 'render_snapshot');
    if (scene === 'complete') f.snapshot = command;
    else f.failingSnapshot = command;
  }

  f.jobId = await submitJob(t, owner, projectId);
  await replicaReady(t, nodes.render, f.jobId, commandOf(await placeOn(t, nodes.render), 'prepare_replica'), 'D:/replicas/authz.aep');
  f.chunk = commandOf(await placeOn(t, nodes.render), 'render_chunk');
  f.secondChunk = commandOf(await placeOn(t, nodes.render2), 'render_chunk');

  expect((await t.rest('POST', `/v1/nodes/${nodes.acks.id}/close-ae`, { token: admin.token })).status).toBe(204);
  f.pendingCommandId = commandOf(await t.heartbeat(nodes.acks), 'close_ae').command_id;

  f.cancelledJobId = await cancelledJob(t, f.owner, f.projectId);
  f.exportId = (await createStoredExport(t, owner.id)).id;
  f.updateId = await createUpdate(t, f.admin);
  for (const [node, key] of [
    [nodes.applies, 'appliedUpdateId'],
    [nodes.fails, 'failedUpdateId'],
  ] as const) {
    const updateId = await createUpdate(t, f.admin);
    const rollout = await t.rest('POST', `/v1/node-updates/${updateId}/rollout`, { token: admin.token, body: { node_ids: [node.id] } });
    expect(rollout.status, JSON.stringify(rollout.body)).toBe(202);
    f[key] = updateId;
  }
});
afterAll(() => t.close());

describe('the REST authorization matrix', () => {
  it('has a row for every operation of the contract and every route served', () => {
    expect(operations.length).toBeGreaterThanOrEqual(45);
    expect(operations.filter((key) => !(key in ROWS))).toEqual([]);
    expect(Object.keys(ROWS).filter((key) => !operations.includes(key))).toEqual([]);
    // The contract and the route table agree on each operation's success status.
    for (const operation of listOperations(contract).filter((o) => !ONLY_EMBEDDED.has(operationKey(o)))) {
      const responses = contract.paths[operation.path]?.[operation.method.toLowerCase() as 'get']?.responses ?? {};
      expect(Object.keys(responses), operationKey(operation)).toContain(String(allowedOutcome(operationKey(operation)).status));
    }
  });

  it('refuses a crash report on a job the node was never given work on, and changes nothing', async () => {
    const before = await databaseDigest(t);
    const crash = await t.signed(f.nodes.bystander, 'POST', `/v1/internal/render/jobs/${f.preparingJobId}/crash`, {
      node_id: f.nodes.bystander.id,
      crash_signal: 'SIGSEGV',
    });
    expect(crash.status, JSON.stringify(crash.body)).toBe(409);
    expect(crash.body.error.code).toBe('STALE_LEASE');
    expect(changedTables(before, await databaseDigest(t))).toEqual([]);
  });

  it("answers the contract's progress WebSocket as GET /renders/{job_id}/progress: the owner's, admins' and services' only", async () => {
    const watch = (token: string | undefined) =>
      new Promise<{ code?: number; jobId?: string }>((resolve, reject) => {
        const socket = new WebSocket(`${t.url.replace('http', 'ws')}/ws/v1/render/${f.jobId}${token ? `?token=${token}` : ''}`);
        const timer = setTimeout(() => reject(new Error('the socket neither sent nor closed within 5 s')), 5000);
        socket.on('message', (data) => {
          clearTimeout(timer);
          resolve({ jobId: JSON.parse(String(data)).job_id });
          socket.close();
        });
        socket.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code });
        });
        socket.on('error', reject);
      });
    const tokens: Record<BearerCaller, string | undefined> = {
      none: undefined,
      other: f.other.token,
      owner: f.owner.token,
      admin: f.admin.token,
      service: TEST_SERVICE_TOKEN,
    };
    for (const caller of BEARER_CALLERS) {
      const expected = expectedOutcome(ROWS['GET /renders/{job_id}/progress']!.policy, caller, { status: 200 });
      expect(await watch(tokens[caller]), caller).toEqual(expected.code === undefined ? { jobId: f.jobId } : { code: 4000 + expected.status });
    }
  });

  it('answers every caller of every operation as its policy says, and refusals change nothing', async () => {
    const tried: Tried[] = [];
    const refusals: Refusals[] = [];
    for (const [key, row] of Object.entries(ROWS)) tried.push(...(await tryOperation(key, row, refusals)));

    const wrong = tried.filter((c) => c.got.status !== c.expected.status || c.got.code !== c.expected.code);
    const leaks = tried.filter((c) => c.leaked);
    console.log(
      `authz matrix (REST): ${Object.keys(ROWS).length} operations x ${CALLERS.length} callers = ${tried.length} cases, ` +
        `${tried.length - wrong.length} as expected, ${refusals.length} operations changed rows on refusal, ${leaks.length} leaks`,
    );
    expect(wrong.map((c) => `${c.operation} as ${c.caller}: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(c.got)}`)).toEqual([]);
    expect(refusals.map((r) => `${r.operation} refusing ${r.callers.join(', ')} changed ${r.changed.join(', ')}`)).toEqual([]);
    expect(leaks.map((c) => `${c.operation} as ${c.caller}`)).toEqual([]);
    expect(tried.length).toBe(Object.keys(ROWS).length * CALLERS.length);
  });
});
