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
import { deriveAgentKey, signAgentRequest } from '../src/adapters/auth/agent-signature.ts';
import { type ChildServer, startChildServer } from './lib/child.ts';
import { openMany, type Subscription, subscribe } from './lib/gql-ws.ts';
import { httpClient } from './lib/load.ts';
import { compared, report } from './lib/report.ts';
import { seedJobs } from './lib/seed.ts';
import { BENCH_SECRETS, benchToken, createBenchDatabase, REDIS_URL, type ServiceProcess, startService } from './lib/service.ts';
import { summarize } from './lib/stats.ts';

const SUBSCRIBERS = 1_000;
const REPLICAS = 2;
const JOBS = 10;
const REPORTS = Number(process.env.BENCH_FANOUT_REPORTS ?? 60);
const DELIVERY_TIMEOUT_MS = 10_000;
const GOAL_P99_MS = 25;

const SUBSCRIPTION =
  'subscription Progress($jobId: UUID!) { renderProgress(jobId: $jobId) { jobId step progress currentFrame activeNodes } }';

/** Collects the deliveries of one message at a time: who got it, and after how long. */
class Deliveries {
  private expected = 0;
  private sentAt = 0;
  private topic = '';
  private done?: () => void;
  readonly latencies: number[] = [];
  lost = 0;

  receive(topic: string, receivedAt: number): void {
    if (topic !== this.topic || this.expected === 0) return;
    this.latencies.push(receivedAt - this.sentAt);
    if (--this.expected === 0) this.done?.();
  }

  /** Sends one message and waits until its `expected` receivers have it (or the timeout). */
  async measure(topic: string, expected: number, send: () => Promise<void>): Promise<void> {
    this.topic = topic;
    this.expected = expected;
    const delivered = new Promise<void>((resolve) => {
      this.done = resolve;
    });
    this.sentAt = performance.now();
    await send();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([delivered, new Promise((resolve) => (timer = setTimeout(resolve, DELIVERY_TIMEOUT_MS)))]);
    clearTimeout(timer);
    this.lost += this.expected;
    this.expected = 0;
  }
}

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
  // Each job's first chunk on a node is the one whose frames are reported.
  const chunks = seeded.jobIds.map((jobId) => seeded.rendering.find((chunk) => chunk.jobId === jobId)!);

  const service = new Deliveries();
  const bare = new Deliveries();
  // Subscriber i watches job i % JOBS on replica i % REPLICAS: every job has watchers on both.
  subscriptions.push(
    ...(await openMany(SUBSCRIBERS, 50, (index) =>
      subscribe({
        url: `${services[index % REPLICAS]!.url}/graphql`,
        token,
        query: SUBSCRIPTION,
        variables: { jobId: seeded.jobIds[index % JOBS] },
        onNext: (payload, receivedAt) => {
          const progress = (payload as { data?: { renderProgress?: { jobId: string } } }).data?.renderProgress;
          if (progress) service.receive(progress.jobId, receivedAt);
        },
      }),
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
  /** How long the replica took to answer each report (204), beside the deliveries. */
  const answered: number[] = [];
  const reportFrame = async (sequence: number) => {
    const chunk = chunks[sequence % JOBS]!;
    const frameNumber = chunk.startFrame + Math.floor(sequence / JOBS);
    const path = `/v1/internal/render/jobs/${chunk.jobId}/frames`;
    const body = JSON.stringify({
      frame_job_id: chunk.frameJobId,
      frame_number: frameNumber,
      file_size_bytes: 1_048_576,
      completed_at: new Date().toISOString(),
    });
    const agentKey = deriveAgentKey(BENCH_SECRETS.NODE_HMAC_SECRET, chunk.nodeId);
    const headers = signAgentRequest({ nodeId: chunk.nodeId, agentKey, method: 'POST', path, body });
    const started = performance.now();
    await client.expectOk(`${services[0]!.url}${path}`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body,
    });
    answered.push(performance.now() - started);
  };
  // What the service sends each subscriber, so the baseline moves as many bytes.
  const sample = JSON.stringify({
    id: '1',
    type: 'next',
    payload: { data: { renderProgress: { jobId: seeded.jobIds[0], step: 'Rendering', progress: 1, currentFrame: 1, activeNodes: 1 } } },
  });

  // Warm-up: one report and one relayed message per job, not counted.
  const warmUp = new Deliveries();
  for (let sequence = 0; sequence < JOBS; sequence++) {
    await warmUp.measure('', 0, () => reportFrame(sequence));
    await publisher.publish(`${channelPrefix}${seeded.jobIds[sequence]}`, sample);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));

  // Interleaved, so load from elsewhere on the machine falls on both alike.
  for (let sequence = JOBS; sequence < JOBS + REPORTS; sequence++) {
    const jobId = chunks[sequence % JOBS]!.jobId;
    await service.measure(jobId, perJob, () => reportFrame(sequence));
    await bare.measure(jobId, perJob, async () => {
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
        note: `${setup}${lost}; the report's own answer: median ${summarize(answered.slice(JOBS)).median.toFixed(1)} ms`,
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
