// Issue 4, shown 2 and 3: failover to another instance of the route before any response byte
// (refused connections, retryable statuses), never after it; the circuit breaker opening, trying one
// request half-open and closing; an upstream 429 with Retry-After moving traffic to the other key.
import type { ClientHttp2Session } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import type { Agent } from 'undici';
import { createH1Agent, deadline, h1Request, h2Request, openH2Session, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { refusedPort } from '../helpers/free-port.js';
import { credentialsIn, startMockProvider, type MockProvider, type RecordedRequest } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { waitUntil } from '../helpers/wait.js';

const upstream = (mock: MockProvider) => ({ endpoint: '127.0.0.1', port: mock.port, tls: false });
const testId = (request: RecordedRequest) => request.headers['x-test-id'];
let nextId = 0;

interface Clients {
  agent: Agent;
  session: ClientHttp2Session;
}

function protocols(proxy: () => ProxyProcess, clients: Clients): { name: string; send: (req: TestRequest) => Promise<TestResponse> }[] {
  return [
    { name: 'HTTP/1.1', send: (req) => h1Request(clients.agent, proxy().port, req) },
    { name: 'HTTP/2', send: (req) => h2Request(clients.session, req) },
  ];
}

describe('failover (breaker off)', function () {
  this.timeout(20_000);
  let a: MockProvider;
  let b: MockProvider;
  let proxy: ProxyProcess;
  const clients = {} as Clients;

  before(async function () {
    a = await startMockProvider();
    b = await startMockProvider();
    const refused = { endpoint: '127.0.0.1', port: await refusedPort(), tls: false };
    proxy = await startProxy({
      circuit_breaker: { consecutive_failures: 0 },
      providers: [
        // Weighted so most first attempts hit the dead one.
        { type: 'openai', host: 'refused.proxy.test', ...refused, weight: 9, api_key: 'sk-test-failover-refused-01' },
        { type: 'openai', host: 'refused.proxy.test', ...upstream(b), weight: 1, api_key: 'sk-test-failover-alive-02' },
        { type: 'openai', host: 'flaky.proxy.test', ...upstream(a), weight: 9, api_key: 'sk-test-failover-flaky-03' },
        { type: 'openai', host: 'flaky.proxy.test', ...upstream(b), weight: 1, api_key: 'sk-test-failover-alive-04' },
        { type: 'anthropic', host: 'pair.proxy.test', ...upstream(a), api_key: 'sk-test-failover-pair-a-05' },
        { type: 'anthropic', host: 'pair.proxy.test', ...upstream(b), api_key: 'sk-test-failover-pair-b-06' },
        // No upstream key, no client keys: clients pass their own credentials through.
        { type: 'openai', host: 'passthrough.proxy.test', ...upstream(a) },
      ],
    });
    clients.agent = createH1Agent(proxy.caPem);
    clients.session = await openH2Session(proxy.caPem, proxy.port);
  });
  afterEach(function () {
    a.override(undefined);
    b.override(undefined);
  });
  after(async function () {
    clients.session?.close();
    await clients.agent?.close();
    await proxy?.stop();
    await a?.close();
    await b?.close();
  });

  for (const { name, send } of protocols(() => proxy, clients)) {
    describe(`over ${name}`, function () {
      it('an instance refusing connections: every request gets a 200 from the other, with its body intact', async function () {
        const before = b.requests.length;
        const bodies = Array.from({ length: 12 }, (_, i) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `prompt ${i} ✓` }] }));
        const results = await Promise.all(bodies.map((body) => send({ host: 'refused.proxy.test', path: '/v1/chat/completions', body })));
        expect(results.map((res) => res.status)).to.deep.equal(bodies.map(() => 200));
        const received = b.requests.slice(before).map((request) => request.body.toString('utf8'));
        expect(received).to.have.members(bodies);
      });

      it('bodies of many pieces reach both instances byte for byte, on the first attempt and on the retry', async function () {
        // About 360 kB each: through TLS some 22 pieces, joined into one buffer of the declared length.
        a.override(() => ({ status: 503 }));
        const aBefore = a.requests.length;
        const bBefore = b.requests.length;
        const bodies = Array.from({ length: 4 }, (_, i) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `${i} ✓ `.repeat(60_000) }] }));
        const results = await Promise.all(
          bodies.map((body) => send({ host: 'flaky.proxy.test', path: '/v1/chat/completions', body, headers: { 'content-length': String(Buffer.byteLength(body)) } })),
        );
        expect(results.map((res) => res.status)).to.deep.equal(bodies.map(() => 200));
        expect(b.requests.slice(bBefore).map((request) => request.body.toString('utf8'))).to.have.members(bodies);
        const firstAttempts = a.requests.slice(aBefore).map((request) => request.body.toString('utf8'));
        for (const body of firstAttempts) expect(bodies.includes(body), 'a body the refusing instance got').to.equal(true);
      });

      it('an instance answering 503: every request gets a 200 from the other', async function () {
        a.override(() => ({ status: 503 }));
        const aBefore = a.requests.length;
        const results = await Promise.all(Array.from({ length: 12 }, () => send({ host: 'flaky.proxy.test', path: '/v1/chat/completions', body: '{}' })));
        expect(results.map((res) => res.status)).to.deep.equal(results.map(() => 200));
        // Weighted 9:1 towards the failing one, so failover surely happened.
        expect(a.requests.length - aBefore).to.be.greaterThan(3);
      });
    });
  }

  it('a retry never goes to the same instance twice in a row, and when all fail the last upstream answer is relayed as it came', async function () {
    a.override(() => ({ status: 503, headers: { 'x-from': 'a' } }));
    b.override(() => ({ status: 503, headers: { 'x-from': 'b' } }));
    for (let i = 0; i < 6; i++) {
      const id = `alt-${nextId++}`;
      const res = await h1Request(clients.agent, proxy.port, { host: 'pair.proxy.test', path: '/v1/messages', body: '{}', headers: { 'x-test-id': id } });
      expect(res.status).to.equal(503);
      expect(res.headers['x-llm-proxy-error']).to.equal(undefined);
      expect(res.json<{ error: { message: string } }>().error.message).to.equal('mock override 503');
      const attempts = [...a.requests.filter((r) => testId(r) === id).map((r) => ({ at: r.arrival, from: 'a' })), ...b.requests.filter((r) => testId(r) === id).map((r) => ({ at: r.arrival, from: 'b' }))]
        .sort((x, y) => x.at - y.at)
        .map((attempt) => attempt.from);
      // retries.attempts defaults to 2: three tries in all, alternating.
      expect(attempts).to.have.length(3);
      expect(attempts[0]).to.not.equal(attempts[1]);
      expect(attempts[1]).to.not.equal(attempts[2]);
      expect(res.headers['x-from']).to.equal(attempts[2]);
    }
  });

  it('a request the upstream received before its connection broke is not sent again: 502, one attempt', async function () {
    const id = `reset-${nextId++}`;
    a.override((request) => (testId(request) === id ? { close: true } : undefined));
    b.override((request) => (testId(request) === id ? { close: true } : undefined));
    const res = await h1Request(clients.agent, proxy.port, { host: 'pair.proxy.test', path: '/v1/messages', body: '{}', headers: { 'x-test-id': id } });
    expect(res.status).to.equal(502);
    expect(res.headers['x-llm-proxy-error']).to.equal('upstream_protocol');
    expect([...a.requests, ...b.requests].filter((r) => testId(r) === id)).to.have.length(1);
  });

  it("a pass-through instance's 429 is its client's own: it does not cool the instance for others", async function () {
    const id = `limited-${nextId++}`;
    a.override((request) => (testId(request) === id ? { status: 429, headers: { 'retry-after': '30' } } : undefined));
    const limited = await h1Request(clients.agent, proxy.port, { host: 'passthrough.proxy.test', path: '/v1/chat/completions', body: '{}', headers: { 'x-test-id': id, authorization: 'Bearer client-a' } });
    expect(limited.status).to.equal(429);
    expect(limited.headers['x-llm-proxy-error']).to.equal(undefined);
    await sleep(100);
    const other = await h1Request(clients.agent, proxy.port, { host: 'passthrough.proxy.test', path: '/v1/chat/completions', body: '{}', headers: { authorization: 'Bearer client-b' } });
    expect(other.status).to.equal(200);
  });

  it('a stream that fails after its first byte is not retried: the h2 client sees a reset, never a clean end', async function () {
    const id = `cut-${nextId++}`;
    const stream = clients.session.request({ ':method': 'POST', ':path': '/v1/messages', ':authority': 'pair.proxy.test', 'x-test-id': id, 'x-mock-cut-after': '3', 'x-mock-tokens': '10' });
    stream.end(JSON.stringify({ stream: true }));
    let received = '';
    stream.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    const outcome = await deadline(
      new Promise<string>((resolve) => {
        stream.once('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
        stream.once('end', () => resolve('clean end'));
      }),
      5_000,
      'stream outcome',
    );
    expect(outcome).to.equal('ERR_HTTP2_STREAM_ERROR');
    expect(received).to.include('event: message_start');
    expect(received).to.include('event: error');
    expect([...a.requests, ...b.requests].filter((r) => testId(r) === id)).to.have.length(1);
  });

  it('the same over HTTP/1.1: the connection is cut and only one upstream attempt was made', async function () {
    const id = `cut-${nextId++}`;
    const error = await h1Request(clients.agent, proxy.port, {
      host: 'pair.proxy.test',
      path: '/v1/messages',
      body: JSON.stringify({ stream: true }),
      headers: { 'x-test-id': id, 'x-mock-cut-after': '3', 'x-mock-tokens': '10' },
    }).then(
      () => 'clean end',
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    expect(error).to.not.equal('clean end');
    expect([...a.requests, ...b.requests].filter((r) => testId(r) === id)).to.have.length(1);
  });
});

describe('circuit breaker and 429 cooling', function () {
  this.timeout(30_000);
  let a: MockProvider;
  let b: MockProvider;
  let keys: MockProvider;
  let proxy: ProxyProcess;
  let agent: Agent;
  const keyOne = 'sk-test-cooling-key-one-0001';
  const keyTwo = 'sk-test-cooling-key-two-0002';

  before(async function () {
    a = await startMockProvider();
    b = await startMockProvider();
    keys = await startMockProvider();
    proxy = await startProxy({
      circuit_breaker: { consecutive_failures: 3, cooldown: 1 },
      providers: [
        { type: 'openai', host: 'breaker.proxy.test', ...upstream(a), api_key: 'sk-test-breaker-a-0003' },
        { type: 'openai', host: 'breaker.proxy.test', ...upstream(b), api_key: 'sk-test-breaker-b-0004' },
        { type: 'openai', host: 'keys.proxy.test', ...upstream(keys), api_key: [keyOne, keyTwo] },
        { type: 'openai', host: 'revoked.proxy.test', ...upstream(keys), api_key: ['sk-test-breaker-revoked-0005', 'sk-test-breaker-valid-0006'] },
      ],
    });
    agent = createH1Agent(proxy.caPem);
  });
  after(async function () {
    await agent?.close();
    await proxy?.stop();
    await a?.close();
    await b?.close();
    await keys?.close();
  });

  const send = (host: string) => h1Request(agent, proxy.port, { host, path: '/v1/chat/completions', body: '{}' });
  /** Parallel requests over several connections, so both workers see traffic. */
  const burst = async (host: string, count: number) => (await Promise.all(Array.from({ length: count }, () => send(host)))).map((res) => res.status);
  const breakerLog = (msg: string) => proxy.logs.filter((line) => line.msg === msg && line.route === 'breaker.proxy.test');

  it('opens after the configured failures in a row: the instance gets no traffic, clients still get 200s', async function () {
    a.override(() => ({ status: 502 }));
    let statuses: number[] = [];
    while (a.requests.length < 3) statuses.push(...(await burst('breaker.proxy.test', 2)));
    await proxy.waitForLog((line) => line.msg === 'circuit opened, instance ejected' && line.route === 'breaker.proxy.test', 2_000);
    await sleep(50);
    const before = a.requests.length;
    statuses = [...statuses, ...(await burst('breaker.proxy.test', 20))];
    expect(statuses.every((status) => status === 200)).to.equal(true);
    expect(a.requests.length).to.equal(before);
    expect(breakerLog('circuit opened, instance ejected')[0]?.key).to.equal('sk-...0003');
  });

  it('half-opens after the cooldown and lets exactly one trial request through; a failed trial opens it again', async function () {
    await proxy.waitForLog((line) => line.msg === 'circuit half-open, letting one trial request through', 3_000);
    const before = a.requests.length;
    for (let i = 0; i < 6 && a.requests.length === before; i++) expect(await burst('breaker.proxy.test', 8)).to.satisfy((s: number[]) => s.every((x) => x === 200));
    await proxy.waitForLog((line) => line.msg === 'trial request failed, circuit opened again', 2_000);
    expect(a.requests.length - before).to.equal(1);
  });

  it('closes when the trial succeeds, and traffic comes back', async function () {
    a.override(undefined);
    await waitUntil(() => breakerLog('circuit half-open, letting one trial request through').length >= 2, 3_000, 'the second half-open');
    await waitUntil(async () => {
      await burst('breaker.proxy.test', 4);
      return breakerLog('circuit closed, instance back in rotation').length === 1;
    }, 5_000, 'the breaker to close');
    await sleep(50);
    const before = a.requests.length;
    expect(await burst('breaker.proxy.test', 30)).to.satisfy((s: number[]) => s.every((x) => x === 200));
    expect(a.requests.length - before).to.be.greaterThan(3);
  });

  it('an upstream key refused with 401 is ejected like a failing instance; the other key serves', async function () {
    const revoked = 'sk-test-breaker-revoked-0005';
    keys.override((request) => (credentialsIn(request)[0]?.[1] === `Bearer ${revoked}` ? { status: 401 } : undefined));
    await waitUntil(
      async () => {
        await burst('revoked.proxy.test', 4);
        return proxy.logs.some((line) => line.msg === 'circuit opened, instance ejected' && line.key === 'sk-...0005');
      },
      5_000,
      'the revoked key to be ejected',
    );
    await sleep(50);
    const statuses = await burst('revoked.proxy.test', 20);
    expect(statuses.every((status) => status === 200)).to.equal(true);
    keys.override(undefined);
  });

  it('a 429 with Retry-After: 2 moves all traffic to the other key for about 2 s', async function () {
    let limitedAt = 0;
    keys.override((request) => {
      const key = credentialsIn(request)[0]?.[1];
      if (limitedAt === 0 && key === `Bearer ${keyOne}`) {
        limitedAt = Date.now();
        return { status: 429, headers: { 'retry-after': '2' } };
      }
      return undefined;
    });
    const statuses: number[] = [];
    const started = Date.now();
    while (Date.now() - started < 4_500) {
      statuses.push(...(await burst('keys.proxy.test', 2)));
      await sleep(20);
    }
    expect(limitedAt).to.be.greaterThan(0);
    expect(statuses.every((status) => status === 200)).to.equal(true);
    // A request the other worker (or this one) sent in the same millisecond as the 429 cannot be
    // called back; from the IPC hop on, the key must be left alone.
    const settledMs = 50;
    const keyOneAfter = keys.requests
      .filter((request) => request.receivedAt > limitedAt + settledMs && credentialsIn(request)[0]?.[1] === `Bearer ${keyOne}`)
      .map((request) => request.receivedAt - limitedAt);
    const firstBack = Math.min(...keyOneAfter);
    expect(firstBack).to.be.within(1_900, 2_800);
    const keyTwoDuring = keys.requests.filter((request) => request.receivedAt > limitedAt && request.receivedAt < limitedAt + 1_900 && credentialsIn(request)[0]?.[1] === `Bearer ${keyTwo}`);
    expect(keyTwoDuring.length).to.be.greaterThan(10);
    expect(proxy.logs.some((line) => line.msg === 'upstream rate limit, instance cooling' && line.key === 'sk-...0001')).to.equal(true);
  });
});
