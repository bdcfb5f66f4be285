// The simulated fleet against the real service: registration, signed online reports and
// heartbeats, command execution, snapshots, kill and revive.
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, inflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, type FleetEvent, type FleetOptions, startFleet } from '../../agent-sim/fleet.ts';
import { download, startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/poll.ts';
import { syncSavedProject } from '../support/projects.ts';
import { pendingCommand } from '../support/rows.ts';

let t: TestApp;
let admin: string;
const running: Fleet[] = [];

beforeAll(async () => {
  t = await startTestApp();
  admin = await t.token(randomUUID(), { admin: true });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((fleet) => fleet.stop()));
});
afterAll(() => t.close());

async function fleetOf(options: Partial<FleetOptions> & { nodes: number }, events: FleetEvent[] = []) {
  const fleet = await startFleet({
    url: t.url,
    adminToken: admin,
    heartbeatSeconds: 0.2,
    frameMs: 20,
    seed: 1,
    onEvent: (event) => events.push(event),
    ...options,
  });
  running.push(fleet);
  return fleet;
}

async function nodeDetail(id: string) {
  const answer = await t.rest('GET', `/v1/nodes/${id}`, { token: admin });
  expect(answer.status).toBe(200);
  return answer.body as { status: string; last_heartbeat_at: string; node_agent_version: string; current_job_id: string | null };
}

async function aeMemoryOf(id: string) {
  const answer = await t.rest('GET', `/v1/nodes/${id}/health`, { token: admin });
  expect(answer.status).toBe(200);
  return answer.body.ae_memory_mb as number | null;
}

function chunkPayload(start: number, end: number) {
  return { job_id: randomUUID(), frame_job_id: randomUUID(), start_frame: start, end_frame: end, frame_rate: 30 };
}

/** Errors a signature or identity problem would cause; none is acceptable from the simulator. */
function authErrors(fleet: Fleet) {
  const { errors } = fleet.stats();
  return { 401: errors['401'] ?? 0, 403: errors['403'] ?? 0, 400: errors['400'] ?? 0, internal: errors.internal ?? 0 };
}

describe('a fleet registered with an admin token', () => {
  it('registers its nodes, comes online and heartbeats with signatures the service accepts', async () => {
    const events: FleetEvent[] = [];
    const fleet = await fleetOf({ nodes: 3, region: ['sim-a', 'sim-b'] }, events);
    expect(fleet.nodes).toHaveLength(3);
    expect(new Set(fleet.nodes).size).toBe(3);
    expect(events.filter((event) => event.type === 'registered')).toHaveLength(3);
    expect(fleet.stats()).toMatchObject({ nodes: 3, alive: 3, online: 3 });

    await until('six heartbeats', () => fleet.stats().heartbeats >= 6);
    const listed = await t.rest('GET', '/v1/nodes?status=Online', { token: admin });
    expect(listed.status).toBe(200);
    const mine = (listed.body.data as { id: string; name: string; region: string }[]).filter((node) =>
      fleet.nodes.includes(node.id),
    );
    expect(mine).toHaveLength(3);
    expect(mine.map((node) => node.region).sort()).toEqual(['sim-a', 'sim-a', 'sim-b']);
    for (const node of mine) expect(node.name).toMatch(/^sim-[0-9a-f]{6}-[1-3]$/);
    expect(authErrors(fleet)).toEqual({ 401: 0, 403: 0, 400: 0, internal: 0 });
    const heartbeatEvents = events.filter((event) => event.type === 'heartbeat').length;
    expect(heartbeatEvents).toBeGreaterThanOrEqual(fleet.stats().heartbeats - 3);
  });

  it('runs nodes registered before from their keys', async () => {
    const registered = await t.rest('POST', '/v1/nodes', {
      token: admin,
      body: { name: `keyed-${randomUUID().slice(0, 8)}`, region: 'sim', node_ip: '10.0.0.9', worker_port: 8181, current_ae_version: '24.1' },
    });
    expect(registered.status).toBe(201);
    const fleet = await startFleet({
      url: t.url,
      nodes: 1,
      keys: [{ id: registered.body.id, agentKey: registered.body.agent_key }],
      heartbeatSeconds: 0.2,
    });
    running.push(fleet);
    await until('two heartbeats', () => fleet.stats().heartbeats >= 2);
    expect((await nodeDetail(registered.body.id)).status).toBe('Online');
  });

  it('refuses to start without an admin token or keys, and reports a refused registration', async () => {
    await expect(startFleet({ url: t.url, nodes: 1 })).rejects.toThrow(/adminToken .* or keys/);
    const user = await t.token(randomUUID());
    await expect(startFleet({ url: t.url, nodes: 2, adminToken: user })).rejects.toThrow(/Registering node sim-.* failed \(FORBIDDEN\)/);
  });
});

describe('killing and reviving a node', () => {
  it('stops every request of a killed node while the others carry on', async () => {
    const events: FleetEvent[] = [];
    const fleet = await fleetOf({ nodes: 2 }, events);
    const [victim, survivor] = fleet.nodes as [string, string];
    await until('heartbeats of both nodes', () =>
      [victim, survivor].every((id) => events.some((event) => event.type === 'heartbeat' && event.nodeId === id)),
    );
    fleet.kill(victim);
    expect(fleet.stats()).toMatchObject({ alive: 1, online: 1 });
    // A heartbeat already on the wire may still land; nothing is sent after it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lastSeen = (await nodeDetail(victim)).last_heartbeat_at;
    const afterKill = events.length;
    const survivorBeats = fleet.stats().heartbeats;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await nodeDetail(victim)).last_heartbeat_at).toBe(lastSeen);
    expect(events.slice(afterKill).filter((event) => 'nodeId' in event && event.nodeId === victim)).toEqual([]);
    expect(fleet.stats().heartbeats).toBeGreaterThanOrEqual(survivorBeats + 3);
  });

  it('abandons the chunk in hand and reports it once, late, when it comes back', async () => {
    const events: FleetEvent[] = [];
    const fleet = await fleetOf({ nodes: 1, frameMs: 100 }, events);
    const [node] = fleet.nodes as [string];
    const chunk = chunkPayload(0, 50);
    await pendingCommand(t, node, 'render_chunk', chunk, 'lease-1');
    await until('two frames', () => fleet.stats().framesRendered >= 2);
    fleet.kill(node);
    const rendered = fleet.stats().framesRendered;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fleet.stats().framesRendered).toBe(rendered);

    const late = await fleet.revive(node);
    expect(late?.path).toBe(`/v1/internal/render/jobs/${chunk.job_id}/frames`);
    expect(fleet.stats().lateReports.sent).toBe(1);
    expect(events.filter((event) => event.type === 'late-report')).toHaveLength(1);
    expect(fleet.stats()).toMatchObject({ alive: 1, online: 1 });
    const beats = fleet.stats().heartbeats;
    await until('heartbeats after the revival', () => fleet.stats().heartbeats >= beats + 2);
    // The revived node does not pick its old chunk up again on its own.
    expect(fleet.stats().framesRendered).toBe(rendered);
    await expect(fleet.revive(node)).rejects.toThrow(/not dead/);
  });
});

describe('executing commands', () => {
  it('acknowledges and renders a chunk frame by frame, once, whatever the reports are answered', async () => {
    const events: FleetEvent[] = [];
    const fleet = await fleetOf({ nodes: 1 }, events);
    const [node] = fleet.nodes as [string];
    const chunk = chunkPayload(10, 14);
    const command = await pendingCommand(t, node, 'render_chunk', chunk, 'lease-a');
    await until('the five frames', () => fleet.stats().framesRendered === 5);
    await until('the command acknowledged', async () =>
      (await t.app.services.db.prisma.nodeCommand.findUniqueOrThrow({ where: { id: command.id } })).status !== 'Pending',
    );
    const beats = fleet.stats().heartbeats;
    await until('more heartbeats', () => fleet.stats().heartbeats >= beats + 3);
    expect(fleet.stats().commands).toEqual({ render_chunk: 1 });
    expect(fleet.stats().framesRendered).toBe(5);
    const frames = events.filter((event) => event.type === 'frame');
    expect(frames.map((event) => event.type === 'frame' && event.frame)).toEqual([10, 11, 12, 13, 14]);
    expect(authErrors(fleet)).toEqual({ 401: 0, 403: 0, 400: 0, internal: 0 });
  });

  it('keeps heartbeating through a hang and lets close_ae free the node', async () => {
    const events: FleetEvent[] = [];
    const fleet = await fleetOf({ nodes: 1, hangRate: 1 }, events);
    const [node] = fleet.nodes as [string];
    const chunk = chunkPayload(0, 9);
    await pendingCommand(t, node, 'render_chunk', chunk, 'lease-h');
    await until('the hang', () => fleet.stats().chunksHung === 1);
    const beats = fleet.stats().heartbeats;
    await until('heartbeats while hung', () => fleet.stats().heartbeats >= beats + 3);
    const hung = await nodeDetail(node);
    expect(hung.status).toBe('Busy');
    expect(hung.current_job_id).toBe(chunk.job_id);
    // After Effects holds a few GB while it works, hung or not.
    const busyMemory = await aeMemoryOf(node);
    expect(busyMemory).toBeGreaterThanOrEqual(2_500);
    expect(busyMemory).toBeLessThanOrEqual(7_000);

    await pendingCommand(t, node, 'close_ae', {});
    await until('the chunk abandoned', () =>
      events.some((event) => event.type === 'abandoned' && event.reason === 'close_ae' && event.jobId === chunk.job_id),
    );
    await until('the node free again', async () => (await nodeDetail(node)).status === 'Online');
    expect(await aeMemoryOf(node)).toBe(0);
    expect(fleet.stats().commands).toEqual({ render_chunk: 1, close_ae: 1 });
  });

  it('drops a cancelled job and restarts on request', async () => {
    const events: FleetEvent[] = [];
    const fleet = await fleetOf({ nodes: 1, frameMs: 100 }, events);
    const [node] = fleet.nodes as [string];
    const chunk = chunkPayload(0, 100);
    await pendingCommand(t, node, 'render_chunk', chunk, 'lease-c');
    await until('a frame', () => fleet.stats().framesRendered >= 1);
    await pendingCommand(t, node, 'cancel_job', { job_id: chunk.job_id, reason: 'user' });
    await until('the cancellation', () =>
      events.some((event) => event.type === 'abandoned' && event.reason === 'cancel_job'),
    );

    await pendingCommand(t, node, 'restart', {});
    await until('the restart', () => events.some((event) => event.type === 'offline'));
    const offlineAt = events.findIndex((event) => event.type === 'offline');
    await until('online again', () => events.slice(offlineAt).some((event) => event.type === 'online'));
    expect(fleet.stats().commands).toMatchObject({ render_chunk: 1, cancel_job: 1, restart: 1 });
    expect(fleet.stats().framesRendered).toBeLessThan(100);
  });

  it('installs an update and comes back with a bumped agent version', async () => {
    const events: FleetEvent[] = [];
    const fleet = await fleetOf({ nodes: 1 }, events);
    const [node] = fleet.nodes as [string];
    const before = (await nodeDetail(node)).node_agent_version;
    await pendingCommand(t, node, 'update_software', { update_id: randomUUID(), update_number: 7 });
    await until('the new version on the service', async () => (await nodeDetail(node)).node_agent_version !== before);
    expect((await nodeDetail(node)).node_agent_version).toBe('1.0.1');
    expect(fleet.stats().commands).toEqual({ update_software: 1 });
  });

  it('leaves commands it cannot run unacknowledged, counting each once', async () => {
    // The service sends no command the simulator cannot run: a stand-in sends one of a later version.
    const requests: string[] = [];
    const server = createServer((request, response) => {
      requests.push(`${request.method} ${request.url}`);
      request.resume();
      const commands = request.url?.endsWith('/heartbeat') ? [{ type: 'render_hologram', command_id: 'later-1' }] : [];
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ next_heartbeat_in_sec: 0.2, pending_commands: commands }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const fleet = await fleetOf({ nodes: 1, url, keys: [{ id: randomUUID(), agentKey: 'stand-in' }] });
      await until('the command seen', () => fleet.stats().unsupportedCommands.render_hologram === 1);
      const beats = fleet.stats().heartbeats;
      await until('more heartbeats', () => fleet.stats().heartbeats >= beats + 2);
      expect(fleet.stats().unsupportedCommands).toEqual({ render_hologram: 1 });
      expect(requests.filter((request) => request.includes('/ack'))).toEqual([]);
      await fleet.stop();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('snapshots', () => {
  it('renders a requested still: acknowledges the command, uploads PNGs of the size it reports, completes it', async () => {
    const user = await t.user(0);
    const projectId = randomUUID();
    const md5 = createHash('md5').update(projectId).digest('hex');
    await syncSavedProject(t, { owner_user_id: user.id, name: 'Promo', duration_sec: 10, aep_file_md5: md5, ae_version: '24.1' }, projectId);
    const events: FleetEvent[] = [];
    // Holding the template, its node is the one the still goes to.
    const fleet = await fleetOf({ nodes: 1, templates: [md5] }, events);
    const asked = await t.rest('POST', '/v1/snapshots', { token: user.token, body: { saved_project_id: projectId, scene_key: 'intro', frame_number: 3 } });
    expect(asked.status).toBe(202);
    const id = asked.body.snapshot_id as string;
    const read = async () => (await t.rest('GET', `/v1/snapshots/${id}`, { token: user.token })).body;
    await until('the still cached', async () => (await read()).status === 'Cached', { timeoutMs: 30_000 });

    const cached = await read();
    expect(cached).toMatchObject({ width: 320, height: 180, duration_ms: expect.any(Number) });
    const [image, thumbnail] = await Promise.all([download(cached.image_url), download(cached.thumbnail_url)]);
    expect(image).toMatchObject({ status: 200, contentType: 'image/png' });
    expect(pngFacts(image.bytes)).toEqual({ width: 320, height: 180 });
    expect(pngFacts(thumbnail.bytes)).toEqual({ width: 160, height: 90 });
    expect(fleet.stats()).toMatchObject({ snapshots: 1, commands: { render_snapshot: 1 }, unsupportedCommands: {} });
    expect(events).toContainEqual({ type: 'snapshot-rendered', nodeId: fleet.nodes[0], snapshotId: id });
    expect(authErrors(fleet)).toEqual({ 401: 0, 403: 0, 400: 0, internal: 0 });
  });
});

/** The size of a PNG, once every chunk's CRC holds and its pixels inflate to that size (8-bit RGB). */
function pngFacts(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const chunks = new Map<string, Buffer>();
  for (let at = 8; at < bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    const typed = bytes.subarray(at + 4, at + 8 + length);
    expect(bytes.readUInt32BE(at + 8 + length)).toBe(crc32(typed));
    chunks.set(typed.subarray(0, 4).toString('ascii'), typed.subarray(4));
    at += 12 + length;
  }
  const header = chunks.get('IHDR')!;
  const width = header.readUInt32BE(0);
  const height = header.readUInt32BE(4);
  expect([header[8], header[9]]).toEqual([8, 2]);
  expect(inflateSync(chunks.get('IDAT')!).length).toBe(height * (1 + width * 3));
  expect(chunks.has('IEND')).toBe(true);
  return { width, height };
}
