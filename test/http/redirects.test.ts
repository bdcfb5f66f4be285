// People who open the service's address, or its GraphQL URL, in a browser land on the playground;
// GraphQL clients on /graphql (GET with a query, POST, graphql-ws) are answered as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApp, startTestApp } from '../support/app.ts';
import { graphqlWsClient } from '../support/graphql-ws.ts';

// What Chromium and Firefox send when a page is opened.
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${t.url}${path}`, { headers, redirect: 'manual' });

describe('a browser visit', () => {
  it('to / is sent to the playground', async () => {
    const answer = await get('/', { accept: BROWSER_ACCEPT });
    expect(answer.status).toBe(302);
    expect(answer.headers.get('location')).toBe('/playground');
    expect((await get('/')).headers.get('location')).toBe('/playground');
  });

  it('to /graphql is sent to the playground, which is there', async () => {
    const answer = await get('/graphql', { accept: BROWSER_ACCEPT });
    expect(answer.status).toBe(302);
    expect(answer.headers.get('location')).toBe('/playground');
    expect((await get('/playground', { accept: BROWSER_ACCEPT })).status).toBe(200);
  });
});

describe('GraphQL clients on /graphql are not redirected', () => {
  const query = `?query=${encodeURIComponent('{ __typename }')}`;

  it('a GET with a query, whatever it accepts', async () => {
    const json = await get(`/graphql${query}`, { accept: 'application/graphql-response+json, application/json', 'apollo-require-preflight': 'true' });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({ data: { __typename: 'Query' } });

    // A query typed into the address bar is still a GraphQL request: Apollo's answer, not the playground.
    const typed = await get(`/graphql${query}`, { accept: BROWSER_ACCEPT });
    expect(typed.status).not.toBe(302);
    expect(typed.headers.get('content-type')).toMatch(/json/);
  });

  it('a GET without a query that does not prefer HTML', async () => {
    for (const accept of ['application/json', '*/*', 'application/json, text/html', 'text/html;q=0.5, application/json']) {
      const answer = await get('/graphql', { accept });
      expect(answer.status, accept).not.toBe(302);
      expect(answer.headers.get('content-type'), accept).toMatch(/json/);
    }
  });

  it('a POST, even from a page that prefers HTML', async () => {
    const answer = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: BROWSER_ACCEPT },
      body: JSON.stringify({ query: '{ __typename }' }),
      redirect: 'manual',
    });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('graphql-ws on the same path', async () => {
    const user = await t.user();
    const client = graphqlWsClient(t.url, user.token);
    try {
      const results = [];
      for await (const result of client.iterate({ query: '{ __typename }' })) results.push(result);
      expect(results).toEqual([{ data: { __typename: 'Query' } }]);
    } finally {
      await client.dispose();
    }
  });
});
