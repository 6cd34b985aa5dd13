// SIGTERM as systemd or Ctrl-C sends it: open streams finish, new connections are refused, the
// process exits 0 by the deadline; what outlives timeouts.shutdown is cut, visibly. A worker that
// gets the signal itself drains the same way instead of dying with its streams.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Agent } from 'undici';
import { deadline, h1Request } from '../helpers/clients.js';
import { childPids, exitOf, pollUntil, tcpConnect, type Exit } from '../helpers/cluster-ops.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { createAgent, describeOutcomes, H2Slot, sendH1, sendH2, succeeded, type Exchange, type Outcome, type Target } from '../helpers/traffic.js';

const clientKey = 'sk-test-shutdown-client-0001';

interface Setup {
  mock: MockProvider;
  proxy: ProxyProcess;
  agent: Agent;
  slots: H2Slot[];
  target: Target;
}

/** A mock and a proxy with the given drain deadline, stopped (whatever state the test left) after the block. */
function useShutdownProxy(shutdownSeconds: number, h2Sessions: number): Setup {
  const setup = { slots: [] as H2Slot[] } as unknown as Setup;
  before(async function () {
    setup.mock = await startMockProvider();
    setup.proxy = await startProxy({
      auth_keys: [clientKey],
      timeouts: { shutdown: shutdownSeconds },
      providers: [{ type: 'openai', host: 'drain.proxy.test', endpoint: '127.0.0.1', port: setup.mock.port, tls: false, api_key: 'sk-test-shutdown-upstream-0001' }],
    });
    setup.target = { port: setup.proxy.port, caPem: setup.proxy.caPem, host: 'drain.proxy.test', clientKey };
    setup.agent = createAgent(setup.proxy.caPem);
    setup.slots = Array.from({ length: h2Sessions }, () => new H2Slot(() => setup.target));
  });
  after(async function () {
    for (const slot of setup.slots) slot.close();
    await setup.agent?.close();
    await setup.proxy?.stop();
    await setup.mock?.close();
  });
  return setup;
}

/** Waits until every exchange has body bytes in flight: then a signal lands mid-stream for all of them. */
async function allStreaming(exchanges: Exchange[]): Promise<void> {
  const arrived = await deadline(Promise.all(exchanges.map((e) => e.firstBytes)), 10_000, 'first bytes of every stream');
  expect(arrived.every(Boolean), 'a stream ended before sending anything').to.equal(true);
}

describe('shutdown: SIGTERM with 50 open streams', function () {
  this.timeout(40_000);
  const shutdownSeconds = 10;
  const fx = useShutdownProxy(shutdownSeconds, 2);

  it('finishes every stream, refuses new connections at once, and exits 0 before the deadline', async function () {
    // 30 tokens 50 ms apart: each stream runs 1.5 s, long enough to be mid-way when the signal lands.
    const spec = { streaming: true, tokens: 30, delayMs: 50, timeoutMs: 20_000 };
    const sessions = await Promise.all(fx.slots.map((slot) => slot.get()));
    const exchanges: Exchange[] = [];
    for (let i = 0; i < 25; i++) exchanges.push(sendH1(fx.agent, fx.target, spec));
    for (let i = 0; i < 25; i++) exchanges.push(sendH2(sessions[i % sessions.length]!, fx.target, spec));
    const outcomes: Outcome[] = [];
    for (const e of exchanges) void e.done.then((o) => outcomes.push(o));
    await allStreaming(exchanges);
    expect(outcomes, 'streams that ended before the signal').to.have.length(0);

    const exited = exitOf(fx.proxy.child);
    const signalledAt = Date.now();
    fx.proxy.child.kill('SIGTERM');
    await fx.proxy.waitForLog((l) => l.msg === 'shutting down, draining workers');

    const refusedAt = await pollUntil('a new connection refused', 2_000, async () => ((await tcpConnect(fx.proxy.port)) === 'ECONNREFUSED' ? Date.now() : undefined), 20);
    expect(outcomes.length, 'streams already over when new connections were refused').to.be.lessThan(50);

    const all = await deadline(Promise.all(exchanges.map((e) => e.done)), 15_000, 'every stream to end');
    const failed = all.filter((o) => !succeeded(o));
    expect(failed, `streams that did not finish:\n${describeOutcomes(failed)}`).to.deep.equal([]);
    expect(all.filter((o) => o.protocol === 'h1')).to.have.length(25);
    expect(all.filter((o) => o.protocol === 'h2')).to.have.length(25);

    const exit: Exit = await deadline(exited, (shutdownSeconds + 3) * 1000, 'the primary to exit');
    expect(exit.code, 'exit code').to.equal(0);
    expect(exit.at - signalledAt).to.be.lessThan((shutdownSeconds + 3) * 1000);
    expect(refusedAt).to.be.lessThan(exit.at);
    expect(fx.proxy.logs.some((l) => l.msg === 'stopped')).to.equal(true);
  });
});

describe('shutdown: timeouts.shutdown cuts what is still running', function () {
  this.timeout(30_000);
  const shutdownSeconds = 1;
  const fx = useShutdownProxy(shutdownSeconds, 1);

  it('a stream longer than the deadline is cut at the deadline, visibly, and the process still exits 0', async function () {
    // 100 tokens 100 ms apart: ten seconds, far past the one-second deadline.
    const spec = { streaming: true, tokens: 100, delayMs: 100, timeoutMs: 20_000 };
    const exchanges = [sendH1(fx.agent, fx.target, spec), sendH2(await fx.slots[0]!.get(), fx.target, spec)];
    await allStreaming(exchanges);

    const exited = exitOf(fx.proxy.child);
    const signalledAt = Date.now();
    fx.proxy.child.kill('SIGTERM');
    const cut = await deadline(Promise.all(exchanges.map((e) => e.done)), 5_000, 'the streams to be cut');
    for (const outcome of cut) {
      const what = `${outcome.protocol}: ${describeOutcomes([outcome])}`;
      expect(outcome.status, what).to.equal(200);
      expect(outcome.error, `${what}: the stream ended cleanly instead of being cut`).to.be.a('string');
      expect(outcome.body, what).to.not.include('[DONE]');
      // HTTP/2: an explicit RST_STREAM(INTERNAL_ERROR), not a session torn down under a quiet stream.
      if (outcome.protocol === 'h2') expect(outcome.error, what).to.match(/NGHTTP2_INTERNAL_ERROR/);
      // Streams kept flowing after the signal (an event every 100 ms) until the deadline, then stopped near it.
      const eventsBySignal = Math.ceil((signalledAt - outcome.startedAt) / 100) + 1;
      expect(outcome.body.split('data: ').length - 1, `${what}: events received`).to.be.greaterThan(eventsBySignal + 4);
      expect(outcome.endedAt - signalledAt, what).to.be.within(shutdownSeconds * 1000 - 100, shutdownSeconds * 1000 + 2_000);
    }

    const exit = await deadline(exited, (shutdownSeconds + 3) * 1000, 'the primary to exit');
    expect(exit.code).to.equal(0);
    expect(fx.proxy.logs.some((l) => l.msg === 'stopped')).to.equal(true);
  });
});

describe('shutdown: SIGTERM sent to a worker process', function () {
  this.timeout(30_000);
  const shutdownSeconds = 4;
  const fx = useShutdownProxy(shutdownSeconds, 1);

  it('the worker drains: its open stream completes, other connections are served, a replacement starts', async function () {
    const session = await fx.slots[0]!.get();
    // A request whose access-log line names the worker behind this session (one session, one worker).
    const marker = `/v1/which-worker-${randomBytes(4).toString('hex')}`;
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ':path': marker, ':authority': 'drain.proxy.test', authorization: `Bearer ${clientKey}` });
      stream.on('error', reject);
      stream.resume();
      stream.on('end', resolve);
    });
    const line = await fx.proxy.waitForLog((l) => l.msg === 'request' && l.path === marker);
    const pid = line.pid as number;
    const before = await childPids(fx.proxy.child.pid as number);
    expect(before).to.include(pid);

    const stream = sendH2(session, fx.target, { streaming: true, tokens: 30, delayMs: 50, timeoutMs: 20_000 });
    await allStreaming([stream]);
    process.kill(pid, 'SIGTERM');

    // Meanwhile the port answers: new connections go to the other worker.
    const freshAgent = createAgent(fx.proxy.caPem);
    try {
      const fresh = await h1Request(freshAgent, fx.proxy.port, {
        host: 'drain.proxy.test',
        path: '/v1/chat/completions',
        body: '{}',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` },
      });
      expect(fresh.status).to.equal(200);
    } finally {
      await freshAgent.close();
    }

    const outcome = await deadline(stream.done, 10_000, 'the stream on the signalled worker');
    expect(succeeded(outcome), describeOutcomes([outcome])).to.equal(true);
    await fx.proxy.waitForLog((l) => l.msg === 'worker drained' && l.pid === pid, 5_000);
    await pollUntil('the signalled worker to exit', 5_000, async () => ((await childPids(fx.proxy.child.pid as number)).includes(pid) ? undefined : true));
    const after = await pollUntil('a replacement worker', 10_000, async () => {
      const pids = await childPids(fx.proxy.child.pid as number);
      return pids.length === 2 ? pids : undefined;
    });
    expect(after).to.not.include(pid);
    expect(fx.proxy.child.exitCode, 'the primary is still running').to.equal(null);
  });

  // Regression: a worker forked moments before SIGTERM (a replacement still loading its code) missed
  // the shutdown message, took its snapshot and started listening after shutdown had begun, and the
  // primary waited out the whole deadline (plus the kill grace) for it with nothing in flight.
  it('SIGTERM to the primary right after it replaced a worker still exits before the deadline', async function () {
    const primary = fx.proxy.child.pid as number;
    const [victim] = await childPids(primary);
    process.kill(victim as number, 'SIGKILL');
    // Tight polling: the point is to signal while the replacement is still starting up.
    await pollUntil('the replacement to be forked', 10_000, async () => {
      const pids = await childPids(primary);
      return pids.length === 2 && !pids.includes(victim as number) ? true : undefined;
    }, 5);
    const exited = exitOf(fx.proxy.child);
    const signalledAt = Date.now();
    fx.proxy.child.kill('SIGTERM');
    const exit = await deadline(exited, shutdownSeconds * 1000, 'the primary to exit with nothing in flight');
    expect(exit.code).to.equal(0);
    expect(exit.at - signalledAt).to.be.lessThan(shutdownSeconds * 1000);
  });
});
