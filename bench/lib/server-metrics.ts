// What the service itself says about its requests: its Prometheus histograms, scraped before and
// after a window and subtracted, so a benchmark can put the service's own latency beside what its
// clients saw (which also holds the client's queueing and event-loop lag).

/** Cumulative bucket counts of one histogram series: upper bound in seconds → count. */
export type Buckets = Map<number, number>;

export interface Scrape {
  /** Buckets per series of `http_request_duration_seconds`, by route pattern. */
  httpRoutes: Map<string, Buckets>;
  /** Every counter sample without labels, by name. */
  counters: Map<string, number>;
}

const BUCKET_LINE = /^http_request_duration_seconds_bucket\{([^}]*)\} (\S+)$/;
const LABEL = /(\w+)="([^"]*)"/g;
const PLAIN_SAMPLE = /^([a-z_:][a-z0-9_:]*) (\S+)$/i;

/** Reads GET /metrics of a service; every status code of a route is summed into the route. */
export async function scrape(baseUrl: string): Promise<Scrape> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const httpRoutes = new Map<string, Buckets>();
  const counters = new Map<string, number>();
  for (const line of text.split('\n')) {
    const bucket = BUCKET_LINE.exec(line);
    if (bucket) {
      const labels = Object.fromEntries([...(bucket[1] ?? '').matchAll(LABEL)].map((match) => [match[1], match[2]]));
      const route = `${labels.method} ${labels.route}`;
      const bound = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
      const buckets = httpRoutes.get(route) ?? new Map<number, number>();
      buckets.set(bound, (buckets.get(bound) ?? 0) + Number(bucket[2]));
      httpRoutes.set(route, buckets);
      continue;
    }
    const sample = PLAIN_SAMPLE.exec(line);
    if (sample) counters.set(sample[1] as string, Number(sample[2]));
  }
  return { httpRoutes, counters };
}

/** The requests a route served between two scrapes, as buckets. */
export function between(before: Scrape, after: Scrape, route: string): Buckets {
  const earlier = before.httpRoutes.get(route) ?? new Map<number, number>();
  const later = after.httpRoutes.get(route) ?? new Map<number, number>();
  return new Map([...later].map(([bound, count]) => [bound, count - (earlier.get(bound) ?? 0)]));
}

export function countOf(buckets: Buckets): number {
  return buckets.get(Number.POSITIVE_INFINITY) ?? 0;
}

/**
 * The p-th percentile in milliseconds, interpolated linearly inside its bucket as Prometheus's
 * histogram_quantile does: exact at bucket edges, an estimate between them.
 */
export function quantileMs(buckets: Buckets, p: number): number {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = countOf(buckets);
  if (total === 0) return Number.NaN;
  const rank = (p / 100) * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound) ?? 0;
    if (count >= rank) {
      // Past the last finite bucket the most that can be said is its edge.
      if (bound === Number.POSITIVE_INFINITY) return lowerBound * 1000;
      const inBucket = count - lowerCount;
      const share = inBucket === 0 ? 1 : (rank - lowerCount) / inBucket;
      return (lowerBound + (bound - lowerBound) * share) * 1000;
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return Number.NaN;
}

export const AGENT_ROUTES = {
  heartbeat: 'POST /v1/internal/nodes/:node_id/heartbeat',
  frame: 'POST /v1/internal/render/jobs/:job_id/frames',
  ack: 'POST /v1/internal/nodes/:node_id/commands/:command_id/ack',
  complete: 'POST /v1/internal/render/jobs/:job_id/chunks/:frame_job_id/complete',
} as const;
