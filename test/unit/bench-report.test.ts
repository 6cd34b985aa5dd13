// The bench's arithmetic: percentiles, medians over rounds, ratios taken within a round, and the
// budget checks. A wrong sign or a ratio taken across rounds would misreport every run.
import { expect } from 'chai';
import { allPass, renderScenario, summarise, type Round } from '../../bench/lib/report.js';
import { stampEvent, stampOf, stampRoom } from '../../bench/lib/event-stamp.js';
import { median, percentile } from '../../bench/lib/stats.js';

type M = Record<string, number>;

function round(direct: M, nginx: M, bare: M, proxy: M): Round {
  return { direct, nginx, bare, 'llm-proxy': proxy };
}

function passes(summary: ReturnType<typeof summarise>): Record<string, boolean> {
  return Object.fromEntries(summary.checks.map((c) => [c.label, c.pass]));
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

  it('reports the median of per-round throughput ratios and checks llm-proxy against bare', function () {
    const t = (rps: number, cpu: number) => ({ rps, errors: 0, cpuMsPer1k: cpu });
    const rounds = [
      round(t(1000, 30), t(800, 30), t(400, 50), t(400, 55)),
      round(t(2000, 30), t(1600, 30), t(1280, 50), t(1408, 70)),
      round(t(1000, 30), t(1000, 30), t(900, 50), t(900, 60)),
    ];
    const summary = summarise('S1', 'throughput', rounds);
    // Per round vs nginx: 0.5, 0.88, 0.9, median 0.88 (a ratio of medians would give 900/1000 = 0.9).
    expect(summary.derived['llm-proxy/nginx req/s']).to.be.closeTo(0.88, 1e-9);
    // Per round vs bare: 1, 1.1, 1; CPU per request 1.1, 1.4, 1.2.
    expect(summary.derived['llm-proxy/bare req/s']).to.be.closeTo(1, 1e-9);
    expect(summary.derived['llm-proxy/bare CPU per request']).to.be.closeTo(1.2, 1e-9);
    expect(summary.derived['bare/nginx req/s']).to.be.closeTo(0.8, 1e-9);
    expect(passes(summary)).to.deep.equal({ 'llm-proxy/bare req/s': true, 'llm-proxy/bare CPU per request': true, 'requests that failed (all targets)': true });
    expect(summary.medians['llm-proxy']['rps']).to.equal(900);
    expect(summary.medians.bare['rps']).to.equal(900);
  });

  it('fails S2 when llm-proxy is slower or costlier than bare, or anything errs', function () {
    const t = (rps: number, cpu: number, errors = 0) => ({ rps, errors, cpuMsPer1k: cpu });
    const summary = summarise('S2', 'h2', [round(t(1000, 30), t(900, 30), t(800, 40), t(720, 52, 1))]);
    expect(passes(summary)).to.deep.equal({ 'llm-proxy/bare req/s': false, 'llm-proxy/bare CPU per request': false, 'requests that failed (all targets)': false });
    expect(renderScenario(summary)).to.include('[FAIL] llm-proxy/bare req/s 0.900 (budget >= 1)');
    expect(renderScenario(summary)).to.include('[FAIL] llm-proxy/bare CPU per request 1.300 (budget <= 1.2)');
    expect(allPass([summary])).to.equal(false);
  });

  it('reports added latency as target minus direct within each round, and fails it over budget', function () {
    const rounds = [
      round({ p50Ms: 0.3, p99Ms: 1 }, { p50Ms: 0.35, p99Ms: 1.2 }, { p50Ms: 0.4, p99Ms: 1.5 }, { p50Ms: 0.5, p99Ms: 2.5 }),
      round({ p50Ms: 0.6, p99Ms: 2 }, { p50Ms: 0.65, p99Ms: 2.2 }, { p50Ms: 0.7, p99Ms: 2.5 }, { p50Ms: 0.8, p99Ms: 3.5 }),
    ];
    const summary = summarise('S3', 'latency', rounds);
    expect(summary.derived['llm-proxy added p50 ms']).to.be.closeTo(0.2, 1e-9);
    expect(summary.derived['llm-proxy added p99 ms']).to.be.closeTo(1.5, 1e-9);
    expect(summary.derived['bare added p99 ms']).to.be.closeTo(0.5, 1e-9);
    expect(summary.derived['llm-proxy minus bare p99 ms']).to.be.closeTo(1, 1e-9);
    const byLabel = passes(summary);
    expect(byLabel['llm-proxy added p50 ms']).to.equal(true);
    expect(byLabel['llm-proxy added p99 ms']).to.equal(false);
  });

  it('checks S4 against nginx: CPU per event, TTFT p99, lost events and the peak memory over every round', function () {
    const sse = (events: number, rss: number, ttftP99Ms = 20, cpu = 20) => ({ events, expectedEvents: 1000, failed: 0, ttftP99Ms, peakRssMB: rss, peakPssMB: rss / 2, cpuMsPer1kEvents: cpu });
    const summary = summarise('S4', 'streaming', [
      round(sse(1000, 100), sse(1000, 50), sse(1000, 150), sse(998, 200, 29, 30)),
      round(sse(1000, 100), sse(1000, 50), sse(1000, 150), sse(1000, 260, 31, 30)),
    ]);
    expect(summary.derived['llm-proxy events lost']).to.equal(2);
    expect(summary.derived['llm-proxy peak RSS MB']).to.equal(260);
    expect(summary.derived['llm-proxy TTFT p99 minus nginx TTFT p99 ms']).to.be.closeTo(10, 1e-9);
    expect(summary.derived['llm-proxy/nginx CPU per 1,000 events']).to.be.closeTo(1.5, 1e-9);
    const failing = summary.checks.filter((c) => !c.pass).map((c) => c.label);
    expect(failing).to.deep.equal(['llm-proxy peak RSS MB', 'llm-proxy events lost']);
    expect(renderScenario(summary)).to.include('[FAIL] llm-proxy events lost 2.000 (budget == 0)');
    expect(renderScenario(summary)).to.include('[FAIL] llm-proxy peak RSS MB 260.0 (budget < 250)');
  });

  it('reports S6 churn ratios and fails a target that kept connections open', function () {
    const c = (rps: number, keptAlive = 0) => ({ rps, errors: 0, keptAlive, cpuMsPer1k: 500 });
    const summary = summarise('S6', 'churn', [round(c(2000), c(1600), c(1000), c(800, 3))]);
    expect(summary.derived['llm-proxy/nginx req/s']).to.be.closeTo(0.5, 1e-9);
    expect(summary.derived['llm-proxy/bare req/s']).to.be.closeTo(0.8, 1e-9);
    expect(passes(summary)).to.deep.equal({ 'requests that failed (all targets)': true, 'responses that kept the connection open (all targets)': false });
  });

  it('checks that large responses add at most 5 ms to the longest gap llm-proxy\'s path adds between events', function () {
    // Raw gaps as the client saw them; the path's share is what is left with the mock's own gaps
    // taken out (pathOf), and the budget is on that.
    const g = (gapMaxMs: number, gapMaxLargeMs: number, largeFailed = 0, pathOf = (gap: number) => gap - 50) => ({
      gapMaxMs,
      gapMaxLargeMs,
      gapMaxAddedMs: gapMaxLargeMs - gapMaxMs,
      gapP99Ms: 51,
      gapP99LargeMs: 52,
      gapP99AddedMs: 1,
      pathGapMaxMs: pathOf(gapMaxMs),
      pathGapMaxLargeMs: pathOf(gapMaxLargeMs),
      pathGapMaxAddedMs: pathOf(gapMaxLargeMs) - pathOf(gapMaxMs),
      largeFetched: 10,
      largeFailed,
      failed: 0,
    });
    const within = summarise('S7', 'large', [round(g(60, 61), g(60, 62), g(60, 70), g(60, 64)), round(g(60, 61), g(60, 62), g(60, 70), g(58, 80))]);
    // llm-proxy per round: +4, +22; the median of two is 13.
    expect(within.derived['llm-proxy longest gap with large responses minus without ms']).to.be.closeTo(13, 1e-9);
    expect(within.derived['llm-proxy longest gap added on the path, with large responses minus without ms']).to.be.closeTo(13, 1e-9);
    expect(within.derived['bare longest gap with large responses minus without ms']).to.be.closeTo(10, 1e-9);
    expect(within.derived['large responses fetched (all targets)']).to.equal(80);
    expect(passes(within)['llm-proxy longest gap added on the path, with large responses minus without ms']).to.equal(false);
    // The raw gap grew by 20 ms, all of it the mock's: the path added 2 ms, which meets the budget.
    const mockStalled = summarise('S7', 'large', [round(g(60, 61), g(60, 62), g(60, 70, 1), g(60, 80, 0, (gap) => (gap === 80 ? 12 : 10)))]);
    expect(passes(mockStalled)).to.deep.equal({
      'llm-proxy longest gap added on the path, with large responses minus without ms': true,
      'large responses that failed (all targets)': false,
      'streams that failed (all targets)': true,
    });
    expect(renderScenario(mockStalled)).to.match(/^bare .* 70\.0 /m);
  });

  it('reads back the stamp the mock puts first in an event, and none from an event without one', function () {
    const event = 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[]}\n\n';
    const before = performance.timeOrigin + performance.now();
    const stamped = stampEvent(event);
    const after = performance.timeOrigin + performance.now();
    expect(JSON.parse(stamped.slice('data: '.length)).id, 'the event stays valid JSON').to.equal('chatcmpl-bench');
    const head = Buffer.alloc(stampRoom);
    const length = Buffer.from(stamped).copy(head, 0, 0, stampRoom);
    const stamp = stampOf(head, length);
    expect(stamp).to.be.within(before - 0.001, after + 0.001);
    const done = Buffer.from('data: [DONE]\n\n');
    expect(stampOf(done, done.length)).to.be.NaN;
    // Cut before the number ends: no stamp rather than a wrong one.
    expect(stampOf(head, 'data: {"sent_ms":17'.length)).to.be.NaN;
  });
});
