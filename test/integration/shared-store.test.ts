// Issue 14: limits shared by several proxy instances through a real redis-server. Two instances of 2
// workers each share a key's requests per minute, tokens per minute and concurrency; an upstream
// key's 429 cooling reaches the other instance; the slots of an instance that was SIGKILLed come back
// by themselves; Redis killed mid-run leaves the proxy serving (limits local, logged once, counted,
// shown), and once it is back the limits are shared again.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Agent, request } from 'undici';
import { deadline, h1Request, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { credentialsIn, startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { scrapeMetrics } from '../helpers/prometheus.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { hasRedisServer, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const host = 'shared.proxy.test';
const keys = {
  rpm: 'sk-test-shared-rpm-0001',
  tpm: 'sk-test-shared-tpm-0002',
  concurrent: 'sk-test-shared-concurrent-0003',
  free: 'sk-test-shared-free-0004',
  killed: 'sk-test-shared-killed-0005',
  outage: 'sk-test-shared-outage-0006',
  resync: 'sk-test-shared-resync-0009',
};
const upstreamKeys = ['sk-test-shared-upstream-one-0007', 'sk-test-shared-upstream-two-0008'];

function sharedConfig(redisUrl: string, mockPort: number, prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    // A second per command: a loaded 2-core CI machine can stall a process for half the default.
    shared_store: { url: redisUrl, key_prefix: prefix, command_timeout: 1, ...extra },
    auth_keys: [
      { key: keys.rpm, name: 'shared-rpm', rate_limit: { requests_per_minute: 60 } },
      { key: keys.tpm, name: 'shared-tpm', rate_limit: { tokens_per_minute: 3000 } },
      { key: keys.concurrent, name: 'shared-concurrent', rate_limit: { concurrent: 2 } },
      { key: keys.killed, name: 'shared-killed', rate_limit: { concurrent: 2 } },
      { key: keys.outage, name: 'shared-outage', rate_limit: { tokens_per_minute: 3000 } },
      { key: keys.resync, name: 'shared-resync', rate_limit: { tokens_per_minute: 3000 } },
      keys.free,
    ],
    providers: [{ type: 'openai', host, endpoint: '127.0.0.1', port: mockPort, tls: false, api_key: upstreamKeys }],
  };
}

const chat = (key: string, headers: Record<string, string> = {}, stream = false): TestRequest => ({
  host,
  path: '/v1/chat/completions',
  body: JSON.stringify({ model: 'shared-model', stream, messages: [{ role: 'user', content: 'hi' }] }),
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-mock-tokens': '1', ...headers },
});

/** 10 prompt tokens and 990 generated: the mock reports 1,000 a response. */
const thousandTokens = { 'x-mock-input-tokens': '10', 'x-mock-tokens': '990' };
/** A stream of 20 events 75 ms apart: about 1.5 s in flight. */
const slowStream = { 'x-mock-tokens': '20', 'x-mock-delay-ms': '75' };

async function status(proxy: ProxyProcess): Promise<{ sharedStore: { kind: string; state: string; connection: string }; workers: { list: { pid: number }[] } }> {
  const res = await request(`http://127.0.0.1:${proxy.adminPort}/status`);
  return (await res.body.json()) as never;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
  return Date.now() - started;
}

const agentFor = (proxy: ProxyProcess, connections = 8) => new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' }, connections });

describe('limits shared through Redis by two instances of 2 workers', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let mock: MockProvider;
  let a: ProxyProcess;
  let b: ProxyProcess;
  let agentA: Agent;
  let agentB: Agent;
  const prefix = `llm-proxy-test-${randomBytes(4).toString('hex')}:`;

  before(async function () {
    if (!hasRedisServer()) {
      // CI installs it (.ci/run); a developer machine without it skips these, visibly.
      if (process.env.LLM_PROXY_CI === '1') throw new Error('redis-server is not installed');
      this.skip();
    }
    redis = await startRedisServer();
    mock = await startMockProvider();
    [a, b] = await Promise.all([startProxy(sharedConfig(redis.url, mock.port, prefix)), startProxy(sharedConfig(redis.url, mock.port, prefix))]);
    agentA = agentFor(a);
    agentB = agentFor(b);
    await Promise.all(
      [a, b].map((proxy) => waitFor('shared store connected', 5_000, async () => (await status(proxy)).sharedStore.state === 'shared')),
    );
  });
  after(async function () {
    await agentA?.close();
    await agentB?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await mock?.close();
    await redis?.stop();
  });

  const logged = (proxy: ProxyProcess, prefix: string) => proxy.logs.filter((line) => line.msg.startsWith(prefix)).length;
  const send = (on: 'a' | 'b', req: TestRequest) => (on === 'a' ? h1Request(agentA, a.port, req) : h1Request(agentB, b.port, req));

  it('60 requests/min over both instances: of 200 sent within a few seconds, 55 to 75 are admitted, the rest 429', async function () {
    const pending: Promise<TestResponse>[] = [];
    const started = performance.now();
    // A connection of its own for every request: with each worker accepting on its own socket (Node
    // 22.12+) the kernel picks the worker by a hash, and the two or three kept-alive connections this
    // pace needs could all land on one.
    const ownConnection = { connection: 'close' };
    for (let tick = 0; tick < 50; tick++) {
      for (let i = 0; i < 2; i++) {
        pending.push(send('a', chat(keys.rpm, ownConnection)));
        pending.push(send('b', chat(keys.rpm, ownConnection)));
      }
      await sleep(40);
    }
    const answers = await Promise.all(pending);
    const elapsedS = (performance.now() - started) / 1000;
    const admitted = answers.filter((res) => res.status === 200).length;
    expect(elapsedS).to.be.below(8);
    if (process.env.SHOW_FIGURES) process.stderr.write(`admitted ${admitted} of 200 in ${elapsedS.toFixed(2)} s\n`);
    expect(admitted, `admitted of 200 in ${elapsedS.toFixed(1)} s`).to.be.within(55, 75);
    for (const res of answers.filter((r) => r.status !== 200)) {
      expect(res.status).to.equal(429);
      expect(res.headers['x-llm-proxy-error']).to.equal('key_requests_limited');
      expect(Number(res.headers['retry-after'])).to.be.at.least(1);
    }
    const served = (proxy: ProxyProcess) => proxy.logs.filter((line) => line.msg === 'request' && line.clientKey === 'shared-rpm' && line.status === 200);
    // Each instance admitted a share, and both workers of each took part.
    for (const proxy of [a, b]) {
      expect(served(proxy).length).to.be.greaterThan(5);
      expect(new Set(served(proxy).map((line) => line.pid)).size).to.equal(2);
    }
  });

  it('3,000 tokens/min: what one instance spent is charged on the other, which then refuses the key', async function () {
    const statuses: number[] = [];
    for (const on of ['a', 'a'] as const) statuses.push((await send(on, chat(keys.tpm, thousandTokens))).status);
    // A's workers have asked ahead for what their next request will cost; unused, it goes back after
    // 2 s (checked every second).
    await sleep(3_500);
    statuses.push((await send('b', chat(keys.tpm, thousandTokens))).status);
    expect(statuses).to.deep.equal([200, 200, 200]);
    // The response's usage reaches Redis a moment after the client has it.
    await sleep(150);
    for (const on of ['a', 'b'] as const) {
      const refused = await send(on, chat(keys.tpm, thousandTokens));
      expect(refused.status, `on ${on}`).to.equal(429);
      expect(refused.headers['x-llm-proxy-error']).to.equal('key_tokens_limited');
      expect(Number(refused.headers['retry-after'])).to.be.within(1, 60);
    }
  });

  it('concurrent: 2 counts the streams of both instances, and a freed slot on one is usable on the other at once', async function () {
    const first = send('a', chat(keys.concurrent, slowStream, true));
    const second = send('b', chat(keys.concurrent, slowStream, true));
    await sleep(600);
    for (const on of ['a', 'b'] as const) {
      const third = await send(on, chat(keys.concurrent));
      expect(third.status, `third on ${on}`).to.equal(429);
      expect(third.headers['x-llm-proxy-error']).to.equal('key_concurrency_limited');
    }
    expect((await Promise.all([first, second])).map((res) => res.status)).to.deep.equal([200, 200]);
    // A's worker keeps its freed slot as a spare; B, wanting both, gets it recalled at once.
    const both = await Promise.all([send('b', chat(keys.concurrent, slowStream, true)), send('b', chat(keys.concurrent, slowStream, true))]);
    expect(both.map((res) => res.status)).to.deep.equal([200, 200]);
    expect(both[0]?.text).to.include('data: [DONE]');
  });

  it("an upstream key's 429 with Retry-After on one instance keeps the other instance off that key too", async function () {
    let limitedAt = 0;
    const limitedKey = `Bearer ${upstreamKeys[0]}`;
    mock.override((recorded) => {
      if (limitedAt === 0 && credentialsIn(recorded)[0]?.[1] === limitedKey) {
        limitedAt = Date.now();
        return { status: 429, headers: { 'retry-after': '20' } };
      }
      return undefined;
    });
    try {
      // Until A meets the 429 (it fails over to the other key, so the client sees a 200).
      await waitFor('a 429 on instance A', 10_000, async () => {
        expect((await send('a', chat(keys.free))).status).to.equal(200);
        return limitedAt > 0;
      });
      await b.waitForLog((line) => line.msg === 'upstream rate limit, instance cooling', 3_000);
      const sentAfter = Date.now();
      const answers = await Promise.all(Array.from({ length: 30 }, () => send('b', chat(keys.free))));
      expect(answers.every((res) => res.status === 200)).to.equal(true);
      const fromB = mock.requests.filter((recorded) => recorded.receivedAt >= sentAfter);
      expect(fromB.length).to.be.at.least(30);
      expect(fromB.filter((recorded) => credentialsIn(recorded)[0]?.[1] === limitedKey)).to.have.length(0);
    } finally {
      mock.override(undefined);
    }
  });

  it('an instance SIGKILLed while it holds slots: they come back within its slot_ttl (10 s by default; 3 s here)', async function () {
    const doomed = await startProxy(sharedConfig(redis.url, mock.port, prefix, { slot_ttl: 3 }));
    const doomedAgent = agentFor(doomed);
    try {
      await waitFor('shared store connected', 5_000, async () => (await status(doomed)).sharedStore.state === 'shared');
      const long = { 'x-mock-tokens': '300', 'x-mock-delay-ms': '100' };
      const streams = [0, 1].map(() => h1Request(doomedAgent, doomed.port, chat(keys.killed, long, true)).catch(() => undefined));
      await sleep(600);
      expect((await send('a', chat(keys.killed))).status).to.equal(429);
      const pids = (await status(doomed)).workers.list.map((worker) => worker.pid);
      const killedAt = Date.now();
      // As a power cut would: the primary and its workers at once, nothing handed back.
      for (const pid of [doomed.child.pid as number, ...pids]) process.kill(pid, 'SIGKILL');
      await Promise.all(streams);
      const backAfterMs = await waitFor('the dead instance’s slots back', 8_000, async () => (await send('a', chat(keys.killed))).status === 200);
      if (process.env.SHOW_FIGURES) process.stderr.write(`slots back ${Date.now() - killedAt} ms after the kill\n`);
      // The ttl plus slack for a loaded machine: the holding expires at most 3 s after its last renewal.
      expect(Date.now() - killedAt).to.be.below(6_000);
      expect(backAfterMs).to.be.above(0);
    } finally {
      await doomedAgent.close();
      await doomed.stop();
    }
  });

  it('Redis frozen (SIGSTOP: an open, silent socket, as across a cut network): no request hangs, limits go local, then shared again', async function () {
    const backBefore = [a, b].map((proxy) => logged(proxy, 'shared store back'));
    redis.freeze();
    try {
      const started = Date.now();
      const answers = await deadline(
        Promise.all([send('a', chat(keys.free)), send('b', chat(keys.rpm)), send('a', chat(keys.outage, thousandTokens)), send('b', chat(keys.concurrent))]),
        3_000,
        'answers while Redis is frozen',
      );
      for (const res of answers) expect(res.status).to.be.oneOf([200, 429]);
      expect(answers[0]?.status).to.equal(200);
      expect(Date.now() - started).to.be.below(3_000);
      for (const proxy of [a, b]) await waitFor('frozen store noticed', 5_000, async () => (await status(proxy)).sharedStore.state === 'local');
    } finally {
      redis.thaw();
    }
    for (const proxy of [a, b]) await waitFor('shared again after the freeze', 15_000, async () => (await status(proxy)).sharedStore.state === 'shared');
    // The log line may come a moment after /status says so; the next test counts from here.
    for (const [index, proxy] of [a, b].entries()) await waitFor('the return logged', 3_000, async () => logged(proxy, 'shared store back') > (backBefore[index] ?? 0));
  });

  it('Redis killed mid-run: serving goes on with local limits (logged once, counted, shown), and within 15 s of its return they are shared again', async function () {
    const before = await scrapeMetrics(a.adminPort as number);
    const loggedBefore = [a, b].map((proxy) => [logged(proxy, 'shared store unavailable'), logged(proxy, 'shared store back')]);
    await redis.kill();
    // Nothing hangs on the missing store: every answer comes within the deadline, none is a 5xx.
    for (let round = 0; round < 5; round++) {
      const answers = await deadline(
        Promise.all([send('a', chat(keys.free)), send('b', chat(keys.free)), send('a', chat(keys.rpm)), send('b', chat(keys.outage))]),
        3_000,
        'answers while Redis is down',
      );
      for (const res of answers) expect(res.status).to.be.oneOf([200, 429]);
      expect(answers[0]?.status).to.equal(200);
      await sleep(200);
    }
    await waitFor('instance A notices', 5_000, async () => (await status(a)).sharedStore.state === 'local');
    const ready = await request(`http://127.0.0.1:${a.adminPort}/readyz`);
    expect(ready.statusCode).to.equal(200);
    await ready.body.dump();
    const down = await scrapeMetrics(a.adminPort as number);
    expect(down.get('llm_proxy_shared_store_up')).to.equal(0);
    expect(down.get('llm_proxy_shared_store_transitions_total{to="unavailable"}')).to.equal((before.get('llm_proxy_shared_store_transitions_total{to="unavailable"}') ?? 0) + 1);
    // Local limits hold meanwhile: 3,000 tokens/min on A alone.
    const local: number[] = [];
    for (let i = 0; i < 4; i++) local.push((await send('a', chat(keys.outage, thousandTokens))).status);
    expect(local.slice(-1)).to.deep.equal([429]);

    await redis.restart();
    const restartedAt = Date.now();
    for (const proxy of [a, b]) await waitFor('shared again', 15_000, async () => (await status(proxy)).sharedStore.state === 'shared');
    if (process.env.SHOW_FIGURES) process.stderr.write(`shared again ${Date.now() - restartedAt} ms after the restart\n`);
    expect(Date.now() - restartedAt).to.be.below(15_000);
    for (const [index, proxy] of [a, b].entries()) {
      await waitFor('the return logged', 3_000, async () => logged(proxy, 'shared store back') > (loggedBefore[index]?.[1] ?? 0));
      // Once each way, however many requests met the outage.
      expect(logged(proxy, 'shared store unavailable')).to.equal((loggedBefore[index]?.[0] ?? 0) + 1);
      expect(logged(proxy, 'shared store back')).to.equal((loggedBefore[index]?.[1] ?? 0) + 1);
    }
    // Shared again: tokens spent on B count on A (a key neither has refused before).
    for (let i = 0; i < 3; i++) expect((await send('b', chat(keys.resync, thousandTokens))).status).to.equal(200);
    await sleep(150);
    expect((await send('a', chat(keys.resync, thousandTokens))).status).to.equal(429);
    const up = await scrapeMetrics(a.adminPort as number);
    expect(up.get('llm_proxy_shared_store_up')).to.equal(1);
  });
});

describe('shared store out of reach from the start, with on_unavailable: reject', function () {
  this.timeout(30_000);
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let agent: Agent;

  before(async function () {
    mock = await startMockProvider();
    // Nothing listens on port 9 of loopback (discard, never served here).
    proxy = await startProxy(sharedConfig('redis://127.0.0.1:9/0', mock.port, 'llm-proxy-test-reject:', { on_unavailable: 'reject', connect_timeout: 1 }));
    agent = agentFor(proxy);
  });
  after(async function () {
    await agent?.close();
    await proxy?.stop();
    await mock?.close();
  });

  it('limited keys get 503 with Retry-After and a clear code; other keys are served; /readyz stays ready', async function () {
    await waitFor('store marked unavailable', 5_000, async () => (await status(proxy)).sharedStore.state === 'reject');
    const limited = await deadline(h1Request(agent, proxy.port, chat(keys.rpm)), 3_000, 'limited key answer');
    expect(limited.status).to.equal(503);
    expect(limited.headers['x-llm-proxy-error']).to.equal('rate_limit_store_unavailable');
    expect(Number(limited.headers['retry-after'])).to.be.at.least(1);
    expect(limited.json<{ error: { code: string } }>().error.code).to.equal('rate_limit_store_unavailable');
    const concurrent = await deadline(h1Request(agent, proxy.port, chat(keys.concurrent)), 3_000, 'concurrent key answer');
    expect(concurrent.status).to.equal(503);
    expect((await h1Request(agent, proxy.port, chat(keys.free))).status).to.equal(200);
    const ready = await request(`http://127.0.0.1:${proxy.adminPort}/readyz`);
    expect(ready.statusCode).to.equal(200);
    await ready.body.dump();
    await proxy.waitForLog((line) => line.msg.startsWith('shared store unavailable'), 3_000);
    expect(proxy.logs.filter((line) => line.msg.startsWith('shared store unavailable'))).to.have.length(1);
  });
});
