// The pure parts of the cluster-wide limits: the token bucket, the embedded store behind the store
// interface (driven with an injected clock), the reset-header format, and the config rules for
// rate_limit with their field paths and line numbers.
import { expect } from 'chai';
import { TokenBucket } from '../../src/primary/rate-limit/token-bucket.js';
import { createMemoryStore } from '../../src/primary/rate-limit/store.js';
import { ConfigError, parseConfigText, type ConfigIssue } from '../../src/shared/config/parse.js';
import type { RateLimitSpec } from '../../src/shared/snapshot.js';
import { formatResetDuration } from '../../src/worker/reset-duration.js';

const spec = (values: Partial<RateLimitSpec>): RateLimitSpec => ({ id: 'k1', label: 'team', requestsPerMinute: undefined, tokensPerMinute: undefined, concurrent: undefined, ...values });

describe('rate limits: token bucket', function () {
  it('gives a full minute at once, then refills at capacity per minute', function () {
    const bucket = new TokenBucket(120, 0);
    expect(bucket.take(200, 0)).to.equal(120);
    expect(bucket.take(1, 0)).to.equal(0);
    expect(bucket.msUntil(1, 0)).to.equal(500);
    expect(bucket.take(5, 1_000)).to.equal(2);
    expect(bucket.level(61_000)).to.equal(120);
  });

  it('may go below zero when charged after the fact, and says how long until it covers a request', function () {
    const bucket = new TokenBucket(5000, 0);
    bucket.charge(6000, 0);
    expect(bucket.level(0)).to.equal(-1000);
    expect(bucket.take(1, 0)).to.equal(0);
    expect(bucket.msUntil(1000, 0)).to.equal(24_000);
    expect(bucket.msUntilFull(0)).to.equal(72_000);
  });

  it('a changed limit moves the level by the change', function () {
    const bucket = new TokenBucket(5, 0);
    bucket.take(5, 0);
    bucket.resize(100, 0);
    expect(bucket.level(0)).to.equal(95);
    bucket.resize(50, 0);
    expect(bucket.level(0)).to.equal(45);
  });
});

describe('rate limits: embedded store', function () {
  let now = 0;
  const clock = () => now;

  it('leases from a key bucket, charges debt first, keeps the estimate and reports state', async function () {
    now = 0;
    const store = createMemoryStore(clock);
    await store.configure([spec({ tokensPerMinute: 5000 })]);
    expect(await store.take('k1', 'tokens', 1000, 0, 0)).to.deep.equal({ granted: 1000, level: 4000, retryAfterMs: 0, estimate: 0, unavailableMs: 0 });
    const grant = await store.take('k1', 'tokens', 1000, 4500, 900);
    expect(grant).to.deep.include({ granted: 0, level: -500, estimate: 900 });
    expect(grant.retryAfterMs).to.equal(18_000);
    const [state] = await store.states();
    expect(state).to.deep.include({ id: 'k1', label: 'team', requests: undefined, concurrent: undefined });
    expect(state?.tokens).to.deep.include({ limit: 5000, remaining: 0 });
  });

  it('keeps buckets across an unchanged configure, resizes changed ones, drops removed keys', async function () {
    now = 0;
    const store = createMemoryStore(clock);
    await store.configure([spec({ requestsPerMinute: 10 })]);
    await store.take('k1', 'requests', 10, 0, 0);
    await store.configure([spec({ requestsPerMinute: 10 })]);
    expect((await store.take('k1', 'requests', 1, 0, 0)).granted).to.equal(0);
    await store.configure([spec({ requestsPerMinute: 20 })]);
    expect((await store.take('k1', 'requests', 20, 0, 0)).granted).to.equal(10);
    await store.configure([]);
    expect(await store.states()).to.deep.equal([]);
    // A key no longer limited is not held back.
    expect((await store.take('k1', 'requests', 7, 0, 0)).granted).to.equal(7);
  });

  it('counts concurrent slots over holders, and frees a dead holder’s slots', async function () {
    const store = createMemoryStore(clock);
    await store.configure([spec({ concurrent: 2 })]);
    expect((await store.acquireSlots('k1', 'w1', 1)).granted).to.equal(1);
    expect((await store.acquireSlots('k1', 'w2', 3)).granted).to.equal(1);
    expect((await store.acquireSlots('k1', 'w1', 1)).granted).to.equal(0);
    await store.releaseSlots('k1', 'w2', 1);
    expect((await store.acquireSlots('k1', 'w1', 2)).granted).to.equal(1);
    // A holder cannot give back more than it holds.
    await store.releaseSlots('k1', 'w1', 5);
    expect((await store.states())[0]?.concurrent).to.deep.equal({ limit: 2, inFlight: 0 });
    expect((await store.acquireSlots('k1', 'w1', 2)).granted).to.equal(2);
    await store.releaseHolder('w1');
    expect((await store.states())[0]?.concurrent).to.deep.equal({ limit: 2, inFlight: 0 });
    // Releasing what a holder does not hold changes nothing.
    await store.releaseSlots('k1', 'w3', 1);
    expect((await store.states())[0]?.concurrent).to.deep.equal({ limit: 2, inFlight: 0 });
  });
});

describe('rate limits: x-ratelimit-reset format', function () {
  it('writes durations as OpenAI does', function () {
    expect(formatResetDuration(20)).to.equal('20ms');
    expect(formatResetDuration(1000)).to.equal('1s');
    expect(formatResetDuration(1500)).to.equal('1.5s');
    expect(formatResetDuration(360_000)).to.equal('6m0s');
    expect(formatResetDuration(3_723_000)).to.equal('1h2m3s');
  });
});

describe('rate limits: config', function () {
  const head = ['cert_file: /c.pem', 'private_key_file: /k.pem'];
  const provider = ['providers:', '  - type: openai', '    host: o.example.com', '    endpoint: api.openai.com'];

  function issuesOf(lines: string[]): ConfigIssue[] {
    try {
      parseConfigText(`${lines.join('\n')}\n`, 'config.yml');
    } catch (err) {
      if (err instanceof ConfigError) return [...err.issues];
      throw err;
    }
    return [];
  }

  it('accepts limits on global and per-provider keys, and plain string keys beside them', function () {
    const lines = [...head, 'auth_keys:', '  - plain-key', '  - key: team-key', '    name: team', '    rate_limit: {requests_per_minute: 60, tokens_per_minute: 1000, concurrent: 3}', ...provider, '    auth_keys:', '      - key: route-key', '        rate_limit: {concurrent: 1}'];
    expect(issuesOf(lines)).to.deep.equal([]);
  });

  it('names the field and line of a bad limit value and of an empty rate_limit', function () {
    const bad = issuesOf([...head, 'auth_keys:', '  - key: team-key', '    rate_limit:', '      requests_per_minute: 0', ...provider]);
    expect(bad.map((issue) => [issue.path, issue.message, issue.line])).to.deep.equal([['auth_keys[0].rate_limit.requests_per_minute', 'must be a whole number greater than 0', 6]]);
    const empty = issuesOf([...head, 'auth_keys:', '  - key: team-key', '    rate_limit: {}', ...provider]);
    expect(empty[0]?.path).to.equal('auth_keys[0].rate_limit');
    expect(empty[0]?.message).to.include('at least one of');
  });

  it('refuses two different limits for one key, naming both places', function () {
    const issues = issuesOf([...head, 'auth_keys:', '  - key: team-key', '    rate_limit: {requests_per_minute: 60}', ...provider, '    auth_keys:', '      - key: team-key', '        rate_limit: {requests_per_minute: 90}']);
    expect(issues).to.have.length(1);
    expect(issues[0]?.path).to.equal('providers[0].auth_keys[0].rate_limit');
    expect(issues[0]?.message).to.include('auth_keys[0]');
    expect(issues[0]?.line).to.equal(12);
  });
});
