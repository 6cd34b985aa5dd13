// Issue 4, shown 1: active health checks run by the primary. One instance's health endpoint fails:
// after one interval all traffic goes to the other; both failing gives 503 with Retry-After; recovery
// brings traffic back within an interval; probes per interval equal the instance count, not that
// times the worker count.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from 'undici';
import { createH1Agent, h1Request } from '../helpers/clients.js';
import { refusedPort } from '../helpers/free-port.js';
import { credentialsIn, startMockProvider, type MockProvider, type RecordedRequest } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { waitUntil } from '../helpers/wait.js';

const intervalS = 0.5;
const keyA = 'sk-test-health-upstream-a-0001';
const keyB = 'sk-test-health-upstream-b-0002';
const clientKey = 'sk-test-health-client-0003';

const isProbe = (request: RecordedRequest) => request.method === 'GET' && request.target === '/v1/models';
const traffic = (mock: MockProvider) => mock.requests.filter((request) => !isProbe(request)).length;
const failHealth = (mock: MockProvider) => mock.override((request) => (isProbe(request) ? { status: 503 } : undefined));

describe('active health checks (--enable-health-check, 2 workers)', function () {
  this.timeout(30_000);
  let a: MockProvider;
  let b: MockProvider;
  let proxy: ProxyProcess;
  let agent: Agent;

  before(async function () {
    a = await startMockProvider();
    b = await startMockProvider();
    const healthCheck = { path: '/v1/models', timeout: 1 };
    proxy = await startProxy(
      {
        auth_keys: [clientKey],
        health_check_interval: intervalS,
        // Only active checks are under test here.
        circuit_breaker: { consecutive_failures: 0 },
        providers: [
          { type: 'openai', host: 'pair.proxy.test', endpoint: '127.0.0.1', port: a.port, tls: false, api_key: keyA, health_check: healthCheck },
          { type: 'openai', host: 'pair.proxy.test', endpoint: '127.0.0.1', port: b.port, tls: false, api_key: keyB, health_check: healthCheck },
          { type: 'anthropic', host: 'down.proxy.test', endpoint: '127.0.0.1', port: await refusedPort(), tls: false, api_key: 'sk-test-health-down-0004' },
        ],
      },
      ['--enable-health-check'],
    );
    agent = createH1Agent(proxy.caPem);
  });
  after(async function () {
    await agent?.close();
    await proxy?.stop();
    await a?.close();
    await b?.close();
  });

  const send = (host = 'pair.proxy.test') =>
    h1Request(agent, proxy.port, { host, path: '/v1/chat/completions', body: '{}', headers: { authorization: `Bearer ${clientKey}` } });
  const sendMany = async (count: number) => {
    const statuses: number[] = [];
    for (let i = 0; i < count; i += 4) statuses.push(...(await Promise.all([send(), send(), send(), send()])).map((res) => res.status));
    return statuses;
  };

  it('probes each instance with its own upstream key, as the provider type carries it', async function () {
    await waitUntil(() => a.requests.some(isProbe) && b.requests.some(isProbe), 3_000, 'a first probe of each instance');
    const probeA = a.requests.find(isProbe);
    const probeB = b.requests.find(isProbe);
    expect(probeA && credentialsIn(probeA)).to.deep.equal([['authorization', `Bearer ${keyA}`]]);
    expect(probeB && credentialsIn(probeB)).to.deep.equal([['authorization', `Bearer ${keyB}`]]);
  });

  it('probes once per instance per interval, whatever the worker count', async function () {
    a.reset();
    b.reset();
    const windowS = 2.5;
    await sleep(windowS * 1000);
    const rounds = windowS / intervalS;
    // Two workers probing on their own would double this.
    for (const mock of [a, b]) expect(mock.requests.filter(isProbe).length).to.be.within(rounds - 1, rounds + 1);
  });

  it('after one interval of failing probes, all traffic goes to the healthy instance, and the change is logged once', async function () {
    failHealth(a);
    const failed = Date.now();
    await proxy.waitForLog((line) => line.msg === 'instance unhealthy' && line.key === 'sk-...0001', 3 * intervalS * 1000 + 1000);
    expect(Date.now() - failed).to.be.below(intervalS * 1000 + 700);
    // The workers hear of it over IPC right after the primary logs it.
    await sleep(50);
    const aBefore = traffic(a);
    const bBefore = traffic(b);
    const statuses = await sendMany(40);
    expect(statuses.every((status) => status === 200)).to.equal(true);
    expect(traffic(a) - aBefore).to.equal(0);
    expect(traffic(b) - bBefore).to.equal(40);
    await sleep(3 * intervalS * 1000);
    const lines = proxy.logs.filter((line) => line.msg === 'instance unhealthy' && line.route === 'pair.proxy.test');
    expect(lines).to.have.length(1);
    expect(lines[0]?.key).to.equal('sk-...0001');
    expect(lines[0]?.error).to.equal('status 503');
  });

  it('with both failing, requests get 503 in the provider format with Retry-After, and nothing is sent upstream', async function () {
    failHealth(b);
    await proxy.waitForLog((line) => line.msg === 'instance unhealthy' && line.key === 'sk-...0002', 3 * intervalS * 1000 + 1000);
    const before = traffic(a) + traffic(b);
    const res = await send();
    expect(res.status).to.equal(503);
    expect(res.headers['x-llm-proxy-error']).to.equal('no_healthy_upstream');
    expect(Number(res.headers['retry-after'])).to.be.at.least(1);
    expect(res.json<{ error: { type: string; code: string } }>().error).to.include({ type: 'server_error', code: 'no_healthy_upstream' });
    expect(traffic(a) + traffic(b)).to.equal(before);
  });

  it('recovery brings traffic back within one interval', async function () {
    a.override(undefined);
    b.override(undefined);
    const recovered = Date.now();
    await proxy.waitForLog((line) => line.msg === 'instance healthy' && line.key === 'sk-...0001', 3_000);
    await proxy.waitForLog((line) => line.msg === 'instance healthy' && line.key === 'sk-...0002', 3_000);
    // A probe round every interval, plus the IPC hop to the workers.
    expect(Date.now() - recovered).to.be.below(intervalS * 1000 + 700);
    await sleep(100);
    const aBefore = traffic(a);
    const bBefore = traffic(b);
    const statuses = await sendMany(40);
    expect(statuses.every((status) => status === 200)).to.equal(true);
    expect(traffic(a) - aBefore).to.be.greaterThan(0);
    expect(traffic(b) - bBefore).to.be.greaterThan(0);
  });

  it('an instance without health_check gets a connect check: a refused port marks it down, answered 503 in its format', async function () {
    await proxy.waitForLog((line) => line.msg === 'instance unhealthy' && line.route === 'down.proxy.test', 3_000);
    const down = proxy.logs.find((line) => line.msg === 'instance unhealthy' && line.route === 'down.proxy.test');
    expect(down?.error).to.equal('ECONNREFUSED');
    const res = await send('down.proxy.test');
    expect(res.status).to.equal(503);
    expect(res.json<{ type: string; error: { type: string } }>()).to.deep.include({ type: 'error' });
    expect(res.json<{ error: { type: string } }>().error.type).to.equal('overloaded_error');
  });
});
