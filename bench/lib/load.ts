// Load generators shared by every benchmark, so that a service and its baseline are driven by
// exactly the same client code in the same run.
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface LoadResult {
  /** Milliseconds per request, in completion order. */
  latencies: number[];
  /** Requests that threw or answered with a status outside 2xx. */
  errors: number;
  firstError?: string;
  elapsedMs: number;
  /** Completed requests per second over the measured period. */
  throughput: number;
}

class Recorder {
  readonly latencies: number[] = [];
  errors = 0;
  firstError?: string;

  async time(send: () => Promise<void>, startedAt = performance.now()): Promise<void> {
    try {
      await send();
      this.latencies.push(performance.now() - startedAt);
    } catch (error) {
      this.errors++;
      this.firstError ??= error instanceof Error ? error.message : String(error);
    }
  }

  result(elapsedMs: number): LoadResult {
    return {
      latencies: this.latencies,
      errors: this.errors,
      firstError: this.firstError,
      elapsedMs,
      throughput: this.latencies.length / (elapsedMs / 1000),
    };
  }
}

/**
 * Closed loop: `concurrency` callers each send their next request when the previous one is
 * answered, for `durationMs`. Measures the most a service sustains.
 */
export async function closedLoop(options: {
  concurrency: number;
  durationMs: number;
  send: (callerIndex: number, sequence: number) => Promise<void>;
}): Promise<LoadResult> {
  const recorder = new Recorder();
  const started = performance.now();
  const deadline = started + options.durationMs;
  let sequence = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, caller) => {
      while (performance.now() < deadline) await recorder.time(() => options.send(caller, sequence++));
    }),
  );
  return recorder.result(performance.now() - started);
}

/**
 * Open loop: requests start on a fixed schedule (`ratePerSecond`) whatever the answers do, and
 * latency counts from the scheduled start, so a slow service cannot hide its queueing by slowing
 * the client down (coordinated omission).
 */
export async function openLoop(options: {
  ratePerSecond: number;
  durationMs: number;
  send: (sequence: number) => Promise<void>;
}): Promise<LoadResult> {
  const recorder = new Recorder();
  const started = performance.now();
  const total = Math.floor((options.ratePerSecond * options.durationMs) / 1000);
  const interval = 1000 / options.ratePerSecond;
  const inFlight: Promise<void>[] = [];
  for (let sequence = 0; sequence < total; sequence++) {
    const scheduled = started + sequence * interval;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(recorder.time(() => options.send(sequence), scheduled));
  }
  await Promise.all(inFlight);
  return recorder.result(performance.now() - started);
}

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** A keep-alive HTTP client; both sides of a comparison get the same one. */
export function httpClient(maxSockets = 256) {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const send = (url: string, init: HttpRequestInit = {}) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      const req = httpRequest(url, { method: init.method ?? 'GET', headers: init.headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(init.body);
    });
  return {
    send,
    /** Like send, but a status outside 2xx is an error, so it counts in LoadResult.errors. */
    async expectOk(url: string, init: HttpRequestInit = {}) {
      const answer = await send(url, init);
      if (answer.status < 200 || answer.status > 299) {
        throw new Error(`${init.method ?? 'GET'} ${new URL(url).pathname} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
      }
      return answer;
    },
    close: () => agent.destroy(),
  };
}
