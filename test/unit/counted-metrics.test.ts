// The plain-number counters and histograms must be indistinguishable from prom-client's at scrape
// time: fed the same updates, a prom-client metric and a counted one give the same JSON (what a
// worker sends the primary), the same text, and the same sums once two workers are aggregated.
import { expect } from 'chai';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { CountedCounter, CountedHistogram } from '../../src/worker/counted-metrics.js';
import { latencyBuckets } from '../../src/worker/metrics.js';

const observations = [0.0001, 0.005, 0.0051, 0.07, 0.3, 2.5, 42, 301, 1e6, 0.025];

function fedRegistries(): { theirs: Registry; ours: Registry } {
  const theirs = new Registry();
  const ours = new Registry();
  const promHistogram = new Histogram({ name: 'h_seconds', help: 'h help', labelNames: ['route', 'provider'], buckets: latencyBuckets, registers: [theirs] });
  const promCounter = new Counter({ name: 'c_total', help: 'c help', labelNames: ['route', 'status'], registers: [theirs] });
  const histogram = new CountedHistogram('h_seconds', 'h help', ['route', 'provider'], latencyBuckets, ours);
  const counter = new CountedCounter('c_total', 'c help', ['route', 'status'], ours);

  const a = histogram.series('chat', 'openai');
  const b = histogram.series('messages', 'anthropic');
  observations.forEach((value, i) => {
    promHistogram.labels('chat', 'openai').observe(value);
    histogram.observe(a, value);
    if (i % 3 === 0) {
      promHistogram.labels('messages', 'anthropic').observe(value * 2);
      histogram.observe(b, value * 2);
    }
  });
  // Resolved but never updated: prom-client shows no such series, so neither may we.
  histogram.series('idle', 'gemini');
  counter.series('idle', '200');
  promHistogram.labels('idle', 'gemini');
  promCounter.labels('idle', '200');

  promCounter.labels('chat', '200').inc();
  promCounter.labels('chat', '200').inc(41);
  promCounter.labels('chat', '502').inc();
  counter.series('chat', '200').value += 1;
  counter.series('chat', '200').value += 41;
  counter.series('chat', '502').value += 1;
  return { theirs, ours };
}

/** What a worker sends the primary, without the fields prom-client adds for its own exposition. */
async function asJson(registry: Registry): Promise<unknown> {
  const metrics = await registry.getMetricsAsJSON();
  return metrics.map((m) => ({
    name: m.name,
    help: m.help,
    type: m.type,
    aggregator: m.aggregator,
    values: (m as unknown as { values: { value: number; labels: object; metricName?: string }[] }).values.map((v) => ({ value: v.value, labels: v.labels, metricName: v.metricName })),
  }));
}

describe('counted metrics', function () {
  it('give the JSON prom-client gives for the same updates, series and label order included', async function () {
    const { theirs, ours } = fedRegistries();
    const expected = await asJson(theirs);
    const actual = await asJson(ours);
    expect(actual).to.deep.equal(expected);
    // The label order shows in the text: le first, as prom-client writes it.
    expect(JSON.stringify(actual)).to.include('"labels":{"le":0.005,"route":"chat","provider":"openai"}');
  });

  it('give the same text, and the same sums across two workers aggregated by the primary', async function () {
    const first = fedRegistries();
    const second = fedRegistries();
    expect(await first.ours.metrics()).to.equal(await first.theirs.metrics());
    const theirs = AggregatorRegistry.aggregate([await first.theirs.getMetricsAsJSON(), await second.theirs.getMetricsAsJSON()]);
    const ours = AggregatorRegistry.aggregate([await first.ours.getMetricsAsJSON(), await second.ours.getMetricsAsJSON()]);
    const text = await ours.metrics();
    expect(text).to.equal(await theirs.metrics());
    expect(text).to.include('c_total{route="chat",status="200"} 84');
    expect(text).to.include('h_seconds_bucket{le="+Inf",route="chat",provider="openai"} 20');
    expect(text).to.not.include('idle');
  });

  it('counts a value equal to a bound in that bound, and one past every bound only in +Inf', async function () {
    const registry = new Registry();
    const histogram = new CountedHistogram('edge_seconds', 'edges', ['route'], [1, 2], registry);
    const series = histogram.series('r');
    histogram.observe(series, 1);
    histogram.observe(series, 2.0001);
    const text = await registry.metrics();
    expect(text).to.include('edge_seconds_bucket{le="1",route="r"} 1');
    expect(text).to.include('edge_seconds_bucket{le="2",route="r"} 1');
    expect(text).to.include('edge_seconds_bucket{le="+Inf",route="r"} 2');
    expect(text).to.include('edge_seconds_count{route="r"} 2');
    registry.resetMetrics();
    expect(await registry.metrics()).to.not.include('edge_seconds_count');
  });
});
