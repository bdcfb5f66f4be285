// The operator console in a real browser, against the service started as users run it (a process
// of `tsx src/main.ts`) with a simulated fleet: sign-in, the fleet coming online, a job's chunks
// filling live through a dropped connection, a node put into maintenance, its health plot.
// Screenshots of the fleet, a job and a node go to test-results/console/.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Fleet, startFleet } from '../../agent-sim/fleet.ts';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';
import { EndRenderNodeMaintenanceDocument, RolloutNodeUpdateDocument } from '../generated/graphql.ts';
import { serviceClient, TEST_JWT_SECRET } from '../support/app.ts';
import {
  accessibilityProblems,
  BROWSER_TEST,
  type Browser,
  chromiumMissing,
  launchBrowser,
  type PageWatch,
  watchPage,
} from '../support/browser.ts';
import { submitRender } from '../support/jobs.ts';
import { type Replicas, startReplicas } from '../support/replicas.ts';
import { createNodeUpdate, rolloutFleet } from '../support/updates.ts';

const SCREENSHOTS = join(import.meta.dirname, '../../test-results/console');
// A laptop's screen.
const VIEWPORT = { width: 1366, height: 820 };
const REGIONS = ['eu-west', 'us-east'];
const NODES = 4;

let service: Replicas;
let url: string;
let adminToken: string;
let browser: Browser | undefined;
let fleet: Fleet | undefined;
let page: Page;
let watch: PageWatch;

/** What the tests read of the page's globals (this project's TypeScript has no DOM library). */
type PageGlobals = { sessionStorage: { setItem(key: string, value: string): void }; openSockets: { close(code?: number): void }[] };

beforeAll(async () => {
  if (chromiumMissing) return;
  service = await startReplicas(1);
  url = service.urls[0] as string;
  adminToken = await service.token(randomUUID(), { admin: true });
  browser = await launchBrowser({ viewport: VIEWPORT });
  await mkdir(SCREENSHOTS, { recursive: true });
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
  await browser?.close();
  await service?.close();
});

beforeEach(async () => {
  // Thrown here, each test fails with the reason; from beforeAll, vitest would report them skipped.
  if (chromiumMissing) throw new Error(chromiumMissing);
  page = await browser!.context.newPage();
  watch = watchPage(page, url);
  // Every WebSocket the page opens, so that a test can drop them as a network would.
  await page.addInitScript(() => {
    const globals = globalThis as unknown as PageGlobals & { WebSocket: new (...args: unknown[]) => PageGlobals['openSockets'][number] };
    const Native = globals.WebSocket;
    globals.openSockets = [];
    globals.WebSocket = class extends (Native as new (...args: unknown[]) => object) {
      constructor(...args: unknown[]) {
        super(...args);
        globals.openSockets.push(this as unknown as PageGlobals['openSockets'][number]);
      }
    } as never;
  });
  return () => page.close();
});

async function signIn(token: string) {
  await page.goto(`${url}/console`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const tile = (name: string) => page.locator(`.tile[data-node="${name}"]`);

/** A screenshot of the view as it stands, which must have no serious accessibility problem. */
async function pictured(name: string) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  expect(await accessibilityProblems(page)).toEqual([]);
}

describe('the operator console', BROWSER_TEST, () => {
  it('refuses a token that is not an admin’s, or not a token, with a clear message', async () => {
    const user = await service.user(0);
    await signIn(user.token);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not an admin');
    expect(await accessibilityProblems(page)).toEqual([]);
    await signIn('not-a-token');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('did not accept this token');

    // A non-admin token put in the session by hand gets no further than the sign-in page either:
    // the console shows only what the API answers that token.
    await page.evaluate((token) => (globalThis as unknown as PageGlobals).sessionStorage.setItem('render-console-token', token), user.token);
    await page.reload();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not an admin');
    await expect(page.getByLabel('Admin token').isVisible()).resolves.toBe(true);

    expect(watch.elsewhere).toEqual([]);
    // The refusals themselves are answered with 401 and 403, which Chromium logs as errors.
    expect(watch.problems.filter((problem) => !/status of 40[13]/.test(problem))).toEqual([]);
  });

  it('sends the operator back to sign-in, saying why, once the token expires', async () => {
    const shortLived = await signDevelopmentToken(TEST_JWT_SECRET, { sub: randomUUID(), admin: true, ttlSeconds: 3 });
    await signIn(shortLived);
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await page.getByLabel('Admin token').waitFor({ timeout: 20_000 });
    await expect(page.getByRole('alert').textContent()).resolves.toContain('did not accept this token');

    expect(watch.elsewhere).toEqual([]);
    expect(watch.problems.filter((problem) => !/status of 401/.test(problem))).toEqual([]);
  });

  it('shows the fleet coming online, live, grouped by region, with counts and filters', async () => {
    await signIn(adminToken);
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    expect(await page.locator('.tile').count()).toBe(0);

    fleet = await startFleet({ url, nodes: NODES, adminToken, region: REGIONS, frameMs: 40, heartbeatSeconds: 1 });
    // Without a reload: the tiles come from the live feed and the polled list.
    await expect.poll(() => page.locator('.tile[data-status="Online"]').count(), { timeout: 30_000 }).toBe(NODES);
    for (const region of REGIONS) {
      await expect(page.getByRole('region', { name: `Region ${region}` }).locator('.tile').count()).resolves.toBe(NODES / REGIONS.length);
    }
    await expect(page.locator('[data-status-count="Online"] strong').textContent()).resolves.toBe(String(NODES));

    await page.getByRole('combobox', { name: 'Region' }).selectOption('us-east');
    await expect.poll(() => page.locator('.tile').count()).toBe(NODES / REGIONS.length);
    await page.getByRole('combobox', { name: 'Region' }).selectOption('');
    await page.locator('[data-status-count="Offline"]').click();
    await expect.poll(() => page.locator('.tile').count()).toBe(0);
    await page.locator('[data-status-count="Offline"]').click();
    await expect.poll(() => page.locator('.tile').count()).toBe(NODES);

    await pictured('fleet');
    expect(watch.elsewhere).toEqual([]);
    expect(watch.problems).toEqual([]);
  });

  it("fills a job's chunk bars to Completed without a reload, resuming after a dropped connection without losing a change", async () => {
    expect(fleet, 'the fleet test runs first').toBeDefined();
    const user = await service.user(0);
    await signIn(adminToken);
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    const job = await submitRender(serviceClient(url), user.token, { quality: 'Low', price_type: 'Free', duration_sec: 6, frame_rate: 30 });

    await page.getByRole('link', { name: 'Queue' }).click();
    await page.locator(`tr[data-job="${job.id}"] a`).click();
    await page.getByRole('heading', { name: job.name }).waitFor();
    await page.evaluate(() => Object.assign(globalThis, { loadedOnce: true }));

    // Mid-render, every socket of the page drops; the console resumes after the last change it saw.
    await page.locator('.chunk-bar[data-status="Rendering"]').first().waitFor({ timeout: 30_000 });
    await page.evaluate(() => (globalThis as unknown as PageGlobals).openSockets.forEach((socket) => socket.close(3000)));

    await page.locator('h1 .badge[data-state="Completed"]').waitFor({ timeout: 60_000 });
    await expect.poll(async () => (await page.locator('.live-line').textContent()) ?? '').toMatch(/Ended at change \d+\. Resumed 1 time/);
    // With the stream over, nothing is followed: the socket closes on purpose, no drop to report.
    await expect.poll(() => page.locator('.connection').getAttribute('data-connection')).toBe('idle');
    const bars = await page.locator('.chunk-bar').evaluateAll((elements) =>
      elements.map((element) => ({ rendered: element.getAttribute('data-rendered'), total: element.getAttribute('data-total') })),
    );
    expect(bars.length).toBeGreaterThan(1);
    for (const bar of bars) expect(bar.rendered).toBe(bar.total);

    // Every change from the first one shown to the last, as recorded, each once and in order.
    const shown = (await page.locator('tr[data-seq]').evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-seq'))))) as number[];
    const recorded = (
      await service.db.prisma.renderJobEvent.findMany({ where: { renderJobId: job.id }, orderBy: { seq: 'asc' }, select: { seq: true } })
    ).map((event) => event.seq);
    expect(shown).toEqual(recorded.filter((seq) => seq >= (shown[0] as number)));
    expect(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);

    await pictured('job');
    expect(watch.elsewhere).toEqual([]);
    expect(watch.problems).toEqual([]);
  });

  it("puts a node into maintenance from its page, by keyboard, and the fleet's tile changes, live; plots its health", async () => {
    expect(fleet, 'the fleet test runs first').toBeDefined();
    await signIn(adminToken);
    const first = page.locator('.tile').first();
    await first.waitFor();
    const name = (await first.getAttribute('data-node')) as string;

    await first.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name }).waitFor();
    // The plot draws a line once the node has sent two heartbeats in the window; the simulated
    // agents report After Effects' memory too.
    await page.locator('.health-plot polyline').first().waitFor();
    const lanes = await page.locator('.health-plot .lane').evaluateAll((elements) =>
      elements.map((lane) => [lane.querySelector('.lane-label')?.textContent, lane.querySelector('.lane-value')?.textContent, lane.querySelectorAll('polyline').length]),
    );
    expect(lanes.map(([label]) => label)).toEqual(['CPU', 'Memory used', 'AE memory', 'Disk cache']);
    expect(lanes[2]).toEqual(['AE memory', expect.stringMatching(/^\d+ MB$/), 1]);

    await page.getByRole('button', { name: 'Start maintenance' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason (optional)').fill('Replacing the GPU');
    await dialog.getByRole('button', { name: 'Start maintenance' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Start maintenance: done' }).count()).toBe(1);
    await page.locator('h1 .badge[data-state="Maintenance"]').waitFor();
    await expect(page.getByText('Replacing the GPU').count()).resolves.toBe(1);
    await pictured('node');

    await page.getByRole('link', { name: 'Fleet' }).first().click();
    await expect.poll(() => tile(name).getAttribute('data-status')).toBe('Maintenance');
    await expect(tile(name).textContent()).resolves.toContain('Maintenance');

    // With the page's HTTP requests cut off, the polled list cannot move: the tile changes back
    // by the nodeStatusChanged subscription alone.
    await page.route('**/graphql', (route) => route.abort());
    const nodeId = (await tile(name).getAttribute('href'))!.split('/').pop() as string;
    const ended = await serviceClient(url).gql(EndRenderNodeMaintenanceDocument, { id: nodeId }, adminToken);
    expect(ended.data?.endRenderNodeMaintenance.__typename).toBe('RenderNode');
    await expect.poll(() => tile(name).getAttribute('data-status')).toMatch(/^(Online|Busy)$/);
    await page.unroute('**/graphql');

    expect(watch.elsewhere).toEqual([]);
    expect(watch.problems.filter((problem) => !problem.includes('net::ERR_FAILED'))).toEqual([]);
  });

  it('shows rollouts by wave, with each node’s status and agent version', async () => {
    const client = serviceClient(url);
    // Nodes of their own, not the simulated fleet's: a rollout takes its nodes out of work.
    const nodes = await rolloutFleet(client, 2);
    const update = await createNodeUpdate(client, adminToken);
    const rollout = await client.gql(RolloutNodeUpdateDocument, { updateId: update.id, nodeIds: nodes.map((node) => node.id) }, adminToken);
    expect(rollout.data?.rolloutNodeUpdate.__typename).toBe('Rollout');
    const rolloutId = (rollout.data?.rolloutNodeUpdate as { id: string }).id;

    await signIn(adminToken);
    await page.getByRole('link', { name: 'Rollouts' }).click();
    const shown = page.locator(`[data-rollout="${rolloutId}"]`);
    await shown.getByRole('heading', { name: 'Canary' }).waitFor();
    await expect(shown.locator('[data-target]').evaluateAll((items) => items.map((item) => item.getAttribute('data-target')))).resolves.toEqual(
      nodes.map((node) => node.name),
    );
    await expect(shown.locator('[data-target]').first().textContent()).resolves.toContain('agent 1.0.0');
    await expect(page.getByRole('region', { name: 'Nodes by agent version' }).textContent()).resolves.toContain(`1.0.0: ${NODES + nodes.length} nodes`);
    expect(await accessibilityProblems(page)).toEqual([]);

    expect(watch.elsewhere).toEqual([]);
    expect(watch.problems).toEqual([]);
  });
});
