// The bench's arithmetic: percentiles, medians over rounds, ratios taken within a round, and the
// budget checks. A wrong sign or a ratio taken across rounds would misreport every run.
import { expect } from 'chai';
import { renderScenario, summarise, type Round } from '../../bench/lib/report.js';
import { median, percentile } from '../../bench/lib/stats.js';

function round(direct: Record<string, number>, nginx: Record<string, number>, proxy: Record<string, number>): Round {
  return { direct, nginx, 'llm-proxy': proxy };
}

describe('bench report', function () {
  it('takes nearest-rank percentiles and medians that skip missing values', function () {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(samples, 50)).to.equal(50);
    expect(percentile(samples, 99)).to.equal(99);
    expect(percentile(samples, 100)).to.equal(100);
    expect(median([3, Number.NaN, 1, 2])).to.equal(2);
    expect(median([4, 1])).to.equal(2.5);
    expect(Number.isNaN(median([]))).to.equal(true);
  });

  it('reports the median of per-round throughput ratios and checks it against 0.7', function () {
    const rounds = [
      round({ rps: 1000, errors: 0 }, { rps: 800, errors: 0 }, { rps: 400, errors: 0 }),
      round({ rps: 2000, errors: 0 }, { rps: 1600, errors: 0 }, { rps: 1280, errors: 0 }),
      round({ rps: 1000, errors: 0 }, { rps: 1000, errors: 0 }, { rps: 900, errors: 0 }),
    ];
    const summary = summarise('S1', 'throughput', rounds);
    // Per round: 0.5, 0.8, 0.9; the median is 0.8 (a ratio of medians would give 900/1000 = 0.9).
    expect(summary.derived['llm-proxy/nginx req/s']).to.be.closeTo(0.8, 1e-9);
    expect(summary.checks.find((c) => c.label === 'llm-proxy/nginx throughput')?.pass).to.equal(true);
    expect(summary.medians['llm-proxy']['rps']).to.equal(900);
  });

  it('reports added latency as llm-proxy minus direct within each round, and fails it over budget', function () {
    const rounds = [
      round({ p50Ms: 0.3, p99Ms: 1 }, { p50Ms: 0.35, p99Ms: 1.2 }, { p50Ms: 0.5, p99Ms: 2.5 }),
      round({ p50Ms: 0.6, p99Ms: 2 }, { p50Ms: 0.65, p99Ms: 2.2 }, { p50Ms: 0.8, p99Ms: 3.5 }),
    ];
    const summary = summarise('S3', 'latency', rounds);
    expect(summary.derived['llm-proxy added p50 ms']).to.be.closeTo(0.2, 1e-9);
    expect(summary.derived['llm-proxy added p99 ms']).to.be.closeTo(1.5, 1e-9);
    const byLabel = Object.fromEntries(summary.checks.map((c) => [c.label, c.pass]));
    expect(byLabel['llm-proxy added p50 ms']).to.equal(true);
    expect(byLabel['llm-proxy added p99 ms']).to.equal(false);
  });

  it('counts lost SSE events and the peak memory over every round', function () {
    const sse = (events: number, rss: number) => ({ events, expectedEvents: 1000, failed: 0, ttftP99Ms: 1, peakRssMB: rss, peakPssMB: rss / 2 });
    const summary = summarise('S4', 'streaming', [round(sse(1000, 100), sse(1000, 50), sse(998, 250)), round(sse(1000, 100), sse(1000, 50), sse(1000, 320))]);
    expect(summary.derived['llm-proxy events lost']).to.equal(2);
    expect(summary.derived['llm-proxy peak RSS MB']).to.equal(320);
    const failing = summary.checks.filter((c) => !c.pass).map((c) => c.label);
    expect(failing).to.deep.equal(['llm-proxy events lost', 'llm-proxy peak RSS MB']);
    expect(renderScenario(summary)).to.include('[FAIL] llm-proxy events lost 2.000 (budget == 0)');
  });
});
