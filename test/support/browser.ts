// Debian's Chromium driven by playwright-core, never a browser Playwright downloads, with nothing
// from the internet: the pages under test must make every request to the service itself.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags Chromium reaches for Google's hosts at every start,
// which this machine's closed network refuses.
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-quic',
  '--disable-sync',
];

// A few seconds each on an idle machine; several times that when the CI machine's two cores are
// busy with the other test files, and Chromium parses megabytes of script per page.
export const BROWSER_TEST = { timeout: 90_000 };

/** Why browser tests cannot run here, or undefined when they can. */
export const chromiumMissing = existsSync(CHROMIUM)
  ? undefined
  : `No Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium), as .ci/run does`;

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A headless Chromium with a fresh profile, removed on close. */
export async function launchBrowser(options: { viewport?: { width: number; height: number } } = {}): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
  const context = await chromium
    .launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: options.viewport })
    .catch(async (error: unknown) => {
      await rm(profile, { recursive: true, force: true });
      throw error;
    });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export interface PageWatch {
  /** Requests to anywhere but the service (and data: URLs). */
  elsewhere: string[];
  /** Console errors (Content-Security-Policy refusals among them) and uncaught exceptions. */
  problems: string[];
}

/** Records what `page` asks of other origins than `serviceUrl`, and what goes wrong in it. */
export function watchPage(page: Page, serviceUrl: string): PageWatch {
  const watch: PageWatch = { elsewhere: [], problems: [] };
  const origins = [`${serviceUrl}/`, `${serviceUrl.replace(/^http/, 'ws')}/`];
  page.on('request', (request) => {
    const url = request.url();
    if (!origins.some((origin) => url.startsWith(origin)) && !url.startsWith('data:')) watch.elsewhere.push(url);
  });
  page.on('websocket', (socket) => {
    if (!origins.some((origin) => socket.url().startsWith(origin))) watch.elsewhere.push(socket.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') watch.problems.push(message.text());
  });
  page.on('pageerror', (error) => watch.problems.push(error.message));
  return watch;
}

/** What axe-core finds wrong with a page for people using assistive technology, by rule. */
export interface AccessibilityProblem {
  rule: string;
  impact: string;
  help: string;
  targets: string[];
}

let axeSource: Promise<string> | undefined;

/**
 * The serious and critical problems axe-core (the checker browsers' own tools build on) finds in
 * the page as it stands: contrast too low to read, controls without names, keyboard traps.
 */
export async function accessibilityProblems(page: Page): Promise<AccessibilityProblem[]> {
  axeSource ??= readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated rather than added as a <script>: the page's policy admits only its own scripts.
  await page.evaluate(await axeSource);
  return page.evaluate(async () => {
    type Axe = {
      run(): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }>;
    };
    const { violations } = await (globalThis as unknown as { axe: Axe }).axe.run();
    return violations
      .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
      .map((violation) => ({
        rule: violation.id,
        impact: violation.impact as string,
        help: violation.help,
        targets: violation.nodes.map((node) => node.target.join(' ')),
      }));
  });
}
