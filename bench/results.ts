/** One row of a benchmark table: rates and latencies, compared with the baseline row. */
export interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** The value at percentile `p` (0–100) of `values` (nearest rank). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * A row from per-operation latencies in ms: p50, p99 and the rate one caller achieves at the
 * mean latency.
 */
export function summarise(name: string, samples: number[], errors = 0, digits = 2): Result {
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  const round = (v: number) => Number(v.toFixed(digits));
  return {
    name,
    rps: mean > 0 ? 1000 / mean : 0,
    p50: round(percentile(samples, 50)),
    p99: round(percentile(samples, 99)),
    errors,
    non2xx: 0,
  };
}
