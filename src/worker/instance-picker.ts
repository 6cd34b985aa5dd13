// Weighted random choice, drawn once per attempt (the original drew several times per request and
// could mix one instance's host with another's key).
export interface WeightedPicker<T> {
  pick(random?: number): T;
}

export function createWeightedPicker<T>(items: readonly T[], weightOf: (item: T) => number): WeightedPicker<T> {
  const first = items[0];
  if (first === undefined) throw new Error('a route needs at least one instance');
  if (items.length === 1) return { pick: () => first };
  const cumulative: number[] = [];
  let total = 0;
  for (const item of items) {
    total += weightOf(item);
    cumulative.push(total);
  }
  return {
    pick(random = Math.random()) {
      const target = random * total;
      // Linear scan: routes have a handful of instances, where it beats a binary search.
      for (let i = 0; i < cumulative.length; i++) {
        if (target < (cumulative[i] as number)) return items[i] as T;
      }
      return items[items.length - 1] as T;
    },
  };
}
