// Gateway: what the federated gateway adds to live progress. A signed frame report is sent to the
// service; its latency runs from sending it to each graphql-ws subscriber of the job's
// renderProgress receiving the event, through Hive Gateway (gateway/main.ts, a process of its own,
// in front of the service) and straight to the same service process. Each report is timed on both
// paths at once, so the machine's noise falls on both alike.
import { randomUUID } from 'node:crypto';
import { Deliveries, frameReporter, subscribeProgress } from './lib/deliveries.ts';
import { type GatewayProcess, startGateway } from './lib/gateway.ts';
import { openMany, type Subscription } from './lib/gql-ws.ts';
import { httpClient } from './lib/load.ts';
import { compared, report, type Row } from './lib/report.ts';
import { seedJobs } from './lib/seed.ts';
import { benchToken, createBenchDatabase, REDIS_URL, type ServiceProcess, startService } from './lib/service.ts';
import { summarize } from './lib/stats.ts';

/** Per path: as many subscribers through the gateway as straight to the service. */
const SUBSCRIBERS = 100;
const JOBS = 10;
const REPORTS = Number(process.env.BENCH_GATEWAY_REPORTS ?? 300);
/** Reports before the measured ones, so that both processes have compiled their hot paths. */
const WARM_UP = 2 * JOBS;
/**
 * No operation here reaches the identity subgraph, and the gateway does not call a subgraph to start
 * or to answer /readiness, so a closed port stands in for it.
 */
const IDENTITY_URL = 'http://127.0.0.1:9/graphql';

const database = await createBenchDatabase();
let service: ServiceProcess | undefined;
let gateway: GatewayProcess | undefined;
const subscriptions: Subscription[] = [];
const client = httpClient(4);
try {
  service = await startService({
    databaseUrl: database.url,
    redisUrl: REDIS_URL,
    // One user holds every subscription and a few nodes send every report: rate limits are not what is measured.
    env: { RATE_LIMIT_USER_REQUESTS: '0', RATE_LIMIT_NODE_REQUESTS: '0' },
  });
  gateway = await startGateway({ render: `${service.url}/graphql`, identity: IDENTITY_URL });

  const userId = randomUUID();
  const seeded = await seedJobs(database.url, { jobs: JOBS, chunksPerJob: 4, nodes: 20, userId, frames: true });
  const token = await benchToken(userId);
  const reports = frameReporter(client, service.url, seeded);

  const direct = new Deliveries();
  const through = new Deliveries();
  // Paths alternate as subscribers open, so neither sits first in the service's list of a job's
  // subscribers (each event goes out to them in that order).
  const paths = [
    { url: `${service.url}/graphql`, deliveries: direct },
    { url: `${gateway.url}/graphql`, deliveries: through },
  ];
  subscriptions.push(
    ...(await openMany(2 * SUBSCRIBERS, 20, (index) =>
      subscribeProgress({ ...paths[index % 2]!, token, jobId: seeded.jobIds[Math.floor(index / 2) % JOBS]! }),
    )),
  );

  for (let sequence = 0; sequence < WARM_UP; sequence++) await reports.send(sequence);
  await new Promise((resolve) => setTimeout(resolve, 500));

  /** How long the service took to answer each report (204), beside the deliveries. */
  const answered: number[] = [];
  for (let sequence = WARM_UP; sequence < WARM_UP + REPORTS; sequence++) {
    await Deliveries.measure([direct, through], reports.jobOf(sequence), SUBSCRIBERS / JOBS, async () => {
      answered.push(await reports.send(sequence));
    });
  }

  const straight = summarize(direct.latencies);
  const gatewayed = summarize(through.latencies);
  const added = (figure: 'median' | 'p99') =>
    `gateway adds ${(gatewayed[figure] - straight[figure]).toFixed(1)} ms (${(gatewayed[figure] / straight[figure]).toFixed(2)}x direct)`;
  const row = (figure: 'median' | 'p99', note: string): Row =>
    compared(
      {
        benchmark: 'gateway',
        metric: `report → subscriber ${figure} ms, gateway (baseline: direct)`,
        value: gatewayed[figure],
        baseline: straight[figure],
        note: `${added(figure)}; ${note}`,
      },
      false,
    );
  report([
    row(
      'median',
      `${SUBSCRIBERS} subscribers per path on 1 service process, ${JOBS} jobs, ${REPORTS} reports; the report's own answer: median ${summarize(answered).median.toFixed(1)} ms`,
    ),
    row('p99', `${gatewayed.count} deliveries through the gateway, ${straight.count} direct`),
    {
      benchmark: 'gateway',
      metric: 'lost deliveries, gateway (baseline: direct)',
      value: through.lost,
      baseline: direct.lost,
      goal: '0',
      met: through.lost === 0 && direct.lost === 0,
    },
  ]);
} finally {
  for (const subscription of subscriptions) subscription.close();
  client.close();
  await gateway?.stop();
  await service?.stop();
  await database.drop();
}
