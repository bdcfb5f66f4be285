import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegisterRenderNodeDocument, RenderNodeDocument, RenderNodesDocument } from '../generated/graphql.ts';
import { problemPaths, startTestApp, type TestApp } from '../support/app.ts';
import { FREE_RENDER, submitRender } from '../support/jobs.ts';

let t: TestApp;
let admin: string;
const adminId = randomUUID();
let user: string;

const nodeBody = (name: string) => ({
  name,
  region: 'eu-west',
  node_ip: '10.1.2.3',
  worker_port: 8181,
  current_ae_version: '24.1',
  ram_gb: 64,
  cpu_cores: 16,
});

const registerNode = (name: string) => t.node(name, { registration: nodeBody(name) });

async function nodeCount() {
  return t.app.services.db.prisma.renderNode.count();
}

beforeAll(async () => {
  t = await startTestApp();
  admin = await t.token(adminId, { admin: true });
  user = await t.token(randomUUID());
});
afterAll(() => t.close());

describe('registering a node', () => {
  it('answers the node with its agent key once, over REST', async () => {
    const response = await t.rest('POST', '/v1/nodes', { token: admin, body: nodeBody('rest-node') });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      name: 'rest-node',
      region: 'eu-west',
      node_ip: '10.1.2.3',
      worker_port: 8181,
      status: 'Registered',
      node_kind: 'Farm',
      ram_gb: 64,
      cached_template_count: 0,
    });
    expect(response.body.agent_key).toMatch(/^[0-9a-f]{64}$/);
    const detail = await t.rest('GET', `/v1/nodes/${response.body.id}`, { token: admin });
    expect(detail.status).toBe(200);
    expect(detail.body.agent_key).toBeUndefined();
    expect(detail.body).toMatchObject({ available_ae_versions: ['24.1'], cached_template_md5s: [] });
  });

  it('answers the same through GraphQL', async () => {
    const result = await t.gql(
      RegisterRenderNodeDocument,
      { input: { name: 'gql-node', region: 'us-east', nodeIp: '10.9.9.9', workerPort: 9000, currentAeVersion: '25.0' } },
      admin,
    );
    expect(result.errors).toBeUndefined();
    const payload = result.data?.registerRenderNode;
    expect(payload?.__typename).toBe('RegisteredRenderNode');
    if (payload?.__typename !== 'RegisteredRenderNode') return;
    expect(payload.agentKey).toMatch(/^[0-9a-f]{64}$/);
    expect(payload.node).toMatchObject({ name: 'gql-node', region: 'us-east', status: 'Registered' });
  });

  it('refuses bad input with the error body and writes nothing', async () => {
    const before = await nodeCount();
    const response = await t.rest('POST', '/v1/nodes', {
      token: admin,
      body: { ...nodeBody('bad'), worker_port: 70000, node_ip: 'not-an-ip', surprise: true },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    const paths = response.body.error.details.problems.map((problem: { path: string }) => problem.path).sort();
    expect(paths).toEqual(['node_ip', 'surprise', 'worker_port']);
    const missing = await t.rest('POST', '/v1/nodes', { token: admin, body: { name: 'x' } });
    expect(missing.status).toBe(400);
    const notJson = await t.rest('POST', '/v1/nodes', { token: admin, rawBody: '{"name":' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe('VALIDATION_FAILED');
    const array = await t.rest('POST', '/v1/nodes', { token: admin, body: [1, 2] });
    expect(array.status).toBe(400);
    const gql = await t.gql(
      RegisterRenderNodeDocument,
      { input: { name: 'bad', region: 'eu west!', nodeIp: '1.2.3.4', workerPort: 0, currentAeVersion: '24' } },
      admin,
    );
    expect(gql.data?.registerRenderNode.__typename).toBe('ValidationError');
    expect(await nodeCount()).toBe(before);
  });

  it('refuses a second node with the same name with 409', async () => {
    await registerNode('twin');
    const before = await nodeCount();
    const again = await t.rest('POST', '/v1/nodes', { token: admin, body: nodeBody('twin') });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('CONFLICT');
    expect(await nodeCount()).toBe(before);
  });

  it('is for admins only: 401 without a token, 403 for users and service tokens', async () => {
    const before = await nodeCount();
    expect((await t.rest('POST', '/v1/nodes', { body: nodeBody('anon') })).status).toBe(401);
    expect((await t.rest('POST', '/v1/nodes', { token: user, body: nodeBody('user') })).status).toBe(403);
    expect((await t.rest('POST', '/v1/nodes', { token: 'test-service-token', body: nodeBody('svc') })).status).toBe(403);
    expect((await t.rest('POST', '/v1/nodes', { token: 'not-a-jwt', body: nodeBody('junk') })).status).toBe(401);
    const gql = await t.gql(
      RegisterRenderNodeDocument,
      { input: { name: 'user-node', region: 'eu', nodeIp: '1.2.3.4', workerPort: 1, currentAeVersion: '24' } },
      user,
    );
    expect(gql.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await nodeCount()).toBe(before);
  });
});

describe('listing and reading nodes', () => {
  it('filters by region and status through both doors', async () => {
    const node = await registerNode('lister');
    await t.rest('POST', '/v1/nodes', { token: admin, body: { ...nodeBody('elsewhere'), region: 'ap-south' } });
    const rest = await t.rest('GET', '/v1/nodes?region=ap-south', { token: admin });
    expect(rest.status).toBe(200);
    expect(rest.body.data.map((n: { name: string }) => n.name)).toEqual(['elsewhere']);
    const registered = await t.rest('GET', '/v1/nodes?status=Registered', { token: admin });
    expect(registered.body.data.map((n: { id: string }) => n.id)).toContain(node.id);
    const online = await t.rest('GET', '/v1/nodes?status=Online&region=eu-west', { token: admin });
    expect(online.body.data.map((n: { id: string }) => n.id)).not.toContain(node.id);
    const gql = await t.gql(RenderNodesDocument, { region: 'ap-south' }, admin);
    expect(gql.data?.renderNodes.map((n) => n.name)).toEqual(['elsewhere']);
    const single = await t.gql(RenderNodeDocument, { id: node.id }, admin);
    expect(single.data?.renderNode).toMatchObject({ id: node.id, name: 'lister', ramGb: 64 });
  });

  it('answers 400 for an unknown status filter and 404 for an unknown node', async () => {
    const badStatus = await t.rest('GET', '/v1/nodes?status=Sleeping', { token: admin });
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.details.problems[0].path).toBe('status');
    const missing = await t.rest('GET', `/v1/nodes/${randomUUID()}`, { token: admin });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
    const notUuid = await t.rest('GET', '/v1/nodes/abc', { token: admin });
    expect(notUuid.status).toBe(400);
    const gql = await t.gql(RenderNodeDocument, { id: randomUUID() }, admin);
    expect(gql.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('refuses users and anonymous callers', async () => {
    expect((await t.rest('GET', '/v1/nodes')).status).toBe(401);
    expect((await t.rest('GET', '/v1/nodes', { token: user })).status).toBe(403);
    const gql = await t.gql(RenderNodesDocument, {}, user);
    expect(gql.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const anonymous = await t.gql(RenderNodesDocument, {});
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('the signed agent protocol', () => {
  const md5 = 'a'.repeat(32);

  it('online records what the agent runs and holds', async () => {
    const node = await registerNode('agent-online');
    const path = `/v1/internal/nodes/${node.id}/online`;
    const response = await t.signed(node, 'POST', path, {
      node_agent_version: '3.2.1',
      current_ae_version: '24.2',
      available_ae_versions: ['24.1', '24.2'],
      ram_gb: 128,
      cpu_cores: 32,
      cache_used_gb: 12,
      cached_template_md5s: [md5, 'B'.repeat(32)],
    });
    expect(response.status).toBe(200);
    expect(response.body.next_heartbeat_in_sec).toBeGreaterThan(0);
    const detail = await t.rest('GET', `/v1/nodes/${node.id}`, { token: admin });
    expect(detail.body).toMatchObject({
      status: 'Online',
      node_agent_version: '3.2.1',
      current_ae_version: '24.2',
      ram_gb: 128,
      cpu_cores: 32,
      cache_used_gb: 12,
      cached_template_count: 2,
      cached_template_md5s: [md5, 'b'.repeat(32)],
    });
    expect(detail.body.available_ae_versions.sort()).toEqual(['24.1', '24.2']);
    expect(detail.body.last_heartbeat_at).not.toBeNull();

    // A later online with a smaller cache forgets evicted templates.
    const again = await t.signed(node, 'POST', path, { cached_template_md5s: [md5] });
    expect(again.status).toBe(200);
    const after = await t.rest('GET', `/v1/nodes/${node.id}`, { token: admin });
    expect(after.body.cached_template_md5s).toEqual([md5]);
  });

  it('an idle node checks back in 1 s while a job waits for a node, and in 5 s once none does', async () => {
    const node = await registerNode('agent-work-waiting');
    const path = `/v1/internal/nodes/${node.id}/heartbeat`;
    // Work no node can take (an After Effects version none has) waits in the queue.
    const owner = await t.user(1_000_000);
    const waiting = await submitRender(t, owner.token, { ...FREE_RENDER, ae_version: '0.1' });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await t.signed(node, 'POST', path, { status: 'Online' })).body).toMatchObject({ next_heartbeat_in_sec: 1, pending_commands: [] });
    expect((await t.rest('POST', `/v1/renders/${waiting.id}/cancel`, { token: owner.token })).status).toBe(200);
    // Each replica looks at the queue at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await t.signed(node, 'POST', path, { status: 'Online' })).body).toMatchObject({ next_heartbeat_in_sec: 5, pending_commands: [] });
  });

  it('heartbeat stores a health sample, updates the node and delivers pending commands', async () => {
    const node = await registerNode('agent-heartbeat');
    const prisma = t.app.services.db.prisma;
    // A command waiting for the node: an admin's close-ae.
    expect((await t.rest('POST', `/v1/nodes/${node.id}/close-ae`, { token: admin })).status).toBe(204);
    const path = `/v1/internal/nodes/${node.id}/heartbeat`;
    const response = await t.signed(node, 'POST', path, {
      node_id: node.id,
      status: 'Busy',
      cpu_pct: 87,
      ram_available_mb: 2048,
      ae_running: true,
      current_frame: 42,
      cache_used_gb: 5,
    });
    expect(response.status).toBe(200);
    // Commands were just handed out: the node checks back sooner.
    expect(response.body.next_heartbeat_in_sec).toBe(1);
    expect(response.body.pending_commands).toEqual([{ type: 'close_ae', command_id: expect.any(String), requested_by: adminId }]);
    const command = { id: response.body.pending_commands[0].command_id as string };
    const stored = await prisma.renderNode.findUniqueOrThrow({ where: { id: node.id } });
    expect(stored).toMatchObject({ status: 'Busy', lastCpuPct: 87, lastRamAvailableMb: 2048, aeRunning: true, currentFrame: 42 });
    const samples = await prisma.nodeHealthSample.findMany({ where: { nodeId: node.id } });
    expect(samples).toHaveLength(1);
    expect(samples[0]).toMatchObject({ cpuPct: 87, status: 'Busy' });
    // Delivered until acknowledged; once acknowledged, an idle node with no work waiting slows down.
    const again = await t.signed(node, 'POST', path, { status: 'Busy', cpu_pct: 88 });
    expect(again.body.pending_commands.map((c: { command_id: string }) => c.command_id)).toEqual([command.id]);
    expect((await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/commands/${command.id}/ack`)).status).toBe(204);
    const idle = await t.signed(node, 'POST', path, { status: 'Online', cpu_pct: 3 });
    expect(idle.body).toMatchObject({ next_heartbeat_in_sec: 5, pending_commands: [] });
    const delivered = await prisma.nodeCommand.findUniqueOrThrow({ where: { id: command.id } });
    expect(delivered.deliveryCount).toBe(2);
    expect(delivered.status).toBe('Acknowledged');
  });

  it('refuses unsigned, tampered, stale, replayed and cross-node requests and changes nothing', async () => {
    const node = await registerNode('agent-refusals');
    const other = await registerNode('agent-other');
    const prisma = t.app.services.db.prisma;
    const path = `/v1/internal/nodes/${node.id}/heartbeat`;
    const body = { cpu_pct: 10 };

    const unsigned = await t.rest('POST', path, { body });
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.error.code).toBe('UNAUTHENTICATED');

    const wrongKey = await t.signed({ id: node.id, agentKey: other.agentKey }, 'POST', path, body);
    expect(wrongKey.status).toBe(401);

    const stale = await t.signed(node, 'POST', path, body, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.status).toBe(401);

    const crossNode = await t.signed(other, 'POST', path, body);
    expect(crossNode.status).toBe(403);

    const timestamp = Math.floor(Date.now() / 1000);
    const first = await t.signed(node, 'POST', path, body, { timestamp });
    expect(first.status).toBe(200);
    const replay = await t.signed(node, 'POST', path, body, { timestamp });
    expect(replay.status).toBe(401);
    expect(replay.body.error.message).toMatch(/replay/i);

    // A user token is not an agent signature.
    expect((await t.rest('POST', path, { token: admin, body })).status).toBe(401);

    const samples = await prisma.nodeHealthSample.count({ where: { nodeId: { in: [node.id, other.id] } } });
    expect(samples).toBe(1);
  });

  it('answers 400 for bad heartbeat and online bodies, 403 for a body naming another node, 404 for unknown nodes', async () => {
    const node = await registerNode('agent-bad-input');
    const prisma = t.app.services.db.prisma;
    const heartbeat = `/v1/internal/nodes/${node.id}/heartbeat`;
    const bad = await t.signed(node, 'POST', heartbeat, { cpu_pct: 150, status: 'Maintenance' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(['cpu_pct', 'status']);
    const otherId = await t.signed(node, 'POST', heartbeat, { node_id: randomUUID() });
    expect(otherId.status).toBe(403);
    const online = await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/online`, { cached_template_md5s: ['nope'] });
    expect(online.status).toBe(400);
    expect(online.body.error.details.problems[0].path).toBe('cached_template_md5s.0');

    const ghost = { id: randomUUID(), agentKey: '' };
    const { deriveAgentKey } = await import('../../src/adapters/auth/agent-signature.ts');
    ghost.agentKey = deriveAgentKey('test-node-hmac-secret-0123456789abcdef', ghost.id);
    const unknown = await t.signed(ghost, 'POST', `/v1/internal/nodes/${ghost.id}/heartbeat`, {});
    expect(unknown.status).toBe(404);

    expect(await prisma.nodeHealthSample.count({ where: { nodeId: node.id } })).toBe(0);
    const stored = await prisma.renderNode.findUniqueOrThrow({ where: { id: node.id } });
    expect(stored.status).toBe('Registered');
  });

  it('refuses an After Effects memory figure that is negative, fractional, too big or no number, and changes nothing', async () => {
    const node = await registerNode('agent-bad-ae-memory');
    const path = `/v1/internal/nodes/${node.id}/heartbeat`;
    const health = async () => (await t.rest('GET', `/v1/nodes/${node.id}/health`, { token: admin })).body;
    const samples = async () => (await t.rest('GET', `/v1/nodes/${node.id}/health/history`, { token: admin })).body.data.length;
    expect((await t.signed(node, 'POST', path, { cpu_pct: 10, ae_memory_mb: 2_048 })).status).toBe(200);
    const before = await health();
    expect(before).toMatchObject({ cpu_pct: 10, ae_memory_mb: 2_048 });

    for (const bad of [-1, 1.5, 100_000_001, '2048', true]) {
      const refused = await t.signed(node, 'POST', path, { cpu_pct: 90, ae_memory_mb: bad });
      expect(refused.status, JSON.stringify(bad)).toBe(400);
      expect(refused.body.error.code).toBe('VALIDATION_FAILED');
      expect(problemPaths(refused.body)).toEqual(['ae_memory_mb']);
    }
    expect(await health()).toEqual(before);
    expect(await samples()).toBe(1);

    // The bound itself is a figure like any other.
    expect((await t.signed(node, 'POST', path, { ae_memory_mb: 100_000_000 })).status).toBe(200);
    expect(await health()).toMatchObject({ ae_memory_mb: 100_000_000 });
  });
});
