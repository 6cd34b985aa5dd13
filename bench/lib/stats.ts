// Order statistics for the bench: percentiles of samples and medians across rounds.

/** Nearest-rank percentile of already sorted samples (p in 0..100). */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function percentile(samples: readonly number[] | Float64Array, p: number): number {
  const sorted = Float64Array.from(samples).sort();
  return percentileOfSorted(sorted, p);
}

/** The middle value; for an even count the mean of the two middle values (2 rounds must not report the lower one). */
export function median(values: readonly number[]): number {
  const sorted = Float64Array.from(values.filter((v) => Number.isFinite(v))).sort();
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
