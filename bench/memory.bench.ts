// Memory: the service's resident set with 10,000 idle graphql-ws subscriptions (renderProgress of
// jobs that do not change), against a bare `ws` server holding 10,000 idle connections.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { type ChildServer, startChildServer } from './lib/child.ts';
import { openMany, subscribe } from './lib/gql-ws.ts';
import { compared, report } from './lib/report.ts';
import { seedJobs } from './lib/seed.ts';
import { benchToken, createBenchDatabase, REDIS_URL, type ServiceProcess, startService } from './lib/service.ts';

const SUBSCRIBERS = Number(process.env.BENCH_MEMORY_SUBSCRIBERS ?? 10_000);
const JOBS = 100;
const PARALLEL_HANDSHAKES = Number(process.env.BENCH_MEMORY_PARALLEL ?? 128);
const WARM_UP = 200;
/** Lets the processes settle (sockets' buffers, lazy allocations) before RSS is read. */
const SETTLE_MS = 3_000;

const SUBSCRIPTION = 'subscription Progress($jobId: UUID!) { renderProgress(jobId: $jobId) { jobId step progress } }';
const MIB = 2 ** 20;

function plainSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), { perMessageDeflate: false });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function closeAll(sockets: Array<{ terminate(): void } | { close(): void }>): Promise<void> {
  for (const socket of sockets) ('terminate' in socket ? socket.terminate() : socket.close());
  await sleep(1_000);
}

/** RSS before and after `open` holds SUBSCRIBERS connections, once a warm-up batch has come and gone. */
async function measure<T extends { terminate(): void } | { close(): void }>(
  server: ServiceProcess | ChildServer,
  open: (index: number) => Promise<T>,
): Promise<{ before: number; after: number; seconds: number }> {
  await closeAll(await openMany(WARM_UP, PARALLEL_HANDSHAKES, open));
  await sleep(SETTLE_MS);
  const before = server.rss();
  const started = performance.now();
  const held = await openMany(SUBSCRIBERS, PARALLEL_HANDSHAKES, open);
  const seconds = (performance.now() - started) / 1000;
  await sleep(SETTLE_MS);
  const after = server.rss();
  await closeAll(held);
  return { before, after, seconds };
}

const database = await createBenchDatabase();
let service: ServiceProcess | undefined;
let relay: ChildServer | undefined;
try {
  service = await startService({
    databaseUrl: database.url,
    redisUrl: REDIS_URL,
    // One user opens all the subscriptions: the per-user rate limit is not what is measured.
    env: { RATE_LIMIT_USER_REQUESTS: '0' },
    nodeArgs: process.env.BENCH_PROFILE ? ['--cpu-prof'] : [],
  });
  const userId = randomUUID();
  const { jobIds } = await seedJobs(database.url, { jobs: JOBS, chunksPerJob: 4, nodes: 10, userId });
  const token = await benchToken(userId);
  const serviceUrl = `${service.url}/graphql`;
  const subscribed = await measure(service, (index) =>
    subscribe({ url: serviceUrl, token, query: SUBSCRIPTION, variables: { jobId: jobIds[index % JOBS] } }).then((s) => s.socket),
  );
  await service.stop();
  service = undefined;

  relay = await startChildServer('bench/lib/ws-relay-server.ts', {});
  const relayUrl = relay.url;
  const bare = await measure(relay, () => plainSocket(relayUrl));

  const perSubscriber = (subscribed.after - subscribed.before) / SUBSCRIBERS;
  const perConnection = (bare.after - bare.before) / SUBSCRIBERS;
  const count = SUBSCRIBERS.toLocaleString('en-US');
  const perSubscriberRow = compared(
    {
      benchmark: 'memory',
      metric: 'KiB per idle subscriber',
      value: perSubscriber / 1024,
      baseline: perConnection / 1024,
      goal: '≤ 2x bare (ratio ≥ 0.5x)',
      note: 'RSS growth / subscribers; baseline: bare ws connection',
    },
    false,
  );
  report([
    compared(
      {
        benchmark: 'memory',
        metric: `RSS MiB with ${count} idle subscribers`,
        value: subscribed.after / MIB,
        baseline: bare.after / MIB,
        note: `before: ${(subscribed.before / MIB).toFixed(0)} MiB (bare ws server: ${(bare.before / MIB).toFixed(0)} MiB); subscribed in ${subscribed.seconds.toFixed(1)} s`,
      },
      false,
    ),
    { ...perSubscriberRow, met: perSubscriber <= 2 * perConnection },
  ]);
} finally {
  await Promise.allSettled([service?.stop(), relay?.stop()]);
  await database.drop();
}
