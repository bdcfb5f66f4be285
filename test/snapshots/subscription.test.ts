// snapshotUpdated over a real WebSocket, as a browser watches its preview being rendered.
import { print } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RequestSnapshotDocument, SnapshotUpdatedDocument, type SnapshotUpdatedSubscription } from '../generated/graphql.ts';
import { download, startTestApp, type TestApp } from '../support/app.ts';
import { ManualClock } from '../support/clock.ts';
import { LONG_LIVED, snapshotFixtures } from '../support/snapshots.ts';

type Update = SnapshotUpdatedSubscription['snapshotUpdated'];

let t: TestApp;
const clock = new ManualClock();
let f: ReturnType<typeof snapshotFixtures>;
const clients: Client[] = [];

beforeAll(async () => {
  t = await startTestApp({ clock, startLoops: false });
  f = snapshotFixtures(t);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
});
afterAll(() => t.close());

/** Subscribes; `until` resolves once an update matches, `done` once the server ends the stream. */
function watch(token: string, id: string) {
  const client = createClient({
    url: `${t.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  clients.push(client);
  const updates: Update[] = [];
  const errors: unknown[] = [];
  const listeners: Array<() => void> = [];
  let ended = false;
  const notify = () => listeners.splice(0).forEach((listener) => listener());
  client.subscribe<SnapshotUpdatedSubscription>(
    { query: print(SnapshotUpdatedDocument), variables: { id } },
    {
      next: (result) => {
        if (result.errors) errors.push(...result.errors);
        if (result.data) updates.push(result.data.snapshotUpdated);
        notify();
      },
      error: (error) => {
        errors.push(error);
        ended = true;
        notify();
      },
      complete: () => {
        ended = true;
        notify();
      },
    },
  );
  const waitFor = (done: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}; got ${JSON.stringify({ updates, errors })}`)), 5000);
      const check = () => (done() ? (clearTimeout(timer), resolve()) : listeners.push(check));
      check();
    });
  return {
    updates,
    errors,
    until: (status: string) => waitFor(() => updates.some((update) => update.status === status), `no ${status} update`),
    ended: () => waitFor(() => ended, 'the subscription did not end'),
  };
}

describe('snapshotUpdated', () => {
  it('starts with the current state and follows the render to Cached', async () => {
    const user = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(user);
    const node = await t.onlineNode(undefined, { templates: [project.md5] });
    const asked = await t.gql(
      RequestSnapshotDocument,
      { input: { savedProjectId: project.id, sceneKey: 'intro', frameNumber: 24 } },
      user.token,
    );
    const id = asked.data?.requestSnapshot.__typename === 'Snapshot' ? asked.data.requestSnapshot.id : '';

    const watcher = watch(user.token, id);
    await watcher.until('Pending');
    expect(watcher.updates[0]).toEqual({ id, status: 'Pending', imageUrl: null, thumbnailUrl: null });

    await t.app.services.scheduler.assignWork();
    const files = await f.render(node, await f.snapshotCommand(node));
    await watcher.until('Cached');
    expect(watcher.errors).toEqual([]);
    const statuses = watcher.updates.map((update) => update.status);
    expect(statuses[0]).toBe('Pending');
    expect(statuses.at(-1)).toBe('Cached');
    const cached = watcher.updates.at(-1)!;
    expect((await download(cached.imageUrl ?? '')).bytes.equals(files.image)).toBe(true);
    expect((await download(cached.thumbnailUrl ?? '')).bytes.equals(files.thumbnail)).toBe(true);
  });

  it('does not show another user’s snapshot', async () => {
    const owner = await t.user(0, LONG_LIVED);
    const project = await f.savedProject(owner);
    const asked = await t.gql(RequestSnapshotDocument, { input: { savedProjectId: project.id, sceneKey: 'intro', frameNumber: 0 } }, owner.token);
    const id = asked.data?.requestSnapshot.__typename === 'Snapshot' ? asked.data.requestSnapshot.id : '';

    const stranger = watch((await t.user(0, LONG_LIVED)).token, id);
    await stranger.ended();
    expect(stranger.updates).toEqual([]);
    expect(stranger.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'NOT_FOUND' }) })]);
  });
});
