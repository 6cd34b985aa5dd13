// The small decisions failover rests on: which instance a retry may go to, and how long an upstream
// asked us to wait.
import { expect } from 'chai';
import { createWeightedPicker } from '../../src/worker/instance-picker.js';
import { retryAfterMs } from '../../src/worker/retry-after.js';

describe('weighted picker', function () {
  const items = ['a', 'b', 'c'];
  const picker = createWeightedPicker(items, (item) => ({ a: 1, b: 2, c: 1 })[item] ?? 1);

  it('draws by weight across the whole range', function () {
    expect([0, 0.24, 0.25, 0.74, 0.75, 0.999].map((r) => picker.pick(undefined, r))).to.deep.equal(['a', 'a', 'b', 'b', 'c', 'c']);
  });

  it('never returns the excluded item while another exists, and keeps the others in proportion', function () {
    // Without b the total is 2: a covers [0, 1), c covers [1, 2).
    expect([0, 0.49, 0.5, 0.999999].map((r) => picker.pick('b', r))).to.deep.equal(['a', 'a', 'c', 'c']);
    for (let i = 0; i < 1000; i++) expect(picker.pick('c')).to.not.equal('c');
  });

  it('falls back to the only item when it is also the excluded one', function () {
    const single = createWeightedPicker(['only'], () => 1);
    expect(single.pick('only')).to.equal('only');
    expect(single.size).to.equal(1);
  });

  it('excluding the last item still lands on a real item at the top of the range', function () {
    expect(picker.pick('c', 0.9999999999)).to.equal('b');
  });
});

describe('Retry-After', function () {
  const now = Date.parse('2026-11-24T12:00:00Z');

  it('reads seconds, fractional seconds and retry-after-ms (OpenAI), preferring the latter', function () {
    expect(retryAfterMs({ 'retry-after': '2' }, now)).to.equal(2000);
    expect(retryAfterMs({ 'retry-after': '0.5' }, now)).to.equal(500);
    expect(retryAfterMs({ 'retry-after': '2', 'retry-after-ms': '1500' }, now)).to.equal(1500);
  });

  it('reads an HTTP date relative to now, and a date in the past as no wait', function () {
    expect(retryAfterMs({ 'retry-after': 'Tue, 24 Nov 2026 12:00:30 GMT' }, now)).to.equal(30_000);
    expect(retryAfterMs({ 'retry-after': 'Tue, 24 Nov 2026 11:00:00 GMT' }, now)).to.equal(0);
  });

  it('is 0 when absent or unreadable, and capped at an hour', function () {
    expect(retryAfterMs({}, now)).to.equal(0);
    expect(retryAfterMs({ 'retry-after': 'soon' }, now)).to.equal(0);
    expect(retryAfterMs({ 'retry-after': '-3' }, now)).to.equal(0);
    expect(retryAfterMs({ 'retry-after': '86400' }, now)).to.equal(3_600_000);
  });
});
