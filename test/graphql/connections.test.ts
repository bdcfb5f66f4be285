import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp, type TestUser } from '../support/app.ts';

let t: TestApp;
let user: TestUser;

beforeAll(async () => {
  t = await startTestApp();
  user = await t.user(5_000);
});
afterAll(() => t.close());

async function post(query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as { data?: any; errors?: { message: string; extensions: Record<string, any> }[] } };
}

const page = '{ edges { cursor } pageInfo { endCursor } }';
/** A cursor shaped like this server's, holding an id that is not a UUID. */
const notAnIdCursor = Buffer.from('GPC:S:garbage').toString('base64');

describe('connection arguments', () => {
  it.each([
    ['renderJobs', `{ renderJobs(first: 5, after: "garbage") ${page} }`, 'renderJobs.after'],
    ['exports', `{ exports(before: "garbage", last: 2) ${page} }`, 'exports.before'],
    ['wallet entries', `{ wallet { entries(first: 2, after: "garbage") ${page} } }`, 'entries.after'],
    ['a user entity', `{ _entities(representations: [{ __typename: "User", id: "00000000-0000-4000-8000-000000000001" }]) { ... on User { renderJobs(after: "garbage") ${page} } } }`, 'renderJobs.after'],
    ['a saved project entity', `{ _entities(representations: [{ __typename: "SavedProject", id: "00000000-0000-4000-8000-000000000001" }]) { ... on SavedProject { exports(after: "garbage") ${page} } } }`, 'exports.after'],
    ['a cursor of this shape with an id that is not one', `{ renderJobs(after: "${notAnIdCursor}") ${page} }`, 'renderJobs.after'],
  ])('refuse a malformed cursor of %s as VALIDATION_FAILED naming the argument, with 400', async (_name, query, path) => {
    const { status, body } = await post(query);
    expect(status).toBe(400);
    expect(body.data).toBeUndefined();
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION_FAILED', details: { problems: [{ path }] } });
    expect(body.errors?.[0]?.message).toContain(path);
  });

  it('check cursors given in variables and inside fragments, naming aliases', async () => {
    const { status, body } = await post(
      `query Pages($cursor: String) { ...Jobs mine: exports(first: 1, after: $cursor) ${page} }
       fragment Jobs on Query { renderJobs(first: 1, after: $cursor) ${page} }`,
      { cursor: 'bm90LWEtY3Vyc29y' },
    );
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions.details.problems.map((problem: { path: string }) => problem.path).sort()).toEqual(['mine.after', 'renderJobs.after']);
  });

  it('refuse directions Pothos does not page in, and negative page sizes', async () => {
    const { status, body } = await post(`{ renderJobs(first: -1, after: "x", before: "y") ${page} }`);
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions.details.problems.map((problem: { path: string }) => problem.path)).toEqual([
      'renderJobs.first',
      'renderJobs.after',
      'renderJobs.before',
      'renderJobs.before',
      'renderJobs.before',
    ]);
  });

  it('accept the cursors a connection gives out', async () => {
    const first = await post(`{ wallet { entries(first: 1) ${page} } }`);
    expect(first.status).toBe(200);
    const cursor = first.body.data.wallet.entries.pageInfo.endCursor as string;
    expect(cursor).toEqual(expect.any(String));
    const next = await post(`query Next($after: String) { wallet { entries(first: 1, after: $after) ${page} } }`, { after: cursor });
    expect(next.status).toBe(200);
    expect(next.body.errors).toBeUndefined();
    const back = await post(`query Back($before: String) { wallet { entries(last: 1, before: $before) ${page} } }`, { before: cursor });
    expect(back.status).toBe(200);
    expect(back.body.errors).toBeUndefined();
  });

  it('refuse a malformed cursor over graphql-ws with the same error', async () => {
    const client = createClient({
      url: `${t.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${user.token}` },
      retryAttempts: 0,
    });
    try {
      const errors = await new Promise<any>((resolve, reject) => {
        client.subscribe({ query: `{ renderJobs(first: 5, after: "garbage") ${page} }` }, { next: reject, error: resolve, complete: () => reject(new Error('completed')) });
      });
      expect(errors[0].extensions).toMatchObject({ code: 'VALIDATION_FAILED', details: { problems: [{ path: 'renderJobs.after' }] } });
    } finally {
      await client.dispose();
    }
  });
});
