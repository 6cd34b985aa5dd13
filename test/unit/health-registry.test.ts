// The primary's health decisions, driven the way workers and probes drive them: outcome batches,
// probe results, 429 cooling and trial verdicts, checked through the tables workers would receive.
import { expect } from 'chai';
import { pino } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSnapshot } from '../../src/primary/build-snapshot.js';
import { createHealthRegistry, type HealthRegistry } from '../../src/primary/health-registry.js';
import { parseConfigText } from '../../src/shared/config/parse.js';
import type { HealthTable } from '../../src/shared/ipc.js';
import type { Snapshot } from '../../src/shared/snapshot.js';

function snapshotOf(yamlExtra: string, keys = ['sk-unit-health-key-a', 'sk-unit-health-key-b']): Snapshot {
  const text = [
    'cert_file: c.pem',
    'private_key_file: k.pem',
    yamlExtra,
    'providers:',
    '  - type: openai',
    '    host: r.example.com',
    '    endpoint: 127.0.0.1',
    '    health_check: {path: /v1/models, healthy_threshold: 2, unhealthy_threshold: 2}',
    `    api_key: [${keys.join(', ')}]`,
  ].join('\n');
  const { config, warnings } = parseConfigText(text, 'config.yml');
  return buildSnapshot({ file: 'config.yml', config, warnings, certPem: '', keyPem: '', caPems: new Map() }, 1, '', 2);
}

describe('health registry (primary)', function () {
  let registry: HealthRegistry;
  let changes = 0;
  let workers = [1, 2];
  let snapshot: Snapshot;
  let a: string;
  let b: string;
  const downIds = (table: HealthTable) => table.down.map(([id]) => id);

  beforeEach(function () {
    changes = 0;
    workers = [1, 2];
    registry = createHealthRegistry({ log: pino({ level: 'silent' }), workerIds: () => workers, onChange: () => (changes += 1) });
    snapshot = snapshotOf('circuit_breaker: {consecutive_failures: 3, cooldown: 0.05}');
    registry.sync(snapshot);
    [a, b] = (snapshot.routes[0]?.instances ?? []).map((instance) => instance.id) as [string, string];
  });
  afterEach(() => registry.stop());

  it('gives each key of a provider its own stable id, the same after a rebuild', function () {
    expect(a).to.be.a('string').and.not.equal(b);
    const again = snapshotOf('circuit_breaker: {consecutive_failures: 3, cooldown: 0.05}');
    expect(again.routes[0]?.instances.map((instance) => instance.id)).to.deep.equal([a, b]);
  });

  it('opens the breaker after the configured failures in a row, counted across batches and workers', async function () {
    registry.outcomes([[a, 3, 2, 2]]);
    expect(downIds(registry.tableFor(1))).to.deep.equal([]);
    registry.outcomes([[a, 0, 1, 1]]);
    const table = registry.tableFor(1);
    expect(downIds(table)).to.deep.equal([a]);
    expect(table.down[0]?.[1]).to.be.greaterThan(Date.now());
    expect(registry.report().find((r) => r.id === a)?.breaker).to.equal('open');
    await sleep(0);
    expect(changes).to.be.greaterThan(0);
  });

  it('a success in the batch resets the count to the failures after it', function () {
    registry.outcomes([[a, 0, 2, 2]]);
    registry.outcomes([[a, 1, 5, 1]]);
    expect(registry.report().find((r) => r.id === a)?.consecutiveFailures).to.equal(1);
    expect(downIds(registry.tableFor(1))).to.deep.equal([]);
  });

  it('half-opens after the cooldown with one trial granted to one worker; a good trial closes it', async function () {
    registry.outcomes([[a, 0, 3, 3]]);
    await sleep(80);
    const one = registry.tableFor(1);
    const two = registry.tableFor(2);
    expect(one.trials.length + two.trials.length).to.equal(1);
    // Everyone else still skips it while the trial runs.
    expect(downIds(one)).to.include(a);
    const holder = one.trials.length === 1 ? 1 : 2;
    registry.trial(a, 'ok', holder);
    expect(downIds(registry.tableFor(holder))).to.deep.equal([]);
    expect(registry.report().find((r) => r.id === a)).to.include({ breaker: 'closed', consecutiveFailures: 0, available: true });
  });

  it('a failed trial opens it again; a declined grant moves to the other worker', async function () {
    registry.outcomes([[a, 0, 3, 3]]);
    await sleep(80);
    const holder = registry.tableFor(1).trials.length === 1 ? 1 : 2;
    const other = holder === 1 ? 2 : 1;
    registry.trial(a, 'declined', holder);
    expect(registry.tableFor(holder).trials).to.deep.equal([]);
    expect(registry.tableFor(other).trials).to.deep.equal([a]);
    // A verdict from a worker that no longer holds the grant changes nothing.
    registry.trial(a, 'ok', holder);
    expect(registry.report().find((r) => r.id === a)?.breaker).to.equal('half-open');
    registry.trial(a, 'failed', other);
    expect(registry.report().find((r) => r.id === a)?.breaker).to.equal('open');
  });

  it('a worker that leaves hands its trial on', async function () {
    registry.outcomes([[a, 0, 3, 3]]);
    await sleep(80);
    const holder = registry.tableFor(1).trials.length === 1 ? 1 : 2;
    workers = workers.filter((id) => id !== holder);
    registry.workerGone(holder);
    expect(registry.tableFor(workers[0] as number).trials).to.deep.equal([a]);
  });

  it('a trial nobody could hold (no worker serving when the cooldown ended) goes to the first worker that asks', async function () {
    workers = [];
    registry.outcomes([[a, 0, 3, 3]]);
    await sleep(80);
    workers = [3];
    expect(registry.tableFor(3).trials).to.deep.equal([a]);
  });

  it('a burst of 429s for one key is one change, not one per answer', async function () {
    registry.cool(a, 5_000);
    await sleep(0);
    const after = changes;
    for (let i = 0; i < 50; i++) registry.cool(a, 5_000 + i);
    await sleep(0);
    expect(changes).to.equal(after);
    registry.cool(a, 7_000);
    await sleep(0);
    expect(changes).to.equal(after + 1);
  });

  it('honours the probe thresholds both ways and marks a probe-down instance with no end', function () {
    registry.probeResult(b, false, 'status 503');
    expect(downIds(registry.tableFor(1))).to.deep.equal([]);
    registry.probeResult(b, false, 'status 503');
    expect(registry.tableFor(1).down).to.deep.equal([[b, 0, 0]]);
    registry.probeResult(b, true);
    expect(downIds(registry.tableFor(1))).to.deep.equal([b]);
    registry.probeResult(b, true);
    expect(downIds(registry.tableFor(1))).to.deep.equal([]);
  });

  it('cools a key for the Retry-After time, flagged as rate limited, then brings it back', async function () {
    registry.cool(a, 60);
    const [entry] = registry.tableFor(1).down;
    expect(entry?.[0]).to.equal(a);
    expect(entry?.[2]).to.equal(1);
    await sleep(100);
    expect(registry.tableFor(1).down).to.deep.equal([]);
  });

  it('keeps the state of unchanged instances across a reload and forgets removed ones', function () {
    registry.outcomes([[a, 0, 3, 3]]);
    registry.probeResult(b, false);
    registry.probeResult(b, false);
    const next = snapshotOf('circuit_breaker: {consecutive_failures: 3, cooldown: 0.05}', ['sk-unit-health-key-a', 'sk-unit-health-key-c']);
    registry.sync(next);
    const ids = registry.report().map((r) => r.id);
    expect(ids).to.include(a).and.not.include(b);
    expect(registry.report().find((r) => r.id === a)?.breaker).to.equal('open');
    expect(registry.tableFor(1).seq).to.be.greaterThan(0);
  });

  it('sends tables whose sequence only grows', function () {
    const first = registry.tableFor(1).seq;
    registry.cool(a, 1000);
    expect(registry.tableFor(1).seq).to.be.greaterThan(first);
  });
});
