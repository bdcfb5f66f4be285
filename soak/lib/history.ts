// What the soak's callers saw, kept small enough for an hour: every answer counted by door and
// status, every 5xx kept whole (the checker judges each against the faults of its moment), and
// when each scope last succeeded, in 100 ms buckets, for the recovery times of the report.

import { HTTP_STATUS } from '../../src/transport/errors.ts';

/** How a caller reached the service. `agent` requests come from the simulated fleet. */
export type Door = 'rest' | 'graphql' | 'graphql-ws' | 'legacy-ws' | 'agent';

export interface RequestOutcome {
  door: Door;
  /** A short name of what was asked, e.g. `POST /v1/renders` or `mutation cancelRenderJob`. */
  route: string;
  /** Which replica answered (its index), or -1 when not known. */
  replica: number;
  /** The HTTP status; 0 when no answer came (refused, reset, timed out). A GraphQL error coded
   * INTERNAL_SERVER_ERROR counts as 500, one coded UNAVAILABLE as 503. */
  status: number;
  /** Date.now() when the answer (or its absence) was known. */
  at: number;
}

/** A summary that crosses a process boundary (the fleet's processes send theirs). */
export interface HistorySummary {
  counts: Record<string, number>;
  serverErrors: RequestOutcome[];
  /** Scope → sorted 100 ms bucket numbers in which a request of that scope succeeded. */
  successes: Record<string, number[]>;
  /** Scope → sorted 100 ms bucket numbers in which a frame was accepted. */
  frames: Record<string, number[]>;
}

const BUCKET_MS = 100;
/** Server errors kept whole; past this the count still grows, and the report says so. */
const MAX_KEPT_ERRORS = 5_000;

export const bucketOf = (at: number) => Math.floor(at / BUCKET_MS);

class Buckets {
  private readonly byScope = new Map<string, Set<number>>();

  add(scopes: readonly string[], at: number): void {
    const bucket = bucketOf(at);
    for (const scope of scopes) {
      let set = this.byScope.get(scope);
      if (!set) this.byScope.set(scope, (set = new Set()));
      set.add(bucket);
    }
  }

  addAll(summary: Record<string, number[]>): void {
    for (const [scope, buckets] of Object.entries(summary)) for (const bucket of buckets) this.add([scope], bucket * BUCKET_MS);
  }

  /** The first time at or after `from` at which the scope succeeded, or undefined. */
  firstAfter(scope: string, from: number): number | undefined {
    const set = this.byScope.get(scope);
    if (!set) return undefined;
    const start = bucketOf(from);
    let best: number | undefined;
    for (const bucket of set) if (bucket >= start && (best === undefined || bucket < best)) best = bucket;
    return best === undefined ? undefined : Math.max(from, best * BUCKET_MS);
  }

  summary(): Record<string, number[]> {
    return Object.fromEntries([...this.byScope].map(([scope, set]) => [scope, [...set].sort((a, b) => a - b)]));
  }
}

/**
 * The soak's record of answers. Scopes name who succeeded: `all`, `replica:<i>` and, for the
 * fleet, `group:<g>`; recovery after a fault is read for the scope the fault hit.
 */
export class RequestHistory {
  readonly counts = new Map<string, number>();
  readonly serverErrors: RequestOutcome[] = [];
  serverErrorCount = 0;
  private readonly successes = new Buckets();
  private readonly frames = new Buckets();

  record(outcome: RequestOutcome, extraScopes: readonly string[] = []): void {
    const key = `${outcome.door} ${outcome.status}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (outcome.status >= 500) {
      this.serverErrorCount++;
      if (this.serverErrors.length < MAX_KEPT_ERRORS) this.serverErrors.push(outcome);
    }
    if (outcome.status >= 200 && outcome.status < 400) {
      this.successes.add(['all', ...(outcome.replica >= 0 ? [`replica:${outcome.replica}`] : []), ...extraScopes], outcome.at);
    }
  }

  /** A frame report the service accepted. */
  frameAccepted(at: number, scopes: readonly string[] = []): void {
    this.frames.add(['all', ...scopes], at);
  }

  firstSuccessAfter(scope: string, from: number): number | undefined {
    return this.successes.firstAfter(scope, from);
  }

  firstFrameAfter(scope: string, from: number): number | undefined {
    return this.frames.firstAfter(scope, from);
  }

  summary(): HistorySummary {
    return {
      counts: Object.fromEntries(this.counts),
      serverErrors: this.serverErrors,
      successes: this.successes.summary(),
      frames: this.frames.summary(),
    };
  }

  merge(summary: HistorySummary): void {
    for (const [key, count] of Object.entries(summary.counts)) this.counts.set(key, (this.counts.get(key) ?? 0) + count);
    for (const outcome of summary.serverErrors) {
      this.serverErrorCount++;
      if (this.serverErrors.length < MAX_KEPT_ERRORS) this.serverErrors.push(outcome);
    }
    this.successes.addAll(summary.successes);
    this.frames.addAll(summary.frames);
  }
}

/** One broken invariant, as the report lists it. */
export interface Violation {
  invariant: string;
  detail: string;
}

/** The HTTP status each error code stands for: the domain's, and GraphQL's own. */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  ...HTTP_STATUS,
  BAD_USER_INPUT: 400,
  GRAPHQL_PARSE_FAILED: 400,
  GRAPHQL_VALIDATION_FAILED: 400,
  INTERNAL_SERVER_ERROR: 500,
  UNAVAILABLE: 503,
  SERVICE_UNAVAILABLE: 503,
};

export const statusOfCode = (code: string): number => STATUS_OF_CODE[code] ?? 400;

/** The HTTP status a GraphQL error stands for: a server error by its code, else its own `extensions.http.status`, else its code's. */
export function statusOfGraphQLError(error: { extensions?: Record<string, any> } | undefined): number {
  const code = error?.extensions?.code;
  const status = typeof code === 'string' ? statusOfCode(code) : 400;
  if (status >= 500) return status;
  const http = error?.extensions?.http?.status;
  return typeof http === 'number' && http >= 400 ? http : status;
}
