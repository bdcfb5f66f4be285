// Helpers for tests that run several replicas of the service on one PostgreSQL and one Redis:
// a progress subscriber over a real graphql-ws WebSocket, and the checks that its view of a job
// is complete and in order.
import { print } from 'graphql';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { FollowRenderProgressDocument, type FollowRenderProgressSubscription } from '../generated/graphql.ts';

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
