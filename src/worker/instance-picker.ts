// Weighted random choice, drawn once per attempt (the original drew several times per request and
// could mix one instance's host with another's key).
export interface WeightedPicker<T> {
  readonly size: number;
  /** `exclude`: the instance just tried; skipped whenever another one exists. */
  pick(exclude?: T, random?: number): T;
}

export function createWeightedPicker<T>(items: readonly T[], weightOf: (item: T) => number): WeightedPicker<T> {
  const first = items[0];
  if (first === undefined) throw new Error('a picker needs at least one item');
  if (items.length === 1) return { size: 1, pick: () => first };
  const weights = items.map(weightOf);
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  return {
    size: items.length,
    pick(exclude, random = Math.random()) {
      const skip = exclude === undefined ? -1 : items.indexOf(exclude);
      const target = random * (skip === -1 ? total : total - (weights[skip] as number));
      let cumulative = 0;
      // Linear scan: routes have a handful of instances, where it beats a binary search.
      for (let i = 0; i < items.length; i++) {
        if (i === skip) continue;
        cumulative += weights[i] as number;
        if (target < cumulative) return items[i] as T;
      }
      // Rounding at the top end: the last item that is not skipped.
      return items[skip === items.length - 1 ? items.length - 2 : items.length - 1] as T;
    },
  };
}
