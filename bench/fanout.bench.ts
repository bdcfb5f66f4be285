// Fan-out: how long a frame report takes to reach the graphql-ws subscribers of its job's
// renderProgress, with 1,000 subscribers on two replicas sharing PostgreSQL and Redis. Reports are
// signed as their node would sign them and sent to one replica, one at a time; each report's
// latency runs from sending it to each subscriber of the job receiving the event.
// Baseline, same run: two bare `ws` servers relaying Redis pub/sub messages to as many plain
// WebSocket clients, per-job channels, the same number of messages.
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import WebSocket from 'ws';
import { type ChildServer, startChildServer } from './lib/child.ts';
import { Deliveries, frameReporter, subscribeProgress } from './lib/deliveries.ts';
import { openMany, type Subscription } from './lib/gql-ws.ts';
import { httpClient } from './lib/load.ts';
import { compared, report } from './lib/report.ts';
import { seedJobs } from './lib/seed.ts';
import { benchToken, createBenchDatabase, REDIS_URL, type ServiceProcess, startService } from './lib/service.ts';
import { summarize } from './lib/stats.ts';

const SUBSCRIBERS = 1_000;
const REPLICAS = 2;
const JOBS = 10;
const REPORTS = Number(process.env.BENCH_FANOUT_REPORTS ?? 60);
const GOAL_P99_MS = 25;

function plainSocket(url: string, onMessage: (data: WebSocket.RawData, receivedAt: number) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
    socket.on('message', (data) => onMessage(data, performance.now()));
  });
}

const database = await createBenchDatabase();
const services: ServiceProcess[] = [];
const relays: ChildServer[] = [];
const subscriptions: Subscription[] = [];
const sockets: WebSocket[] = [];
const publisher = createClient({ url: REDIS_URL });
const client = httpClient(4);
try {
  // One after the other: the first applies the migrations.
  for (let index = 0; index < REPLICAS; index++) services.push(
      await startService({
        databaseUrl: database.url,
        redisUrl: REDIS_URL,
        // One user holds every subscription and a few nodes send every report: rate limits are not what is measured.
        env: { RATE_LIMIT_USER_REQUESTS: '0', RATE_LIMIT_NODE_REQUESTS: '0' },
        nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof'] : [],
      }),
    );
  const channelPrefix = `bench-fanout-${randomBytes(6).toString('hex')}:`;
  for (let index = 0; index < REPLICAS; index++) {
    relays.push(await startChildServer('bench/lib/ws-relay-server.ts', { REDIS_URL, REDIS_CHANNEL_PREFIX: channelPrefix }));
  }
  await publisher.connect();

  const userId = randomUUID();
  const seeded = await seedJobs(database.url, { jobs: JOBS, chunksPerJob: 4, nodes: 20, userId, frames: true });
  const token = await benchToken(userId);

  const service = new Deliveries();
  const bare = new Deliveries();
  // Subscriber i watches job i % JOBS on replica i % REPLICAS: every job has watchers on both.
  subscriptions.push(
    ...(await openMany(SUBSCRIBERS, 50, (index) =>
      subscribeProgress({ url: `${services[index % REPLICAS]!.url}/graphql`, token, jobId: seeded.jobIds[index % JOBS]!, deliveries: service }),
    )),
  );
  sockets.push(
    ...(await openMany(SUBSCRIBERS, 50, (index) => {
      const topic = seeded.jobIds[index % JOBS]!;
      return plainSocket(`${relays[index % REPLICAS]!.url.replace(/^http/, 'ws')}/?topic=${topic}`, (_data, receivedAt) =>
        bare.receive(topic, receivedAt),
      );
    })),
  );

  const perJob = SUBSCRIBERS / JOBS;
  const reports = frameReporter(client, services[0]!.url, seeded);
  /** How long the replica took to answer each report (204), beside the deliveries. */
  const answered: number[] = [];
  // What the service sends each subscriber, so the baseline moves as many bytes.
  const sample = JSON.stringify({
    id: '1',
    type: 'next',
    payload: { data: { renderProgress: { jobId: seeded.jobIds[0], step: 'Rendering', progress: 1, currentFrame: 1, activeNodes: 1 } } },
  });

  // Warm-up: one report and one relayed message per job, not counted.
  for (let sequence = 0; sequence < JOBS; sequence++) {
    await reports.send(sequence);
    await publisher.publish(`${channelPrefix}${seeded.jobIds[sequence]}`, sample);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));

  // Interleaved, so load from elsewhere on the machine falls on both alike.
  for (let sequence = JOBS; sequence < JOBS + REPORTS; sequence++) {
    const jobId = reports.jobOf(sequence);
    await Deliveries.measure([service], jobId, perJob, async () => {
      answered.push(await reports.send(sequence));
    });
    await Deliveries.measure([bare], jobId, perJob, async () => {
      await publisher.publish(`${channelPrefix}${jobId}`, sample);
    });
  }

  const measured = summarize(service.latencies);
  const baseline = summarize(bare.latencies);
  const setup = `${SUBSCRIBERS.toLocaleString('en-US')} subscribers on ${REPLICAS} replicas, ${JOBS} jobs, ${REPORTS} reports`;
  const lost = service.lost > 0 || bare.lost > 0 ? `; lost: ${service.lost} (baseline ${bare.lost})` : '';
  report([
    compared(
      {
        benchmark: 'fanout',
        metric: 'report → subscriber median ms',
        value: measured.median,
        baseline: baseline.median,
        note: `${setup}${lost}; the report's own answer: median ${summarize(answered).median.toFixed(1)} ms`,
      },
      false,
    ),
    compared(
      {
        benchmark: 'fanout',
        metric: 'report → subscriber p99 ms',
        value: measured.p99,
        baseline: baseline.p99,
        goal: `≤ ${GOAL_P99_MS} ms`,
        met: measured.p99 <= GOAL_P99_MS && service.lost === 0,
        note: `${measured.count} deliveries; baseline: bare ws relay of Redis pub/sub${
          measured.p99 > GOAL_P99_MS ? "; replicas idle in a profile: the report's own transaction and the machine's load set the tail" : ''
        }`,
      },
      false,
    ),
  ]);
} finally {
  for (const subscription of subscriptions) subscription.close();
  for (const socket of sockets) socket.terminate();
  client.close();
  if (publisher.isOpen) await publisher.quit();
  await Promise.allSettled([...services.map((service) => service.stop()), ...relays.map((relay) => relay.stop())]);
  await database.drop();
}
