// Snapshots through both doors, with the agent's side of each render driven by hand: the
// scheduler runs only when a test calls it, and the clock moves only when a test moves it.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SNAPSHOT_TTL_DAYS } from '../../src/domain/snapshots/snapshot-service.ts';
import { RequestSnapshotDocument, SnapshotDocument, SnapshotEntitiesDocument } from '../generated/graphql.ts';
import { download, problemPaths, startTestApp, TEST_SERVICE_TOKEN, type TestApp, type TestUser } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { LONG_LIVED, pngBytes, snapshotFixtures } from '../support/snapshots.ts';

const DAY_MS = 24 * 3600 * 1000;

let t: TestApp;
const clock = new ManualClock();
let f: ReturnType<typeof snapshotFixtures>;

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  f = snapshotFixtures(t);
});
afterAll(() => t.close());
beforeEach(() => f.resetFleet());

const request = (user: TestUser | null, body: unknown) => t.rest('POST', '/v1/snapshots', { ...(user ? { token: user.token } : {}), body });
const fetchSnapshot = (user: TestUser, id: string) => t.rest('GET', `/v1/snapshots/${id}`, { token: user.token });

async function expectDownloads(body: { image_url: string; thumbnail_url: string }, files: { image: Buffer; thumbnail: Buffer }) {
  const [image, thumbnail] = await Promise.all([download(body.image_url), download(body.thumbnail_url)]);
  expect(image).toMatchObject({ status: 200, contentType: 'image/png' });
  expect(image.bytes.equals(files.image)).toBe(true);
  expect(thumbnail.status).toBe(200);
  expect(thumbnail.bytes.equals(files.thumbnail)).toBe(true);
}

describe('a snapshot that is not cached', () => {
  it('is Pending, goes to a node holding the template, is Rendering once acknowledged, then Cached', async () => {
    const user = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(user);
    // The node without the template is otherwise the better one.
    const without = await t.onlineNode(undefined, { templates: [], priority: 10 });
    const holder = await t.onlineNode(undefined, { templates: [project.md5] });

    const asked = await request(user, { saved_project_id: project.id, scene_key: 'intro', frame_number: 12 });
    expect(asked.status).toBe(202);
    expect(asked.body).toEqual({ snapshot_id: expect.any(String), status: 'Pending', image_url: null, thumbnail_url: null, expires_at: null });
    const id = asked.body.snapshot_id as string;
    expect((await fetchSnapshot(user, id)).body).toMatchObject({ id, status: 'Pending', saved_project_id: project.id, scene_key: 'intro', frame_number: 12 });

    const pass = await t.app.services.scheduler.assignWork();
    expect(pass.placements.get(id)).toBe(holder.id);
    expect(await f.commandsFor(without)).toEqual([]);
    const command = await f.snapshotCommand(holder);
    expect(command).toMatchObject({
      snapshot_id: id,
      saved_project_id: project.id,
      scene_key: 'intro',
      frame_number: 12,
      aep_file_md5: project.md5,
      ae_version: '24.1',
      lease: expect.any(String),
    });
    expect((await fetchSnapshot(user, id)).body.status).toBe('Rendering');

    // The open command occupies the node: the next snapshot goes elsewhere.
    const next = await request(user, { saved_project_id: project.id, scene_key: 'intro', frame_number: 13 });
    expect((await t.app.services.scheduler.assignWork()).placements.get(next.body.snapshot_id)).toBe(without.id);

    const files = await f.render(holder, command);
    const done = await fetchSnapshot(user, id);
    expect(done.body).toMatchObject({
      status: 'Cached',
      width: 1920,
      height: 1080,
      duration_ms: 4200,
      completed_at: clock.now().toISOString(),
      expires_at: new Date(clock.now().getTime() + SNAPSHOT_TTL_DAYS * DAY_MS).toISOString(),
    });
    await expectDownloads(done.body, files);
    const finished = await f.prisma.nodeCommand.findUniqueOrThrow({ where: { id: command.command_id } });
    expect(finished.status).toBe('Completed');
    expect((await f.prisma.renderNode.findUniqueOrThrow({ where: { id: holder.id } })).status).toBe('Online');
  });
});

describe('a cached snapshot', () => {
  it('answers Cached at once, with URLs of the same image, for the same frame of the same template', async () => {
    const owner = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(owner);
    const node = await t.onlineNode(undefined, { templates: [project.md5] });
    const body = { saved_project_id: project.id, scene_key: 'outro', frame_number: 0 };
    const first = await request(owner, body);
    await t.app.services.scheduler.assignWork();
    const files = await f.render(node, await f.snapshotCommand(node));

    const again = await request(owner, body);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ snapshot_id: first.body.snapshot_id, status: 'Cached' });
    await expectDownloads(again.body, files);

    // Another user's project on the same template is other content: it is rendered for itself.
    const other = await t.user(0, LONG_LIVED);
    const theirs = await f.savedProject(other, project.md5);
    const separate = await request(other, { ...body, saved_project_id: theirs.id });
    expect(separate.body).toMatchObject({ status: 'Pending', image_url: null });
    expect(separate.body.snapshot_id).not.toBe(first.body.snapshot_id);

    // A different frame or scene is not the same still.
    expect((await request(owner, { ...body, frame_number: 1 })).body.status).toBe('Pending');
    expect((await request(owner, { ...body, scene_key: 'intro' })).body.status).toBe('Pending');
    expect(
      await f.prisma.nodeCommand.count({ where: { type: 'render_snapshot', payload: { path: ['saved_project_id'], equals: project.id } } }),
    ).toBe(1);
  });

  it('is rendered again once it has expired', async () => {
    const user = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(user);
    const node = await t.onlineNode(undefined, { templates: [project.md5] });
    const body = { saved_project_id: project.id, scene_key: 'intro', frame_number: 5 };
    const first = await request(user, body);
    await t.app.services.scheduler.assignWork();
    await f.render(node, await f.snapshotCommand(node));

    clock.advance(SNAPSHOT_TTL_DAYS * DAY_MS - 60_000);
    expect((await request(user, body)).body).toMatchObject({ snapshot_id: first.body.snapshot_id, status: 'Cached' });
    clock.advance(120_000);
    const expired = await fetchSnapshot(user, first.body.snapshot_id);
    expect(expired.body).toMatchObject({ status: 'Cached', image_url: null, thumbnail_url: null });

    const renewed = await request(user, body);
    expect(renewed.body).toMatchObject({ status: 'Pending', image_url: null });
    expect(renewed.body.snapshot_id).not.toBe(first.body.snapshot_id);
    await f.commandsFor(node); // a fresh heartbeat, or the node counts as lost
    expect((await t.app.services.scheduler.assignWork()).placements.get(renewed.body.snapshot_id)).toBe(node.id);
    const files = await f.render(node, await f.snapshotCommand(node));
    const cached = await fetchSnapshot(user, renewed.body.snapshot_id);
    expect(cached.body.expires_at).toBe(new Date(clock.now().getTime() + SNAPSHOT_TTL_DAYS * DAY_MS).toISOString());
    await expectDownloads(cached.body, files);
  });
});

describe('identical requests arriving together', () => {
  it('share one render, and every one of them gets its result', async () => {
    const project = await f.savedProject(null);
    const nodes = [await t.onlineNode(undefined, { templates: [project.md5] }), await t.onlineNode(undefined, { templates: [project.md5] })];
    const users = await Promise.all(Array.from({ length: 5 }, () => t.user(0, LONG_LIVED)));
    const body = { saved_project_id: project.id, scene_key: 'logo', frame_number: 48 };
    const answers = await Promise.all(users.map((user) => request(user, body)));
    expect(answers.map((answer) => [answer.status, answer.body.status])).toEqual(users.map(() => [202, 'Pending']));
    const ids = answers.map((answer) => answer.body.snapshot_id as string);
    expect(new Set(ids).size).toBe(5);

    expect((await t.app.services.scheduler.assignWork()).assigned).toBe(1);
    expect((await t.app.services.scheduler.assignWork()).assigned).toBe(0);
    const commands = await f.snapshotCommands(project.md5);
    expect(commands).toHaveLength(1);
    const node = nodes.find((candidate) => candidate.id === commands[0]?.nodeId)!;
    const command = await f.snapshotCommand(node);
    const statuses = await Promise.all(users.map((user, index) => fetchSnapshot(user, ids[index]!)));
    expect(statuses.map((answer) => answer.body.status)).toEqual(users.map(() => 'Rendering'));

    // One more joins while it renders.
    const late = await t.user(0, LONG_LIVED);
    const joined = await request(late, body);
    expect(joined.body.status).toBe('Rendering');

    const files = await f.render(node, command);
    for (const [index, user] of [...users, late].entries()) {
      const answer = await fetchSnapshot(user, [...ids, joined.body.snapshot_id][index]!);
      expect(answer.body.status).toBe('Cached');
      await expectDownloads(answer.body, files);
    }
    expect(await f.snapshotCommands(project.md5)).toHaveLength(1);
  });

  it('from one user give that user one snapshot', async () => {
    const user = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(user);
    const body = { saved_project_id: project.id, scene_key: 'logo', frame_number: 1 };
    const answers = await Promise.all(Array.from({ length: 5 }, () => request(user, body)));
    expect(new Set(answers.map((answer) => answer.body.snapshot_id)).size).toBe(1);
    expect(await f.prisma.snapshot.count({ where: { savedProjectId: project.id } })).toBe(1);
  });
});

describe('agent reports', () => {
  it('are refused with 409 under a lease that is no longer current; the render moves to another node', async () => {
    const user = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(user);
    const first = await t.onlineNode(undefined, { templates: [project.md5] });
    const second = await t.onlineNode(undefined, { templates: [] });
    const asked = await request(user, { saved_project_id: project.id, scene_key: 'intro', frame_number: 3 });
    const id = asked.body.snapshot_id as string;
    await t.app.services.scheduler.assignWork();
    const command = await f.snapshotCommand(first);

    const wrongLease = await f.complete(first, { ...command, lease: 'not-the-lease' });
    expect(wrongLease.status).toBe(409);
    expect(wrongLease.body.error.code).toBe('STALE_LEASE');
    expect((await f.upload(first, id, 'image', 'not-the-lease', pngBytes(10))).status).toBe(409);
    const otherNode = await f.complete(second, command);
    expect(otherNode.status).toBe(409);
    expect(otherNode.body.error.code).toBe('STALE_LEASE');
    expect((await f.upload(first, id, 'image', undefined, pngBytes(10))).status).toBe(400);
    expect((await f.upload(first, id, 'image', command.lease, Buffer.alloc(0))).status).toBe(400);
    const unknown = await f.complete(first, { ...command, snapshot_id: randomUUID() });
    expect(unknown.status).toBe(404);
    const early = await f.complete(first, command);
    expect(early.status).toBe(400);
    expect(problemPaths(early.body)).toEqual(['image', 'thumbnail']);
    const malformed = await f.complete(first, command, { width: 0, extra: true });
    expect(malformed.status).toBe(400);
    expect(problemPaths(malformed.body)).toEqual(['extra', 'width']);
    expect((await fetchSnapshot(user, id)).body.status).toBe('Rendering');

    // The first node goes silent: its work is taken away, and its late reports are refused.
    clock.advance(16_000);
    await f.commandsFor(second);
    const { offline } = await t.app.services.scheduler.sweepHeartbeats();
    expect(offline).toContain(first.id);
    expect(offline).not.toContain(second.id);
    const late = await f.upload(first, id, 'image', command.lease, pngBytes(10));
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('STALE_LEASE');
    expect((await f.complete(first, command)).status).toBe(409);

    expect((await t.app.services.scheduler.assignWork()).placements.get(id)).toBe(second.id);
    const retry = await f.snapshotCommand(second);
    expect(retry.lease).not.toBe(command.lease);
    const files = await f.render(second, retry);
    const done = await fetchSnapshot(user, id);
    expect(done.body.status).toBe('Cached');
    await expectDownloads(done.body, files);
  });

  it('of a failure fail every request sharing the render; asking again renders anew', async () => {
    const project = await f.savedProject(null);
    const node = await t.onlineNode(undefined, { templates: [project.md5] });
    const [a, b] = [await t.user(0, LONG_LIVED), await t.user(0, LONG_LIVED)];
    const body = { saved_project_id: project.id, scene_key: 'intro', frame_number: 9 };
    const [first, second] = await Promise.all([request(a, body), request(b, body)]);
    await t.app.services.scheduler.assignWork();
    const command = await f.snapshotCommand(node);
    const noError = await t.signed(node, 'POST', `/v1/internal/snapshots/${command.snapshot_id}/fail`, { lease: command.lease });
    expect(noError.status).toBe(400);
    const failed = await t.signed(node, 'POST', `/v1/internal/snapshots/${command.snapshot_id}/fail`, {
      lease: command.lease,
      error: 'the scene does not exist',
    });
    expect(failed.status).toBe(204);
    expect((await fetchSnapshot(a, first.body.snapshot_id)).body.status).toBe('Failed');
    expect((await fetchSnapshot(b, second.body.snapshot_id)).body.status).toBe('Failed');
    expect((await f.prisma.renderNode.findUniqueOrThrow({ where: { id: node.id } })).status).toBe('Online');

    const again = await request(a, body);
    expect(again.body.status).toBe('Pending');
    expect(again.body.snapshot_id).not.toBe(first.body.snapshot_id);
    expect((await t.app.services.scheduler.assignWork()).placements.get(again.body.snapshot_id)).toBe(node.id);
  });
});

describe('callers and input', () => {
  it('needs a signed-in user, and shows nobody else’s snapshot', async () => {
    const owner = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(owner);
    const body = { saved_project_id: project.id, scene_key: 'intro', frame_number: 0 };
    expect((await request(null, body)).status).toBe(401);
    const asked = await request(owner, body);
    const id = asked.body.snapshot_id as string;
    expect((await t.rest('GET', `/v1/snapshots/${id}`)).status).toBe(401);

    const other = await t.user(0, LONG_LIVED);
    for (const unknown of [id, randomUUID()]) {
      const answer = await fetchSnapshot(other, unknown);
      expect(answer.status).toBe(404);
      expect(answer.body.error).toMatchObject({ code: 'NOT_FOUND', details: { entity: 'snapshot', id: unknown } });
    }
    expect((await fetchSnapshot(await f.admin, id)).status).toBe(200);

    // Someone else's project, or one the studio service never synced, is not found.
    const before = await f.prisma.snapshot.count();
    for (const projectId of [project.id, randomUUID()]) {
      const refused = await request(other, { ...body, saved_project_id: projectId });
      expect(refused.status).toBe(404);
      expect(refused.body.error.details).toEqual({ entity: 'saved project', id: projectId });
    }
    expect(await f.prisma.snapshot.count()).toBe(before);
  });

  it('refuses malformed requests with 400 and writes nothing', async () => {
    const user = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(user);
    const before = await f.prisma.snapshot.count();
    const cases: Array<[unknown, string[]]> = [
      [{}, ['frame_number', 'saved_project_id', 'scene_key']],
      [{ saved_project_id: 'nope', scene_key: 'a', frame_number: 0 }, ['saved_project_id']],
      [{ saved_project_id: project.id, scene_key: '', frame_number: 0 }, ['scene_key']],
      [{ saved_project_id: project.id, scene_key: 'x'.repeat(201), frame_number: 0 }, ['scene_key']],
      [{ saved_project_id: project.id, scene_key: 'a', frame_number: -1 }, ['frame_number']],
      [{ saved_project_id: project.id, scene_key: 'a', frame_number: 1.5 }, ['frame_number']],
      [{ saved_project_id: project.id, scene_key: 'a', frame_number: '3' }, ['frame_number']],
      [{ saved_project_id: project.id, scene_key: 'a', frame_number: 0, quality: 'High' }, ['quality']],
    ];
    for (const [body, paths] of cases) {
      const answer = await request(user, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(problemPaths(answer.body)).toEqual(paths);
    }
    expect((await t.rest('POST', '/v1/snapshots', { token: user.token, rawBody: '{"scene_key":' })).status).toBe(400);
    expect((await fetchSnapshot(user, 'not-a-uuid')).status).toBe(400);

    // A project whose template the studio service has not named yet cannot be rendered.
    const bare = randomUUID();
    await t.rest('PUT', `/v1/saved-projects/${bare}`, {
      token: TEST_SERVICE_TOKEN,
      body: { owner_user_id: user.id, name: 'Draft', duration_sec: 5 },
    });
    const noTemplate = await request(user, { saved_project_id: bare, scene_key: 'a', frame_number: 0 });
    expect(noTemplate.status).toBe(400);
    expect(problemPaths(noTemplate.body)).toEqual(['saved_project_id']);
    expect(await f.prisma.snapshot.count()).toBe(before);
  });
});

describe('through GraphQL', () => {
  it('requests, reads and resolves snapshots as entities, with the same rules', async () => {
    const owner = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(owner);
    const node = await t.onlineNode(undefined, { templates: [project.md5] });
    const input = { savedProjectId: project.id, sceneKey: 'intro', frameNumber: 7 };

    const asked = await t.gql(RequestSnapshotDocument, { input }, owner.token);
    const snapshot = asked.data?.requestSnapshot;
    expect(snapshot).toMatchObject({ __typename: 'Snapshot', status: 'Pending', userId: owner.id, imageUrl: null, expiresAt: null });
    const id = snapshot?.__typename === 'Snapshot' ? snapshot.id : '';

    const invalid = await t.gql(RequestSnapshotDocument, { input: { ...input, sceneKey: '', frameNumber: -2 } }, owner.token);
    expect(invalid.data?.requestSnapshot).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    const problems = invalid.data?.requestSnapshot.__typename === 'ValidationError' ? invalid.data.requestSnapshot.problems : [];
    expect(problems.map((problem) => problem.path).sort()).toEqual(['frameNumber', 'sceneKey']);
    const other = await t.user(0, LONG_LIVED);
    const notTheirs = await t.gql(RequestSnapshotDocument, { input }, other.token);
    expect(notTheirs.data?.requestSnapshot).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND', entity: 'saved project' });
    expect((await t.gql(RequestSnapshotDocument, { input })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    expect((await t.gql(SnapshotDocument, { id }, other.token)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const representations = [{ __typename: 'Snapshot', id }];
    expect((await t.gql(SnapshotEntitiesDocument, { representations }, owner.token)).data?._entities).toEqual([
      { __typename: 'Snapshot', id, status: 'Pending' },
    ]);
    expect((await t.gql(SnapshotEntitiesDocument, { representations }, other.token)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    await t.app.services.scheduler.assignWork();
    const files = await f.render(node, await f.snapshotCommand(node));
    const cached = (await t.gql(SnapshotDocument, { id }, owner.token)).data?.snapshot;
    expect(cached).toMatchObject({ id, status: 'Cached', width: 1920, height: 1080, durationMs: 4200 });
    await expectDownloads({ image_url: cached?.imageUrl ?? '', thumbnail_url: cached?.thumbnailUrl ?? '' }, files);
    const hit = await t.gql(RequestSnapshotDocument, { input }, owner.token);
    expect(hit.data?.requestSnapshot).toMatchObject({ __typename: 'Snapshot', id, status: 'Cached' });
  });
});
