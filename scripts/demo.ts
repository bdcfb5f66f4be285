// npm run demo [-- --exit-when-done]
//
// The service on its embedded defaults in a fresh data folder, a simulated fleet, a few sample
// jobs and a still, so that a newcomer watches renders go from Queued to Completed without setting
// anything up. Then it keeps serving (with the fleet) for the playground until Ctrl-C.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Board } from '../agent-sim/board.ts';
import { type Fleet, startFleet } from '../agent-sim/fleet.ts';
import { signDevelopmentToken } from '../src/adapters/auth/jwt.ts';
import { type App, createApp } from '../src/app.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { ensurePortFree, explainListenError, PortUnavailableError } from '../src/port.ts';
import { stopOnSignals } from '../src/signals.ts';
import { parseCommandLine } from './lib/command-line.ts';

const USAGE = `Usage: npm run demo [-- --exit-when-done]

Starts the service on its embedded defaults (a fresh temporary data folder, port PORT or 4000),
a simulated fleet of render nodes, a few sample jobs and a still, and shows their progress.
Then it keeps serving until Ctrl-C; --exit-when-done stops once every sample job is Completed
and the still is Cached.
`;

const NODES = 8;
// Short samples of fast frames: on a 2-core machine the four jobs complete within about 20 s of
// being submitted. The pace is set by the service answering the frame reports, not by FRAME_MS.
const FRAME_MS = 60;
// The service lets an idle node wait 5 s between heartbeats; jobs that render in seconds would
// spend most of their time waiting for a node to collect its prepare or encode command.
const HEARTBEAT_SECONDS = 1;
const TOKEN_TTL_SECONDS = 12 * 3600;
const FINISHED = new Set(['Completed', 'Failed', 'Cancelled']);
const STILL_FINISHED = new Set(['Cached', 'Failed']);

/** Different price types and qualities, so that the queues and the pricing show. */
const SAMPLES = [
  { name: 'Product teaser', price_type: 'Cash', quality: 'High', resolution: 'FullHD', duration_sec: 5, frame_rate: 30 },
  { name: 'Subscriber intro', price_type: 'Plan', quality: 'Full', resolution: 'FourK', duration_sec: 6, frame_rate: 25 },
  { name: 'Draft preview', price_type: 'Preview', quality: 'Low', resolution: 'FullHD', duration_sec: 6, frame_rate: 24 },
  { name: 'Free social clip', price_type: 'Free', quality: 'Medium', resolution: 'HD', duration_sec: 5, frame_rate: 30 },
] as const;

interface Submitted {
  id: string;
  sample: (typeof SAMPLES)[number];
  step: string;
}

const parsed = parseCommandLine(USAGE, { 'exit-when-done': { type: 'boolean', default: false } });
const exitWhenDone = parsed['exit-when-done'];
const out = process.stdout;
const tty = out.isTTY === true;

let dataDir: string | undefined;
let app: App | undefined;
let fleet: Fleet | undefined;
const timers: NodeJS.Timeout[] = [];

async function shutDown(code: number): Promise<never> {
  for (const timer of timers) clearInterval(timer);
  await fleet?.stop();
  await app?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  process.exit(code);
}

function fail(message: string): Promise<never> {
  process.stderr.write(`demo: ${message}\n`);
  return shutDown(1);
}

const didNotStart = (error: unknown) =>
  fail(error instanceof PortUnavailableError ? error.message : `the service did not start: ${error instanceof Error ? error.message : String(error)}`);

stopOnSignals(
  () => {
    out.write('\nStopping the demo.\n');
    return shutDown(0);
  },
  () => {
    out.write('Stopping now, without waiting for the service to drain.\n');
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  },
);

const config = (() => {
  try {
    // Only what the demo chooses: a DATABASE_URL or S3_ENDPOINT of the caller's shell must not point
    // the demo's sample data at a real database or bucket.
    return loadConfig({
      PORT: process.env.PORT ?? '4000',
      // The demo signs tokens with the development secrets, so it stays on this machine.
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
      LOG_FORMAT: process.env.LOG_FORMAT,
    });
  } catch (error) {
    process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
    process.exit(2);
  }
})();
const jwtSecret = config.jwt.secret as string;

// Before the data folder exists: a port in use must not leave one behind.
await ensurePortFree(config).catch(didNotStart);
dataDir = await mkdtemp(join(tmpdir(), 'render-orchestrator-demo-'));

out.write('Starting the render orchestrator on its embedded defaults (PGlite, in-process bus, folder store)...\n');
// createApp and listen close what they opened when they fail, so `app` is set only once serving.
const service = await createApp({ ...config, dataDir }).catch(didNotStart);
// The fleet and the demo's own requests use the bound address; the printed links the public one.
const { url: local } = await service.listen().catch((error: unknown) => didNotStart(explainListenError(error, config)));
app = service;
const base = config.publicBaseUrl;

const adminId = randomUUID();
const userId = randomUUID();
const adminToken = await signDevelopmentToken(jwtSecret, { sub: adminId, admin: true, ttlSeconds: TOKEN_TTL_SECONDS });
// The plan claim lets the demo user submit a Plan render.
const userToken = await signDevelopmentToken(jwtSecret, { sub: userId, plan: 'demo', ttlSeconds: TOKEN_TTL_SECONDS });
await service.services.billing.credit(
  { kind: 'user', userId: adminId, isAdmin: true, plan: null, isReseller: false },
  { userId, amountMinor: 50_000n, idempotencyKey: `demo-funds-${userId}`, description: 'Demo credit' },
);

out.write(
  [
    '',
    `  Operator console     ${base}/console`,
    `  GraphQL playground   ${base}/playground`,
    `  REST API docs        ${base}/v1/docs`,
    `  Prometheus metrics   ${base}/metrics`,
    `  GraphQL endpoint     ${base}/graphql`,
    '',
    '  Admin token (paste it into the console, or after "Bearer " in the playground\'s Headers tab):',
    `  ${adminToken}`,
    '',
    '',
  ].join('\n'),
);

const board = new Board(out);
out.write(`Starting ${NODES} simulated render nodes...\n`);
const sims = await startFleet({
  url: local,
  nodes: NODES,
  adminToken,
  frameMs: FRAME_MS,
  heartbeatSeconds: HEARTBEAT_SECONDS,
  onEvent: (event) => board.observe(event),
}).catch((error: unknown) =>
  fail(`the simulated fleet did not start: ${error instanceof Error ? error.message : String(error)}`),
);
fleet = sims;

async function call(method: string, path: string, body?: unknown, token = userToken): Promise<{ status: number; body: any }> {
  const response = await fetch(`${local}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

const jobs: Submitted[] = [];
for (const sample of SAMPLES) {
  const answer = await call('POST', '/v1/renders', { saved_project_id: randomUUID(), ...sample });
  if (answer.status !== 201) await fail(`submitting "${sample.name}" failed (HTTP ${answer.status}): ${JSON.stringify(answer.body)}`);
  jobs.push({ id: answer.body.id, sample, step: answer.body.step });
  const price = (answer.body.paid_price_minor / 100).toFixed(2);
  out.write(
    `Submitted ${sample.name} (${answer.body.id}): ${sample.price_type} ${sample.quality} ${sample.resolution}, ` +
      `${sample.duration_sec} s at ${sample.frame_rate} fps, $${price}, ${answer.body.priority_queue} queue: ${answer.body.step}\n`,
  );
}

// A still of a scene: the studio service syncs the saved project first (here with the development
// service token), because a still is rendered from the template the project names.
const stillProject = randomUUID();
const synced = await call(
  'PUT',
  `/v1/saved-projects/${stillProject}`,
  { owner_user_id: userId, name: 'Product teaser', duration_sec: 5, aep_file_md5: 'd41d8cd98f00b204e9800998ecf8427e', ae_version: '24.1' },
  config.serviceTokens[0],
);
if (synced.status !== 200) await fail(`syncing the still's project failed (HTTP ${synced.status}): ${JSON.stringify(synced.body)}`);
const still = await call('POST', '/v1/snapshots', { saved_project_id: stillProject, scene_key: 'intro', frame_number: 48 });
if (still.status !== 202) await fail(`requesting a still failed (HTTP ${still.status}): ${JSON.stringify(still.body)}`);
const stillId: string = still.body.snapshot_id;
let stillStatus: string = still.body.status;
out.write(`Requested a still of scene "intro", frame 48 (${stillId}): ${stillStatus}\n\n`);

const started = Date.now();
const refresh = () => {
  if (tty) board.draw(sims.stats(), Date.now() - started);
  else board.line(sims.stats(), Date.now() - started);
};

let polling = false;
async function poll(): Promise<boolean> {
  for (const job of jobs.filter((candidate) => !FINISHED.has(candidate.step))) {
    const answer = await call('GET', `/v1/renders/${job.id}/progress`);
    if (answer.status !== 200) continue;
    job.step = answer.body.step;
    board.applyProgress(job.id, answer.body);
  }
  if (!STILL_FINISHED.has(stillStatus)) {
    const answer = await call('GET', `/v1/snapshots/${stillId}`);
    if (answer.status === 200) stillStatus = answer.body.status;
  }
  return jobs.every((job) => FINISHED.has(job.step)) && STILL_FINISHED.has(stillStatus);
}

await new Promise<void>((resolve) => {
  timers.push(setInterval(refresh, tty ? 250 : 5_000));
  timers.push(
    setInterval(() => {
      if (polling) return;
      polling = true;
      poll()
        .then((done) => done && resolve())
        .catch((error) => process.stderr.write(`demo: reading progress failed: ${String(error)}\n`))
        .finally(() => {
          polling = false;
        });
    }, 1_000),
  );
});
for (const timer of timers.splice(0)) clearInterval(timer);
refresh();

const rows: string[][] = [['job', 'name', 'price type', 'quality', 'step', 'Queued -> Completed']];
for (const job of jobs) {
  const { body } = await call('GET', `/v1/renders/${job.id}`);
  const seconds = body.completed_at ? `${((Date.parse(body.completed_at) - Date.parse(body.queued_at)) / 1000).toFixed(1)} s` : '-';
  rows.push([job.id, job.sample.name, job.sample.price_type, job.sample.quality, body.step, seconds]);
}
const widths = rows[0]!.map((_unused, column) => Math.max(...rows.map((row) => row[column]!.length)));
const rule = `+${widths.map((width) => '-'.repeat(width + 2)).join('+')}+`;
const table = rows.map((row) => `| ${row.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`);
out.write(`\n${[rule, table[0], rule, ...table.slice(1), rule].join('\n')}\n`);

const unfinished = jobs.filter((job) => job.step !== 'Completed');
if (unfinished.length > 0) {
  await fail(`${unfinished.length} sample job(s) did not complete: ${unfinished.map((job) => `${job.id} ${job.step}`).join(', ')}`);
}
const { body: stillNow } = await call('GET', `/v1/snapshots/${stillId}`);
if (stillNow.status !== 'Cached') await fail(`the still did not render: ${JSON.stringify(stillNow)}`);
out.write(`The still is Cached (${stillNow.width}×${stillNow.height}): ${stillNow.image_url}\n`);
out.write(`Every sample job is Completed after ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
if (exitWhenDone) await shutDown(0);
out.write(
  `\nStill serving at ${base} with the ${NODES} simulated nodes, which render whatever you submit ` +
    '(the playground, or the REST API with the admin token). Ctrl-C stops.\n',
);
