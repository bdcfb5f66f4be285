// `npm run bench [-- name ...]`: runs every bench/*.bench.ts (or the named ones) one after the
// other, each in its own process so one benchmark's heap and sockets cannot slow the next, then
// prints one table and records it in BENCHMARKS.md with the machine and the commands.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startS3rver } from '../test/support/s3rver.ts';
import { ensureTestServers, TestServersUnavailable } from '../test/support/servers.ts';
import { type Row, table } from './lib/report.ts';
import { ensureBuilt, s3Environment } from './lib/service.ts';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const rootDir = join(benchDir, '..');
const RESULTS_START = '<!-- results:start -->';
const RESULTS_END = '<!-- results:end -->';

const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.slice(0, -'.bench.ts'.length))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`Unknown benchmark(s): ${unknown.join(', ')}. Available: ${available.join(', ')}\n`);
  process.exit(2);
}
const names = wanted.length > 0 ? wanted : available;

function runOne(name: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, `${name}.bench.ts`)], {
      cwd: rootDir,
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function machine(): string {
  const cpu = cpus();
  const commit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: rootDir, encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  return [
    `- Date: ${new Date().toISOString()}; commit ${commit}`,
    `- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${gib(totalmem())} memory (${gib(freemem())} free at start), ${platform()} ${release()}`,
    `- Node.js ${process.version}`,
  ].join('\n');
}

function record(rows: Row[], durationSeconds: number, failed: string[]): void {
  const file = join(rootDir, 'BENCHMARKS.md');
  const command = `npm run bench${wanted.length > 0 ? ` -- ${wanted.join(' ')}` : ''}`;
  const section = [
    RESULTS_START,
    `Recorded by \`${command}\` in ${Math.round(durationSeconds)} s.`,
    '',
    machine(),
    ...(failed.length > 0 ? [`- Failed: ${failed.join(', ')} (no rows recorded for them)`] : []),
    '',
    table(rows),
    RESULTS_END,
  ].join('\n');
  const current = readFileSync(file, 'utf8');
  const start = current.indexOf(RESULTS_START);
  const end = current.indexOf(RESULTS_END);
  if (start === -1 || end === -1) throw new Error(`BENCHMARKS.md lacks the ${RESULTS_START} … ${RESULTS_END} markers`);
  writeFileSync(file, current.slice(0, start) + section + current.slice(end + RESULTS_END.length));
}

const scratch = mkdtempSync(join(tmpdir(), 'bench-'));
const resultsFile = join(scratch, 'rows.jsonl');
writeFileSync(resultsFile, '');
// The services run in production mode, which keeps objects in S3 only: one S3 server serves the
// whole run. The build comes first, so that no benchmark's time includes it.
// The same PostgreSQL and Redis as the tests, or private ones where those do not answer.
const servers = await ensureTestServers().catch((error: unknown) => {
  if (!(error instanceof TestServersUnavailable)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
for (const note of servers.notes) process.stdout.write(`${note}\n`);
const s3 = await startS3rver();
ensureBuilt();
const started = performance.now();
const failed: string[] = [];
for (const name of names) {
  process.stdout.write(`\n== ${name} ==\n`);
  const code = await runOne(name, {
    BENCH_RESULTS_FILE: resultsFile,
    TEST_DATABASE_URL: servers.databaseUrl,
    TEST_REDIS_URL: servers.redisUrl,
    ...s3Environment(s3.config),
  });
  if (code !== 0) failed.push(name);
}
await s3.stop();
await servers.stop();
const rows = readFileSync(resultsFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Row);
rmSync(scratch, { recursive: true, force: true });
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`\n== All benchmarks (${Math.round(seconds)} s) ==\n${table(rows)}\n`);
// A partial run (named benchmarks) still records, saying which command made the figures.
record(rows, seconds, failed);
if (failed.length > 0) {
  process.stderr.write(`Failed: ${failed.join(', ')}\n`);
  process.exitCode = 1;
}
