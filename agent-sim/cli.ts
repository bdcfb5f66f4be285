// Runs a fleet of simulated render nodes against a running service until --duration elapses or
// Ctrl-C, showing a progress bar per job, then a summary.
import { readFile, writeFile } from 'node:fs/promises';
import { Board } from './board.ts';
import { type Fleet, type NodeKey, startFleet } from './fleet.ts';
import { Transport } from './http.ts';
import { numberOption, parseCommandLine, usageError } from '../scripts/lib/command-line.ts';

const ADMIN_TOKEN_VARIABLE = 'AGENT_SIM_ADMIN_TOKEN';
const USAGE = `Usage: npm run agent-sim -- [options]

  --nodes N               number of simulated nodes (default 20; with --keys, all of them)
  --url URL               the service (default http://localhost:4000)
  --admin-token-file F    file holding an admin JWT, which registers new nodes and reads job
                          progress; or put the token in ${ADMIN_TOKEN_VARIABLE} (either way it stays
                          out of the command line that npm echoes and ps shows)
  --admin-token T         the admin JWT itself
  --keys FILE             JSON list of {"id", "agentKey"} of nodes registered before
  --save-keys FILE        write the registered nodes' keys, for a later --keys run
  --frame-ms MS           render time of one frame (default 50)
  --failure-rate P        per chunk, probability of reporting a failure part-way (default 0)
  --crash-rate P          per chunk, probability of an After Effects crash part-way (default 0)
  --hang-rate P           per chunk, probability of going silent part-way (default 0)
  --heartbeat-seconds S   override the service's heartbeat interval
  --region R[,R...]       region(s) of registered nodes (default sim)
  --ae-version V          After Effects version the nodes run (default 24.1)
  --templates MD5[,MD5]   template md5s every node holds in its cache
  --seed N                seed of the simulation's choices (printed at the end)
  --duration S            stop after S seconds (default: run until Ctrl-C)
`;

const TOKEN_HINT =
  'agent-sim needs an admin token to register nodes, or the keys of nodes registered before.\n' +
  'Make a development admin token (with the service\'s JWT_SECRET) and pass it:\n\n' +
  `  ${ADMIN_TOKEN_VARIABLE}="$(npm run -s token -- --sub <uuid> --admin)" npm run agent-sim -- --nodes 20\n`;

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const number = (name: string, value: string | undefined, check: (n: number) => boolean) =>
  numberOption(USAGE, name, value, check);

const list = (value: string | undefined) => value?.split(',').map((item) => item.trim()).filter(Boolean);

const parsed = parseCommandLine(USAGE, {
  nodes: { type: 'string' },
  url: { type: 'string', default: 'http://localhost:4000' },
  'admin-token': { type: 'string' },
  'admin-token-file': { type: 'string' },
  keys: { type: 'string' },
  'save-keys': { type: 'string' },
  'frame-ms': { type: 'string' },
  'failure-rate': { type: 'string' },
  'crash-rate': { type: 'string' },
  'hang-rate': { type: 'string' },
  'heartbeat-seconds': { type: 'string' },
  region: { type: 'string' },
  'ae-version': { type: 'string' },
  templates: { type: 'string' },
  seed: { type: 'string' },
  duration: { type: 'string' },
});

// Every number is checked before any file is read or the service is asked.
const isRate = (n: number) => n >= 0 && n <= 1;
const requestedNodes = number('nodes', parsed.nodes, (n) => Number.isInteger(n) && n > 0);
const duration = number('duration', parsed.duration, (n) => n > 0);
const seed = number('seed', parsed.seed, (n) => Number.isInteger(n) && n >= 0);
const heartbeatSeconds = number('heartbeat-seconds', parsed['heartbeat-seconds'], (n) => n > 0);
const frameMs = number('frame-ms', parsed['frame-ms'], (n) => n >= 0) ?? 50;
const failureRate = number('failure-rate', parsed['failure-rate'], isRate) ?? 0;
const crashRate = number('crash-rate', parsed['crash-rate'], isRate) ?? 0;
const hangRate = number('hang-rate', parsed['hang-rate'], isRate) ?? 0;

async function readAdminToken(): Promise<string | undefined> {
  const file = parsed['admin-token-file'];
  if (parsed['admin-token'] !== undefined && file !== undefined) {
    usageError(USAGE, '--admin-token and --admin-token-file: give one');
  }
  if (file === undefined) return parsed['admin-token'] ?? (process.env[ADMIN_TOKEN_VARIABLE] || undefined);
  const contents = await readFile(file, 'utf8').catch((error: Error) => fail(`--admin-token-file ${file}: ${error.message}`));
  const token = contents.trim();
  if (token === '') fail(`--admin-token-file ${file}: the file is empty`);
  return token;
}
const adminToken = await readAdminToken();
let keys: NodeKey[] | undefined;
if (parsed.keys !== undefined) {
  try {
    const raw = JSON.parse(await readFile(parsed.keys, 'utf8')) as Array<Record<string, unknown>>;
    keys = raw.map((entry) => {
      const agentKey = entry.agentKey ?? entry.agent_key;
      if (typeof entry.id !== 'string' || typeof agentKey !== 'string') throw new Error('each entry needs "id" and "agentKey"');
      return { id: entry.id, agentKey };
    });
  } catch (error) {
    fail(`--keys ${parsed.keys}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
if (adminToken === undefined && keys === undefined) fail(TOKEN_HINT);

const nodes = requestedNodes ?? keys?.length ?? 20;
const out = process.stdout;
const board = new Board(out);
const tty = out.isTTY === true;

out.write(`agent-sim: starting ${nodes} nodes against ${parsed.url}\n`);
let fleet: Fleet;
try {
  fleet = await startFleet({
    url: parsed.url,
    nodes,
    ...(adminToken !== undefined ? { adminToken } : {}),
    ...(keys ? { keys } : {}),
    ...(parsed.region ? { region: list(parsed.region) ?? [] } : {}),
    ...(parsed['ae-version'] ? { aeVersion: parsed['ae-version'] } : {}),
    ...(parsed.templates ? { templates: list(parsed.templates) ?? [] } : {}),
    frameMs,
    failureRate,
    crashRate,
    hangRate,
    ...(heartbeatSeconds !== undefined ? { heartbeatSeconds } : {}),
    ...(seed !== undefined ? { seed } : {}),
    onEvent: (event) => board.observe(event),
  });
} catch (error) {
  fail(`agent-sim: ${error instanceof Error ? error.message : String(error)}`, 1);
}
const started = Date.now();
if (parsed['save-keys']) {
  await writeFile(parsed['save-keys'], `${JSON.stringify(fleet.keys, null, 2)}\n`);
  out.write(`agent-sim: keys of the ${fleet.keys.length} nodes written to ${parsed['save-keys']}\n`);
}
out.write(
  `agent-sim: ${fleet.stats().online}/${nodes} nodes online (seed ${fleet.seed})` +
    `${duration ? `, running ${duration} s` : ''}; Ctrl-C stops\n`,
);

// Job progress comes from the service when the admin token allows asking; otherwise the bars
// show only the frames this fleet reported.
const progressReader = adminToken ? new Transport(parsed.url, { connections: 2, timeoutMs: 5_000 }) : undefined;
let polling = false;
async function pollProgress(): Promise<void> {
  if (!progressReader || !adminToken || polling) return;
  polling = true;
  try {
    for (const jobId of board.jobsToPoll()) {
      const answer = await progressReader.bearer(adminToken, 'GET', `/v1/renders/${encodeURIComponent(jobId)}/progress`);
      if (answer.status === 200 && answer.body) board.applyProgress(jobId, answer.body);
    }
  } finally {
    polling = false;
  }
}

const refresh = () => {
  if (tty) board.draw(fleet.stats(), Date.now() - started);
  else board.line(fleet.stats(), Date.now() - started);
};
const timers = [
  setInterval(refresh, tty ? 250 : 5_000),
  ...(progressReader ? [setInterval(() => void pollProgress(), 1_000)] : []),
];

let finishing = false;
async function finish(): Promise<void> {
  if (finishing) return;
  finishing = true;
  for (const timer of timers) clearInterval(timer);
  const elapsed = Date.now() - started;
  // Stopping ends every node, so how many were alive is read before; the counters after, so that
  // the answers still on the wire are counted.
  const { alive, online } = fleet.stats();
  await fleet.stop();
  progressReader?.close();
  const stats = { ...fleet.stats(), alive, online };
  if (tty) board.draw(stats, elapsed);
  out.write(`\n${board.summary(stats, elapsed, fleet.seed)}\n`);
  process.exit(0);
}

process.on('SIGINT', () => {
  // A second Ctrl-C while the fleet winds down leaves at once.
  if (finishing) process.exit(130);
  void finish();
});
process.on('SIGTERM', () => void finish());
if (duration !== undefined) setTimeout(() => void finish(), duration * 1000);
