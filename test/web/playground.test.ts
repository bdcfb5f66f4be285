// The admin pages in a real browser: Debian's Chromium driven by playwright-core, with nothing
// from the internet (every request the pages make must go to the service itself).
import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { BROWSER_TEST, type Browser, chromiumMissing, launchBrowser, watchPage } from '../support/browser.ts';
import { FREE_RENDER, submitRender } from '../support/jobs.ts';

/** What the tests touch of the page's globals (this project's TypeScript has no DOM library). */
type PageGlobals = {
  document: {
    querySelector(selector: string): {
      CodeMirror: { getValue(): string; documentAST?: { loc?: { source: { body: string } } } | null };
    } | null;
  };
  location: { href: string };
  graphqlWs: typeof import('graphql-ws');
};

let t: TestApp;
let browser: Browser | undefined;
let page: Page;
let elsewhere: string[];
let problems: string[];

beforeAll(async () => {
  if (chromiumMissing) return;
  t = await startTestApp();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

beforeEach(async () => {
  // Thrown here, each test fails with the reason; from beforeAll, vitest would report them skipped.
  if (chromiumMissing) throw new Error(chromiumMissing);
  page = await browser!.context.newPage();
  ({ elsewhere, problems } = watchPage(page, t.url));
  return () => page.close();
});

const HEADERS_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';

/** The text of the CodeMirror editor under `selector`, as GraphiQL holds it. */
function editorValue(selector: string): Promise<string> {
  return page
    .locator(`${selector} .CodeMirror`)
    .evaluate((element) => (element as unknown as { CodeMirror: { getValue(): string } }).CodeMirror.getValue());
}

async function typeInto(selector: string, text: string) {
  await page.locator(`${selector} .CodeMirror`).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
}

/**
 * Types a document into the query editor and waits until GraphiQL has parsed it: it parses 100 ms
 * after the last change, and a run before that would be sent with the previous document's type.
 */
async function typeQuery(query: string) {
  await typeInto('.graphiql-query-editor', query);
  await page.waitForFunction(
    (wanted) =>
      (globalThis as unknown as PageGlobals).document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror
        .documentAST?.loc?.source.body === wanted,
    query,
  );
}

/** Waits until the response editor shows `text`, then answers the response it shows. */
async function responseShowing(text: string): Promise<unknown> {
  await page.waitForFunction(
    (wanted) =>
      (globalThis as unknown as PageGlobals).document
        .querySelector('.graphiql-response .CodeMirror')
        ?.CodeMirror.getValue()
        .includes(wanted) ?? false,
    text,
  );
  return JSON.parse(await editorValue('.graphiql-response'));
}

/** Opens the playground with `Bearer <token>` typed into its headers editor. */
async function openPlayground(token: string) {
  await page.goto(`${t.url}/playground`);
  await page.locator(`${HEADERS_EDITOR} .CodeMirror`).waitFor();
  expect(JSON.parse(await editorValue(HEADERS_EDITOR))).toEqual({ Authorization: 'Bearer ' });
  await typeInto(HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${token}` }));
}

async function openWebSockets(): Promise<number> {
  const metrics = await t.rest('GET', '/metrics');
  return Number(/^graphql_ws_connections (\S+)$/m.exec(metrics.body)?.[1]);
}

describe('the GraphQL playground', BROWSER_TEST, () => {
  it('runs a query with the Authorization header set in its headers editor, and reaches graphql-ws', async () => {
    const token = await t.token(randomUUID());
    const jobId = (await submitRender(t, token, FREE_RENDER)).id;

    await openPlayground(token);
    await typeQuery('{ renderJobs(first: 1) { edges { cursor node { id step } } } }');
    await page.locator('.graphiql-execute-button').click();
    expect(await responseShowing('renderJobs')).toEqual({
      data: { renderJobs: { edges: [{ cursor: expect.any(String), node: { id: jobId, step: 'Queued' } }] } },
    });

    // The page's own graphql-ws client, over the same URL, authenticated by connection params.
    const overWebSocket = await page.evaluate(async (authorization) => {
      const { graphqlWs, location } = globalThis as unknown as PageGlobals;
      const client = graphqlWs.createClient({
        url: new URL('/graphql', location.href).href.replace(/^http/, 'ws'),
        connectionParams: { Authorization: authorization },
        retryAttempts: 0,
      });
      try {
        for await (const next of client.iterate({ query: '{ renderJobs(first: 1) { edges { node { id } } } }' })) return next;
      } finally {
        await client.dispose();
      }
    }, `Bearer ${token}`);
    expect(overWebSocket).toEqual({ data: { renderJobs: { edges: [{ node: { id: jobId } }] } } });

    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('runs a subscription over graphql-ws with the same headers, live until the job ends', async () => {
    const token = await t.token(randomUUID());
    const jobId = (await submitRender(t, token, FREE_RENDER)).id;

    await openPlayground(token);
    await typeQuery(`subscription { renderProgress(jobId: "${jobId}") { jobId step } }`);
    await page.locator('.graphiql-execute-button').click();
    expect(await responseShowing('Queued')).toEqual({ data: { renderProgress: { jobId, step: 'Queued' } } });

    expect((await t.rest('POST', `/v1/renders/${jobId}/cancel`, { token, body: {} })).status).toBe(200);
    expect(await responseShowing('Cancelled')).toEqual({ data: { renderProgress: { jobId, step: 'Cancelled' } } });

    // The stream ends with the job, and GraphiQL's client closes its socket once nothing runs on it.
    await expect.poll(openWebSockets).toBe(0);

    await typeInto(HEADERS_EDITOR, JSON.stringify({ Authorization: 'Bearer not-a-token' }));
    await page.locator('.graphiql-execute-button').click();
    expect(await responseShowing('4403')).toMatchObject({
      errors: [{ message: 'The server closed the connection: 4403 Forbidden' }],
    });

    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
  });
});

describe('the REST docs page', BROWSER_TEST, () => {
  it('renders the contract, and tries operations out on this instance rather than the host it names', async () => {
    await page.goto(`${t.url}/v1/docs`);
    const listJobs = page.locator('.opblock-get', { has: page.locator('.opblock-summary-path[data-path="/renders"]') });
    await listJobs.getByText("List user's render jobs").click();
    await listJobs.locator('.try-out__btn').click();
    await listJobs.locator('.execute').click();
    await listJobs.locator('.live-responses-table').getByText('UNAUTHENTICATED').first().waitFor();

    expect(elsewhere).toEqual([]);
    expect(problems).toEqual(['Failed to load resource: the server responded with a status of 401 (Unauthorized)']);
  });
});
