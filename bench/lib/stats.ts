// Summaries of latency or throughput samples. Medians and p99 rather than means: these machines
// are shared, and one stall would move a mean more than it says about the code.

export interface Summary {
  count: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of ascending-sorted samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    median: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** The median of repeated measurements: each benchmark repeats its rounds and keeps the middle one. */
export function median(values: readonly number[]): number {
  return summarize(values).median;
}
