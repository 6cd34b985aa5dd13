// The per-request counters and histograms, counted in plain numbers. prom-client's own hash their
// label values, validate them and build an object on every inc() and observe(), even through a
// child bound to its labels: about 3 % of a worker's CPU under S1 for the five or so updates a
// request makes. Here each label set is one object, resolved once when a route is compiled, and an
// update is an addition. At scrape time they answer as prom-client metrics do (the same shape from
// get(), the same label order), so the registry, the primary's cluster aggregation and the text
// format stay prom-client's.
import type { Metric, Registry } from 'prom-client';

type LabelSet = Readonly<Record<string, string>>;

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

interface ExportedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: ExportedValue[];
}

/** One label set of a counter: add to `value`. */
export interface CounterSeries {
  value: number;
}

/** One label set of a histogram. */
export interface HistogramSeries {
  /** Observations per bucket, not cumulative; the last slot is past every bound (+Inf only). */
  readonly counts: number[];
  sum: number;
  count: number;
}

abstract class CountedMetric<S> {
  readonly aggregator = 'sum' as const;
  readonly #series = new Map<string, { labels: LabelSet; series: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // The registry calls only get() and reset() of a metric (and reads its name), as it does for
    // the aggregated metrics prom-client itself builds in the primary.
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (in labelNames order): the same object for the same values. */
  series(...values: string[]): S {
    const key = values.join('\u0000');
    let found = this.#series.get(key);
    if (found === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      found = { labels, series: this.create() };
      this.#series.set(key, found);
    }
    return found.series;
  }

  protected abstract create(): S;
  protected abstract export(labels: LabelSet, series: S, into: ExportedValue[]): void;
  protected abstract clear(series: S): void;

  get(): Promise<ExportedMetric> {
    const values: ExportedValue[] = [];
    for (const { labels, series } of this.#series.values()) this.export(labels, series, values);
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  abstract readonly type: 'counter' | 'histogram';

  reset(): void {
    for (const { series } of this.#series.values()) this.clear(series);
  }
}

export class CountedCounter extends CountedMetric<CounterSeries> {
  readonly type = 'counter' as const;

  protected create(): CounterSeries {
    return { value: 0 };
  }

  // As with prom-client, a label set shows once it has been counted.
  protected export(labels: LabelSet, series: CounterSeries, into: ExportedValue[]): void {
    if (series.value !== 0) into.push({ value: series.value, labels: { ...labels } });
  }

  protected clear(series: CounterSeries): void {
    series.value = 0;
  }
}

export class CountedHistogram extends CountedMetric<HistogramSeries> {
  readonly type = 'histogram' as const;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  observe(series: HistogramSeries, value: number): void {
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && value > (buckets[i] as number)) i += 1;
    (series.counts[i] as number) += 1;
    series.sum += value;
    series.count += 1;
  }

  protected create(): HistogramSeries {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  // prom-client's order: the buckets (le first among the labels), +Inf, then _sum and _count.
  protected export(labels: LabelSet, series: HistogramSeries, into: ExportedValue[]): void {
    if (series.count === 0) return;
    const bucketName = `${this.name}_bucket`;
    let cumulative = 0;
    this.buckets.forEach((bound, i) => {
      cumulative += series.counts[i] as number;
      into.push({ value: cumulative, labels: { le: bound, ...labels }, metricName: bucketName });
    });
    into.push({ value: series.count, labels: { le: '+Inf', ...labels }, metricName: bucketName });
    into.push({ value: series.sum, labels: { ...labels }, metricName: `${this.name}_sum` });
    into.push({ value: series.count, labels: { ...labels }, metricName: `${this.name}_count` });
  }

  protected clear(series: HistogramSeries): void {
    series.counts.fill(0);
    series.sum = 0;
    series.count = 0;
  }
}
