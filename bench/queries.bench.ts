// Queries: the GraphQL read path against what the database alone can do. Three listings of jobs
// with their chunks and the chunks' nodes, `{ id frameJobs { id node { id } } }` per job, asked of
// the service process over HTTP and of a hand-written endpoint (bare node:http + pg, one SQL
// statement building the JSON) on the same database:
// - renderJobs(first: 50) as an admin (everyone's jobs);
// - renderJobs(first: 20) as a user (their own jobs; nodes are hidden from users, so null);
// - _entities of 100 User representations with renderJobs(first: 5), as a gateway sends it.
// Also the SQL statements one request costs at two sizes, which must be the same, and the CPU the
// service spends on its own while no request comes: the jobs are rendering on nodes that are all
// busy, a farm's usual state under load, and the listings are measured beside its loops.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { startChildServer } from './lib/child.ts';
import { closedLoop, httpClient } from './lib/load.ts';
import { cpuSeconds } from './lib/cpu.ts';
import { compared, report, type Row } from './lib/report.ts';
import { seedJobs } from './lib/seed.ts';
import { BENCH_SECRETS, benchToken, createBenchDatabase, startService } from './lib/service.ts';
import { median, percentile } from './lib/stats.ts';

const JOBS = 2_000;
const CHUNKS_PER_JOB = 12;
const NODES = 200;
const OWN_JOBS = 100;
const ENTITY_USERS = 100;
const JOBS_PER_ENTITY_USER = 5;
const ROUNDS = 3;
const ROUND_MS = 3_000;
const CONCURRENCY = 16;
const GOAL_RATIO = 0.5;
const IDLE_MS = 5_000;
/** A twentieth of a core: the background loops leave the rest to the requests. */
const IDLE_GOAL_MS_PER_S = 50;

const JOB_FIELDS = 'id frameJobs { id node { id } }';
const LIST = `query RenderJobsWithChunks($first: Int) { renderJobs(first: $first) { edges { node { ${JOB_FIELDS} } } } }`;
const ENTITIES = `query UsersWithJobs($representations: [_Any!]!, $first: Int) {
  _entities(representations: $representations) { ... on User { id renderJobs(first: $first) { edges { node { ${JOB_FIELDS} } } } } }
}`;

interface Scenario {
  name: string;
  token: string;
  /** The GraphQL request at a size (a page, or a number of representations). */
  body(size: number): string;
  /** The baseline's URL path for the same answer at that size. */
  baselinePath(size: number): string;
  /** The size measured, and a smaller one whose statement count must equal its own. */
  size: number;
  smallSize: number;
  /** The rows the answer must hold at a size, so that an empty answer never passes for a fast one. */
  expected(size: number): number;
  count(answer: { data?: Record<string, unknown[] | { edges: unknown[] }> }): number;
}

const edgesOf = (answer: { data?: Record<string, unknown> }) => (answer.data?.renderJobs as { edges: unknown[] } | undefined)?.edges.length ?? -1;

/**
 * Statements per request, counted with the database adapter's query hook on an in-process app
 * over the same database (the service process cannot be observed from here).
 */
async function statementsPerRequest(databaseUrl: string, scenario: Scenario, size: number): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-queries-'));
  const app = await createApp(
    loadConfig({ NODE_ENV: 'development', DATABASE_URL: databaseUrl, DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...BENCH_SECRETS }),
    { startLoops: false },
  );
  try {
    let count = 0;
    const off = app.services.db.onQuery(() => count++);
    const answer = await app.http.app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { authorization: `Bearer ${scenario.token}`, 'content-type': 'application/json' },
      payload: scenario.body(size),
    });
    off();
    const body = answer.json() as { errors?: unknown; data?: Record<string, unknown[] | { edges: unknown[] }> };
    if (body.errors || scenario.count(body) !== scenario.expected(size)) throw new Error(`Unexpected answer: ${answer.body.slice(0, 300)}`);
    return count;
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const database = await createBenchDatabase();
const service = await startService({
  databaseUrl: database.url,
  nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof'] : [],
  // One user asks for their list thousands of times: the per-user rate limit is not what is measured.
  env: { RATE_LIMIT_USER_REQUESTS: '0' },
});
const baseline = await startChildServer('bench/lib/sql-json-server.ts', { DATABASE_URL: database.url });
const client = httpClient(CONCURRENCY);
try {
  const owner = randomUUID();
  const entityUsers = Array.from({ length: ENTITY_USERS }, () => randomUUID());
  await seedJobs(database.url, { jobs: JOBS, chunksPerJob: CHUNKS_PER_JOB, nodes: NODES });
  await seedJobs(database.url, { jobs: OWN_JOBS, chunksPerJob: CHUNKS_PER_JOB, nodes: 20, userId: owner });
  await seedJobs(database.url, { jobs: ENTITY_USERS * JOBS_PER_ENTITY_USER, chunksPerJob: CHUNKS_PER_JOB, nodes: 20, userIds: entityUsers });
  const adminToken = await benchToken(randomUUID(), { admin: true });
  const ownerToken = await benchToken(owner);

  const scenarios: Scenario[] = [
    {
      name: 'renderJobs(first: 50), admin',
      token: adminToken,
      body: (first) => JSON.stringify({ query: LIST, variables: { first } }),
      baselinePath: (first) => `/jobs?first=${first}`,
      size: 50,
      smallSize: 5,
      expected: (first) => first,
      count: edgesOf,
    },
    {
      name: "renderJobs(first: 20), a user's own",
      token: ownerToken,
      body: (first) => JSON.stringify({ query: LIST, variables: { first } }),
      baselinePath: (first) => `/jobs?first=${first}&user=${owner}`,
      size: 20,
      smallSize: 5,
      expected: (first) => first,
      count: edgesOf,
    },
    {
      name: `_entities of ${ENTITY_USERS} Users, renderJobs(first: ${JOBS_PER_ENTITY_USER})`,
      token: adminToken,
      body: (users) =>
        JSON.stringify({
          query: ENTITIES,
          variables: { representations: entityUsers.slice(0, users).map((id) => ({ __typename: 'User', id })), first: JOBS_PER_ENTITY_USER },
        }),
      baselinePath: (users) => `/entities?first=${JOBS_PER_ENTITY_USER}&users=${entityUsers.slice(0, users).join(',')}`,
      size: ENTITY_USERS,
      smallSize: 10,
      expected: (users) => users,
      count: (answer) => (Array.isArray(answer.data?._entities) ? answer.data._entities.length : -1),
    },
  ];

  // After the loops' first passes over the new rows, and before any request.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const idleFrom = cpuSeconds(service.pid);
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const idleMsPerSecond = ((cpuSeconds(service.pid) - idleFrom) * 1000) / (IDLE_MS / 1000);
  const rows: Row[] = [
    {
      benchmark: 'queries',
      metric: 'service CPU with no request, ms per s',
      value: idleMsPerSecond,
      goal: `≤ ${IDLE_GOAL_MS_PER_S}`,
      met: idleMsPerSecond <= IDLE_GOAL_MS_PER_S,
      note: `over ${IDLE_MS / 1000} s, with ${JOBS + OWN_JOBS + ENTITY_USERS * JOBS_PER_ENTITY_USER} jobs rendering and none of their nodes free: the scheduling and other loops alone`,
    },
  ];
  for (const scenario of scenarios) {
    const statements = [await statementsPerRequest(database.url, scenario, scenario.smallSize), await statementsPerRequest(database.url, scenario, scenario.size)];
    const graphqlRequest = {
      method: 'POST',
      headers: { authorization: `Bearer ${scenario.token}`, 'content-type': 'application/json' },
      body: scenario.body(scenario.size),
    };
    const baselineUrl = `${baseline.url}${scenario.baselinePath(scenario.size)}`;
    const sendService = async () => {
      await client.expectOk(`${service.url}/graphql`, graphqlRequest);
    };
    const sendBaseline = async () => {
      await client.expectOk(baselineUrl);
    };

    // Both must answer the same thing, or the comparison means nothing.
    const [fromService, fromBaseline] = await Promise.all([client.expectOk(`${service.url}/graphql`, graphqlRequest), client.expectOk(baselineUrl)]);
    if (JSON.stringify(JSON.parse(fromService.body)) !== JSON.stringify(JSON.parse(fromBaseline.body))) {
      throw new Error(`${scenario.name}: the service and the baseline answer differently:\n${fromService.body.slice(0, 300)}\n${fromBaseline.body.slice(0, 300)}`);
    }

    // Warm-up: JIT, connection pools, PostgreSQL caches.
    await closedLoop({ concurrency: CONCURRENCY, durationMs: 1_500, send: sendService });
    await closedLoop({ concurrency: CONCURRENCY, durationMs: 1_500, send: sendBaseline });

    const rates = { service: [] as number[], baseline: [] as number[] };
    const p99s = { service: [] as number[], baseline: [] as number[] };
    let errors = 0;
    let firstError: string | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (['service', 'baseline'] as const) : (['baseline', 'service'] as const);
      for (const side of order) {
        const result = await closedLoop({ concurrency: CONCURRENCY, durationMs: ROUND_MS, send: side === 'service' ? sendService : sendBaseline });
        errors += result.errors;
        firstError ??= result.firstError;
        rates[side].push(result.throughput);
        p99s[side].push(percentile([...result.latencies].sort((a, b) => a - b), 99));
      }
    }
    if (errors > 0) throw new Error(`${scenario.name}: ${errors} requests failed; first: ${firstError}`);

    const throughput = compared(
      {
        benchmark: 'queries',
        metric: `${scenario.name}: requests/s`,
        value: median(rates.service),
        baseline: median(rates.baseline),
        goal: `≥ ${GOAL_RATIO}x`,
        note: `${ROUNDS} interleaved rounds of ${ROUND_MS / 1000} s, ${CONCURRENCY} keep-alive callers, ${fromService.body.length} bytes per answer`,
      },
      true,
    );
    throughput.met = (throughput.ratio ?? 0) >= GOAL_RATIO;
    // What a profile of the service under this load shows (BENCHMARKS.md, BENCH_PROFILE=1).
    if (!throughput.met) throughput.note += '; limited by work per row in one Node process: GraphQL execution, garbage collection and serialising the answer';
    rows.push(
      {
        benchmark: 'queries',
        metric: `${scenario.name}: SQL statements per request`,
        value: statements[1]!,
        goal: 'constant',
        met: statements[0] === statements[1],
        note: `${statements[0]} at ${scenario.smallSize}, ${statements[1]} at ${scenario.size}; baseline: 1`,
      },
      throughput,
      compared(
        {
          benchmark: 'queries',
          metric: `${scenario.name}: p99 ms`,
          value: median(p99s.service),
          baseline: median(p99s.baseline),
          note: `under ${CONCURRENCY} concurrent callers, median of the rounds' p99`,
        },
        false,
      ),
    );
  }
  report(rows);
} finally {
  client.close();
  await Promise.allSettled([service.stop(), baseline.stop()]);
  await database.drop();
}
