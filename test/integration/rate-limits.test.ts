// Issue 6: client keys with cluster-wide limits. A key's requests per minute hold whether its traffic
// comes over one HTTP/2 connection (one worker) or many HTTP/1.1 connections (both workers); tokens
// per minute are charged from the usage responses report; concurrent streams are counted across the
// cluster; limits survive a reload when unchanged and take new values when changed.
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Agent } from 'undici';
import { rewriteConfig } from '../helpers/cluster-ops.js';
import { h1Request, h2Request, openH2Session, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { scrapeMetrics } from '../helpers/prometheus.js';
import { startProxy, type LogLine, type ProxyProcess } from '../helpers/proxy-process.js';

const host = 'limits.proxy.test';
const keys = {
  rpmH2: 'sk-test-limits-rpm-h2-0001',
  rpmH1: 'sk-test-limits-rpm-h1-0002',
  tpm: 'sk-test-limits-tpm-0003',
  concurrent: 'sk-test-limits-concurrent-0004',
  reload: 'sk-test-limits-reload-0005',
  free: 'sk-test-limits-free-0006',
  tpmConcurrent: 'sk-test-limits-tpm-concurrent-0008',
};

function configWith(mockPort: number, reloadLimit: number): Record<string, unknown> {
  return {
    auth_keys: [
      { key: keys.rpmH2, name: 'rpm-h2', rate_limit: { requests_per_minute: 120 } },
      { key: keys.rpmH1, name: 'rpm-h1', rate_limit: { requests_per_minute: 120 } },
      { key: keys.tpm, name: 'tpm', rate_limit: { tokens_per_minute: 5000 } },
      { key: keys.tpmConcurrent, name: 'tpm-concurrent', rate_limit: { tokens_per_minute: 5000 } },
      { key: keys.concurrent, name: 'two-at-once', rate_limit: { concurrent: 2 } },
      { key: keys.reload, name: 'reloaded', rate_limit: { requests_per_minute: reloadLimit } },
      keys.free,
    ],
    providers: [{ type: 'openai', host, endpoint: '127.0.0.1', port: mockPort, tls: false, api_key: 'sk-test-limits-upstream-0007' }],
  };
}

const chat = (key: string, headers: Record<string, string> = {}, stream = false): TestRequest => ({
  host,
  path: '/v1/chat/completions',
  body: JSON.stringify({ model: 'limits-model', stream, messages: [{ role: 'user', content: 'hi' }] }),
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-mock-tokens': '1', ...headers },
});

/** Sends `total` requests spread evenly over `seconds`, `perTick` at a time; returns every answer. */
async function paced(total: number, seconds: number, perTick: number, send: () => Promise<TestResponse>): Promise<{ answers: TestResponse[]; elapsedS: number }> {
  const ticks = total / perTick;
  const started = performance.now();
  const pending: Promise<TestResponse>[] = [];
  for (let tick = 0; tick < ticks; tick++) {
    const due = started + (tick * seconds * 1000) / ticks;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    for (let i = 0; i < perTick; i++) pending.push(send());
  }
  const answers = await Promise.all(pending);
  return { answers, elapsedS: (performance.now() - started) / 1000 };
}

function expectRateLimitAnswer(res: TestResponse, dimension: 'requests' | 'tokens', limit: number): void {
  expect(res.status).to.equal(429);
  expect(Number(res.headers['retry-after'])).to.be.at.least(1);
  expect(res.headers[`x-ratelimit-limit-${dimension}`]).to.equal(String(limit));
  expect(Number(res.headers[`x-ratelimit-remaining-${dimension}`])).to.be.at.least(0).and.below(limit);
  expect(res.headers[`x-ratelimit-reset-${dimension}`]).to.match(/^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$/);
  expect(res.headers['x-llm-proxy-error']).to.equal(`key_${dimension}_limited`);
  const body = res.json<{ error: { type: string; code: string; message: string } }>();
  expect(body.error).to.include({ type: 'rate_limit_error', code: `key_${dimension}_limited` });
}

/** The requests a 120/min bucket allows in `elapsedS`: the full minute's burst plus the refill. */
const allowedAt120 = (elapsedS: number) => 120 + 2 * elapsedS;

describe('client-key rate limits (2 workers)', function () {
  this.timeout(60_000);
  let mock: MockProvider;
  let proxy: ProxyProcess;

  before(async function () {
    mock = await startMockProvider();
    proxy = await startProxy(configWith(mock.port, 5));
  });
  after(async function () {
    await proxy?.stop();
    await mock?.close();
  });

  it('120 requests/min over one HTTP/2 connection: 240 requests in 6 s, accepted within 5% of the limit, the rest 429', async function () {
    const session = await openH2Session(proxy.caPem, proxy.port);
    try {
      const { answers, elapsedS } = await paced(240, 6, 1, () => h2Request(session, chat(keys.rpmH2)));
      const accepted = answers.filter((res) => res.status === 200);
      const allowed = allowedAt120(elapsedS);
      expect(accepted.length, `accepted of ${allowed.toFixed(1)} allowed`).to.be.within(allowed * 0.95, allowed * 1.05);
      for (const res of answers.filter((r) => r.status !== 200)) expectRateLimitAnswer(res, 'requests', 120);
      // Every answer of a limited key says where it stands, accepted ones too.
      expect(accepted[0]?.headers['x-ratelimit-limit-requests']).to.equal('120');
      expect(Number(accepted[0]?.headers['x-ratelimit-remaining-requests'])).to.be.within(100, 119);
    } finally {
      session.close();
    }
  });

  it('120 requests/min over 16 HTTP/1.1 connections spread over both workers: the same limit holds', async function () {
    const agent = new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' }, connections: 16 });
    try {
      const { answers, elapsedS } = await paced(256, 6, 16, () => h1Request(agent, proxy.port, chat(keys.rpmH1)));
      const accepted = answers.filter((res) => res.status === 200).length;
      const allowed = allowedAt120(elapsedS);
      expect(accepted, `accepted of ${allowed.toFixed(1)} allowed`).to.be.within(allowed * 0.95, allowed * 1.05);
      for (const res of answers.filter((r) => r.status !== 200)) expectRateLimitAnswer(res, 'requests', 120);
      const served = proxy.logs.filter((line) => line.msg === 'request' && line.clientKey === 'rpm-h1');
      expect(new Set(served.map((line) => line.pid)).size, 'both workers served the key').to.equal(2);
      const samples = await scrapeMetrics(proxy.adminPort as number);
      expect(samples.get(`llm_proxy_rate_limited_total{route="${host}",reason="requests",client_key="rpm-h1"}`)).to.equal(256 - accepted);
    } finally {
      await agent.close();
    }
  });

  it('5,000 tokens/min with 1,000-token responses: the sixth request in the minute is refused, on either worker', async function () {
    const agent = new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' }, connections: 1 });
    const session = await openH2Session(proxy.caPem, proxy.port);
    // 10 prompt tokens and 990 generated: the mock reports 1,000 a response.
    const thousand = () => chat(keys.tpm, { 'x-mock-input-tokens': '10', 'x-mock-tokens': '990' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await h1Request(agent, proxy.port, thousand())).status);
      expect(statuses).to.deep.equal([200, 200, 200, 200, 200]);
      const sixth = await h1Request(agent, proxy.port, thousand());
      expectRateLimitAnswer(sixth, 'tokens', 5000);
      // About 12 s until a response's worth has refilled (1,000 tokens at 5,000 a minute).
      expect(Number(sixth.headers['retry-after'])).to.be.within(8, 13);
      // The bucket is the cluster's: another connection (whichever worker has it) is refused too.
      const seventh = await h2Request(session, thousand());
      expectRateLimitAnswer(seventh, 'tokens', 5000);
    } finally {
      session.close();
      await agent.close();
    }
  });

  it('requests in flight together cannot all spend the same tokens: each reserves what a request of the key costs', async function () {
    const agent = new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' }, connections: 1 });
    const thousand = (slow: boolean) => chat(keys.tpmConcurrent, { 'x-mock-input-tokens': '10', 'x-mock-tokens': '990', ...(slow ? { 'x-mock-delay-ms': '1' } : {}) }, slow);
    try {
      // One response teaches the proxy what a request of this key costs (1,000 tokens).
      expect((await h1Request(agent, proxy.port, thousand(false))).status).to.equal(200);
      const session = await openH2Session(proxy.caPem, proxy.port);
      try {
        // Eight at once on one connection (one worker), while none has ended: 4,000 tokens are left.
        const statuses = (await Promise.all(Array.from({ length: 8 }, () => h2Request(session, thousand(true))))).map((res) => res.status);
        const admitted = statuses.filter((status) => status === 200).length;
        expect(admitted, statuses.join(',')).to.be.within(3, 5);
        expect(statuses.filter((status) => status === 429).length).to.equal(8 - admitted);
      } finally {
        session.close();
      }
    } finally {
      await agent.close();
    }
  });

  it('concurrent: 2 allows two open streams, refuses the third, and admits again once one ends', async function () {
    const agent = new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' }, connections: 4 });
    const slow = () => h1Request(agent, proxy.port, chat(keys.concurrent, { 'x-mock-tokens': '20', 'x-mock-delay-ms': '75' }, true));
    try {
      const first = slow();
      const second = slow();
      await sleep(400);
      const third = await h1Request(agent, proxy.port, chat(keys.concurrent));
      expect(third.status).to.equal(429);
      expect(third.headers['x-llm-proxy-error']).to.equal('key_concurrency_limited');
      expect(Number(third.headers['retry-after'])).to.be.at.least(1);
      const [a, b] = await Promise.all([first, second]);
      expect([a.status, b.status]).to.deep.equal([200, 200]);
      expect(a.text).to.include('data: [DONE]');
      const fourth = await h1Request(agent, proxy.port, chat(keys.concurrent));
      expect(fourth.status).to.equal(200);
    } finally {
      await agent.close();
    }
  });

  it('a key without limits is not held back, and its answers carry no rate-limit headers', async function () {
    const agent = new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' }, connections: 4 });
    try {
      const answers = await Promise.all(Array.from({ length: 150 }, () => h1Request(agent, proxy.port, chat(keys.free))));
      expect(answers.every((res) => res.status === 200)).to.equal(true);
      expect(answers[0]?.headers).to.not.have.property('x-ratelimit-limit-requests');
    } finally {
      await agent.close();
    }
  });

  it('limits survive a SIGHUP when unchanged and take new values when changed', async function () {
    const agent = new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' }, connections: 1 });
    const applied = (version: number) => (line: LogLine) => line.msg === 'config applied' && line.configVersion === version;
    try {
      const first = await Promise.all(Array.from({ length: 6 }, () => h1Request(agent, proxy.port, chat(keys.reload))));
      expect(first.map((res) => res.status).sort()).to.deep.equal([200, 200, 200, 200, 200, 429]);

      await rewriteConfig(proxy.configFile, configWith(mock.port, 5));
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog(applied(2), 10_000);
      // The same limit: the spent bucket is still spent.
      expect((await h1Request(agent, proxy.port, chat(keys.reload))).status).to.equal(429);

      await rewriteConfig(proxy.configFile, configWith(mock.port, 100));
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog(applied(3), 10_000);
      // Raised from 5 to 100: the 95 more are there at once.
      const raised = await h1Request(agent, proxy.port, chat(keys.reload));
      expect(raised.status).to.equal(200);
      expect(raised.headers['x-ratelimit-limit-requests']).to.equal('100');
    } finally {
      await agent.close();
    }
  });

  it('/status shows each limited key by name with what it has left, and never a key', async function () {
    const { request } = await import('undici');
    type Status = { sharedStore: { kind: string }; rateLimits: { clientKey: string; requestsPerMinute?: { limit: number; remaining: number }; concurrent?: { limit: number; inFlight: number } }[] };
    const read = async () => {
      const res = await request(`http://127.0.0.1:${proxy.adminPort}/status`);
      const text = await res.body.text();
      const status = JSON.parse(text) as Status;
      return { text, status, byName: new Map(status.rateLimits.map((entry) => [entry.clientKey, entry])) };
    };
    let { text, status, byName } = await read();
    expect(status.sharedStore).to.deep.equal({ kind: 'memory', state: 'local' });
    expect(byName.get('rpm-h2')?.requestsPerMinute?.limit).to.equal(120);
    // Slots freed by finished requests stay with their worker as spares for a moment, then go back.
    for (const deadline = Date.now() + 5_000; byName.get('two-at-once')?.concurrent?.inFlight !== 0 && Date.now() < deadline; ) {
      await sleep(250);
      ({ text, byName } = await read());
    }
    expect(byName.get('two-at-once')?.concurrent).to.deep.equal({ limit: 2, inFlight: 0 });
    for (const key of Object.values(keys)) expect(text).to.not.include(key);
  });
});
