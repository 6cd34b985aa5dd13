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

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? Number.NaN : percentile(finite, 50);
}
