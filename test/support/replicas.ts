// Helpers for tests that run several replicas of the service on one PostgreSQL and one Redis:
// real service processes, a progress subscriber over a real graphql-ws WebSocket, and the checks
// that its view of a job is complete and in order.
import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { inject } from 'vitest';
import { type ServiceProcess, startService } from '../../bench/lib/service.ts';
import { signDevelopmentToken } from '../../src/adapters/auth/jwt.ts';
import { type Database, openDatabase } from '../../src/adapters/db/database.ts';
import { createBillingService } from '../../src/domain/billing/ledger.ts';
import { FollowRenderProgressDocument, type FollowRenderProgressSubscription } from '../generated/graphql.ts';
import { TEST_ADMIN, TEST_JWT_SECRET, TEST_NODE_HMAC_SECRET, TEST_SERVICE_TOKEN } from './app.ts';
import { createTestDatabase } from './database.ts';

export interface Replicas {
  /** The service processes, each with its base URL; stop() is SIGTERM, kill() SIGKILL. */
  processes: ServiceProcess[];
  urls: string[];
  /** A connection of the test's own to the replicas' database, for checks in SQL. */
  db: Database;
  redisPrefix: string;
  token(userId: string, options?: { admin?: boolean }): Promise<string>;
  /** Starts process `index` again, on the port it had, after it was stopped or killed. */
  revive(index: number): Promise<void>;
  /** A new user whose wallet holds amountMinor. */
  user(amountMinor: number): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

/**
 * `count` processes of the service (`tsx src/main.ts`) on one cloned PostgreSQL database, the
 * machine's Redis under a prefix of their own and the global setup's s3rver, each ready (/readyz).
 * `redisUrlOf` may give a process another way to that Redis (a proxy that cuts it off).
 */
export async function startReplicas(count: number, { redisUrlOf }: { redisUrlOf?: (index: number) => string | undefined } = {}): Promise<Replicas> {
  const database = await createTestDatabase();
  const redisPrefix = `test:${randomUUID()}:`;
  const s3 = inject('s3');
  const options = {
    databaseUrl: database.url,
    redisUrl: inject('redisUrl'),
    env: {
      NODE_ENV: 'test',
      REDIS_PREFIX: redisPrefix,
      JWT_SECRET: TEST_JWT_SECRET,
      NODE_HMAC_SECRET: TEST_NODE_HMAC_SECRET,
      SERVICE_TOKENS: TEST_SERVICE_TOKEN,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_REGION: s3.region,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      LOG_LEVEL: 'error',
    },
  };
  /** Process `index`'s options, on the port it had when it comes back. */
  const optionsOf = (index: number, port?: number) => ({ ...options, redisUrl: redisUrlOf?.(index) ?? options.redisUrl, port });
  const processes: ServiceProcess[] = [];
  try {
    const started = await Promise.allSettled(Array.from({ length: count }, (_, index) => startService(optionsOf(index))));
    for (const outcome of started) if (outcome.status === 'fulfilled') processes.push(outcome.value);
    const failed = started.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (error) {
    await Promise.all(processes.map((process) => process.kill()));
    await database.drop();
    throw error;
  }
  const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 4 });
  const billing = createBillingService({ prisma: db.prisma });
  const token = (userId: string, options: { admin?: boolean } = {}) => signDevelopmentToken(TEST_JWT_SECRET, { sub: userId, ...options });
  return {
    processes,
    urls: processes.map((process) => process.url),
    db,
    redisPrefix,
    token,
    async revive(index) {
      const process = processes[index] as ServiceProcess;
      processes[index] = await startService(optionsOf(index, Number(new URL(process.url).port)));
    },
    async user(amountMinor) {
      const id = randomUUID();
      if (amountMinor > 0) {
        await billing.credit(TEST_ADMIN, { userId: id, amountMinor: BigInt(amountMinor), idempotencyKey: `test-funds-${randomUUID()}` });
      }
      return { id, token: await token(id) };
    },
    async close() {
      await Promise.all(processes.map((process) => process.stop()));
      await db.close();
      await database.drop();
    },
  };
}

export type ProgressMessage = FollowRenderProgressSubscription['renderProgress'];

export interface ProgressWatch {
  jobId: string;
  received: ProgressMessage[];
  errors: unknown[];
  /** Waits until a message satisfies `done` (or fails with what was received). */
  until(done: (message: ProgressMessage) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** renderProgress of one job on one replica (base URL), from now or after `afterSeq`. */
export async function watchProgress(baseUrl: string, token: string, jobId: string, afterSeq?: number): Promise<ProgressWatch> {
  const client = createWsClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const received: ProgressMessage[] = [];
  const errors: unknown[] = [];
  const iterator = client.iterate<FollowRenderProgressSubscription>({
    query: print(FollowRenderProgressDocument),
    variables: { jobId, ...(afterSeq === undefined ? {} : { afterSeq }) },
  });
  void (async () => {
    try {
      for await (const result of iterator) {
        if (result.errors) errors.push(...result.errors);
        if (result.data) received.push(result.data.renderProgress);
      }
    } catch (error) {
      errors.push(error);
    }
  })();
  const watch: ProgressWatch = {
    jobId,
    received,
    errors,
    async until(done, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (errors.length > 0) throw new Error(`subscription failed: ${JSON.stringify(errors)}`);
        if (received.some(done)) return;
        if (Date.now() > deadline) throw new Error(`timed out; got seqs ${received.map((message) => message.seq).join(',')}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async close() {
      await iterator.return?.();
      await client.dispose();
    },
  };
  // The subscription is live once its first message (where the job stands) arrived.
  try {
    await watch.until(() => true, 15_000);
  } catch (error) {
    await watch.close();
    throw error;
  }
  return watch;
}

/**
 * What was wrong with a subscriber's view of a job whose latest seq is `lastSeq`: seqs missing
 * between the first message and lastSeq, seqs delivered twice, and deliveries out of order.
 */
export function auditSeqs(received: readonly { seq: number }[], lastSeq: number) {
  const seqs = received.map((message) => message.seq);
  const first = seqs[0] ?? lastSeq + 1;
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  seqs.forEach((seq, index) => {
    if (seen.has(seq)) duplicated++;
    seen.add(seq);
    if (index > 0 && seq <= (seqs[index - 1] as number)) outOfOrder++;
  });
  let missing = 0;
  for (let seq = first; seq <= lastSeq; seq++) if (!seen.has(seq)) missing++;
  return { first, checked: seqs.length, missing, duplicated, outOfOrder };
}
