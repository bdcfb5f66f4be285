import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { NodeStatusChangedDocument, type NodeStatusChangedSubscription } from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { type Callers, callers } from '../support/callers.ts';

let t: TestApp;
let who: Callers;
const clients: Client[] = [];

beforeAll(async () => {
  t = await startTestApp({ startLoops: false });
  who = await callers(t);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
});
afterAll(() => t.close());

function connect(token?: string): Client {
  const client = createClient({
    url: `${t.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  clients.push(client);
  return client;
}

type Changed = NodeStatusChangedSubscription['nodeStatusChanged'];

/** Subscribes and collects what arrives; `until` resolves with the first event that matches. */
function watch(client: Client) {
  const events: Changed[] = [];
  const waiters: Array<{ match: (event: Changed) => boolean; resolve: (event: Changed) => void }> = [];
  let failure: unknown;
  client.subscribe<NodeStatusChangedSubscription>(
    { query: print(NodeStatusChangedDocument) },
    {
      next: (result) => {
        // A refused subscription answers one result with errors, then completes.
        if (result.errors) failure = result.errors;
        const event = result.data?.nodeStatusChanged;
        if (!event) return;
        events.push(event);
        for (const waiter of waiters.filter((candidate) => candidate.match(event))) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      },
      error: (error) => {
        failure = error;
      },
      complete: () => undefined,
    },
  );
  return {
    events,
    failure: () => failure,
    until(match: (event: Changed) => boolean, timeoutMs = 5000): Promise<Changed> {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event; got ${JSON.stringify(events)}`)), timeoutMs);
        waiters.push({ match, resolve: (event) => (clearTimeout(timer), resolve(event)) });
      });
    },
  };
}

/** The server subscribes to the bus after the subscribe message; registering probes until one is heard proves it is listening. */
async function listening(watcher: ReturnType<typeof watch>) {
  for (let attempt = 0; attempt < 50 && watcher.events.length === 0; attempt++) {
    await t.node();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(watcher.events.length).toBeGreaterThan(0);
}

describe('the nodeStatusChanged subscription', () => {
  it('tells admins of every status change over a real WebSocket, re-reading the node', async () => {
    const watcher = watch(connect(who.admin));
    await listening(watcher);

    const node = await t.node();
    await expect(watcher.until((event) => event.id === node.id)).resolves.toMatchObject({ name: node.name });
    const online = await t.signed(node, 'POST', `/v1/internal/nodes/${node.id}/online`, {});
    expect(online.status).toBe(200);
    await expect(watcher.until((event) => event.id === node.id && event.status === 'Online')).resolves.toEqual({
      id: node.id,
      name: node.name,
      status: 'Online',
    });

    const update = await t.rest('POST', '/v1/node-updates', {
      token: who.admin,
      body: { update_file_name: 'a.msi', update_number: 1, target_ae_version: '24.1', download_key: 'updates/a.msi', sha256: 'e'.repeat(64) },
    });
    const rollout = await t.rest('POST', `/v1/node-updates/${update.body.id}/rollout`, { token: who.admin, body: { node_ids: [node.id] } });
    expect(rollout.status).toBe(202);
    await expect(watcher.until((event) => event.id === node.id && event.status === 'Updating')).resolves.toBeTruthy();
    expect(watcher.failure()).toBeUndefined();
  });

  it('is refused to users, service tokens and anonymous callers', async () => {
    const refusals = [
      [who.user, /Only administrators/],
      [who.service, /Only administrators/],
      [undefined, /Authentication is required/],
    ] as const;
    for (const [token, message] of refusals) {
      const watcher = watch(connect(token));
      await expect.poll(() => watcher.failure(), { timeout: 5000 }).toBeDefined();
      expect(JSON.stringify(watcher.failure())).toMatch(message);
      expect(watcher.events).toEqual([]);
    }
  });
});
