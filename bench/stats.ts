/*
 * What the measurements share: percentiles over raw samples (so sub-millisecond
 * figures stay exact, unlike autocannon's whole-millisecond histogram) and the
 * fixed-size JSON bodies every scenario sends.
 */
export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array; NaN when it is empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  const values = Array.from(sorted);
  return { count: values.length, p50: percentile(values, 50), p99: percentile(values, 99), max: values.at(-1) ?? Number.NaN };
}

/** A JSON object of exactly `size` bytes (ASCII fields assumed), padded with a "pad" string. */
export function paddedJson(fields: Record<string, string | number>, size: number): string {
  const bare = JSON.stringify({ ...fields, pad: "" });
  return JSON.stringify({ ...fields, pad: "x".repeat(Math.max(0, size - bare.length)) });
}

/**
 * CLOCK_MONOTONIC in ms (process.hrtime): one clock for every process on the machine,
 * so a sender child's send time and a reader child's receive time can be subtracted.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
