// Frame report → subscriber latency, shared by the benchmarks that time it (fanout, gateway): frame
// reports signed as their node would sign them, renderProgress subscribers, and the collection of
// each report's deliveries.
import { performance } from 'node:perf_hooks';
import { deriveAgentKey, signAgentRequest } from '../../src/adapters/auth/agent-signature.ts';
import { type Subscription, subscribe } from './gql-ws.ts';
import type { httpClient } from './load.ts';
import type { SeededJobs } from './seed.ts';
import { BENCH_SECRETS } from './service.ts';

const DELIVERY_TIMEOUT_MS = 10_000;

const SUBSCRIPTION =
  'subscription Progress($jobId: UUID!) { renderProgress(jobId: $jobId) { jobId step progress currentFrame activeNodes } }';

/** Collects the deliveries of one message at a time on one path: who got it, and after how long. */
export class Deliveries {
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

  /**
   * Sends one message and waits until its `expected` receivers on each path have it (or the
   * timeout). Several paths time the same message from the same start, so they meet the same noise.
   */
  static async measure(paths: readonly Deliveries[], topic: string, expected: number, send: () => Promise<void>): Promise<void> {
    const delivered = Promise.all(
      paths.map(
        (path) =>
          new Promise<void>((resolve) => {
            path.topic = topic;
            path.expected = expected;
            path.done = resolve;
          }),
      ),
    );
    const sentAt = performance.now();
    for (const path of paths) path.sentAt = sentAt;
    await send();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([delivered, new Promise((resolve) => (timer = setTimeout(resolve, DELIVERY_TIMEOUT_MS)))]);
    clearTimeout(timer);
    for (const path of paths) {
      path.lost += path.expected;
      path.expected = 0;
    }
  }
}

/**
 * Reports frames of the seeded jobs to one replica, each signed by its chunk's node. Report
 * `sequence` is for job `sequence % jobs`, each time the next frame of the job's first chunk on a
 * node; `send` resolves with how long the replica took to answer (204).
 */
export function frameReporter(
  client: ReturnType<typeof httpClient>,
  serviceUrl: string,
  seeded: SeededJobs,
): { jobOf(sequence: number): string; send(sequence: number): Promise<number> } {
  const chunks = seeded.jobIds.map((jobId) => seeded.rendering.find((chunk) => chunk.jobId === jobId)!);
  const jobOf = (sequence: number) => chunks[sequence % chunks.length]!.jobId;
  const send = async (sequence: number) => {
    const chunk = chunks[sequence % chunks.length]!;
    const frameNumber = chunk.startFrame + Math.floor(sequence / chunks.length);
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
    await client.expectOk(`${serviceUrl}${path}`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body,
    });
    return performance.now() - started;
  };
  return { jobOf, send };
}

/** A graphql-ws subscriber of one job's renderProgress at `url`, whose events count on `deliveries`. */
export function subscribeProgress(options: { url: string; token: string; jobId: string; deliveries: Deliveries }): Promise<Subscription> {
  return subscribe({
    url: options.url,
    token: options.token,
    query: SUBSCRIPTION,
    variables: { jobId: options.jobId },
    onNext: (payload, receivedAt) => {
      const progress = (payload as { data?: { renderProgress?: { jobId: string } } }).data?.renderProgress;
      if (progress) options.deliveries.receive(progress.jobId, receivedAt);
    },
  });
}
