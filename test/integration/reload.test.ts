// SIGHUP under load: routes, weights, upstream keys, client keys and the certificate change twenty
// times while clients stream over HTTP/1.1 and HTTP/2, and none of them notices except through the
// changes themselves. Then the reloads an operator gets wrong, and the ones that move processes.
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Agent } from 'undici';
import { writeCertificates } from '../helpers/certs.js';
import { h1Request, h2Request, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { childPids, freePort, peerFingerprint, pollUntil, rewriteConfig, tcpConnect } from '../helpers/cluster-ops.js';
import { credentialsIn, startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, testCertificates, type LogLine, type ProxyProcess } from '../helpers/proxy-process.js';
import { createAgent, describeOutcomes, H2Slot, startLoad, succeeded, type Load, type Outcome, type Target } from '../helpers/traffic.js';

const stableKey = 'sk-test-reload-client-stable-0001';
const pad = (step: number) => String(step).padStart(2, '0');
const rotatingKey = (step: number) => `sk-test-reload-client-rotating-${pad(step)}`;
const addedHost = (step: number) => `added-${pad(step)}.proxy.test`;
const reloads = 20;
// The certificate is swapped to B at one reload and back to A at a later one.
const swapToB = 7;
const swapBackToA = 14;

const applied = (version: number) => (line: LogLine) => line.msg === 'config applied' && line.configVersion === version;

/** Sends SIGHUP and waits for the primary to report `version` applied by every worker. */
async function reloadTo(proxy: ProxyProcess, version: number): Promise<LogLine> {
  proxy.child.kill('SIGHUP');
  return proxy.waitForLog(applied(version), 10_000);
}

describe('reload under load', function () {
  this.timeout(60_000);
  let mockA: MockProvider;
  let mockB: MockProvider;
  let proxy: ProxyProcess;
  let certDir: string;
  let caBoth: string;
  const fingerprints = { a: '', b: '' };
  const certFiles = { a: { cert: '', key: '' }, b: { cert: '', key: '' }, live: { cert: '', key: '' } };
  let load: Load | undefined;
  let checkAgent: Agent;
  let checkSlot: H2Slot;

  function configAt(step: number): Record<string, unknown> {
    const upstream = { endpoint: '127.0.0.1', tls: false };
    const providers: Record<string, unknown>[] = [
      // Weights move between the two instances of the route the load uses.
      { type: 'openai', host: 'stable.proxy.test', ...upstream, port: mockA.port, api_key: `sk-test-reload-upstream-a-${pad(step)}`, weight: 1 + (step % 4) },
      { type: 'openai', host: 'stable.proxy.test', ...upstream, port: mockB.port, api_key: `sk-test-reload-upstream-b-${pad(step)}`, weight: 4 - (step % 4) },
    ];
    // Each reload adds a route of its own and drops the previous reload's.
    if (step > 0) providers.push({ type: 'openai', host: addedHost(step), ...upstream, port: mockA.port, api_key: `sk-test-reload-upstream-added-${pad(step)}` });
    return {
      cert_file: certFiles.live.cert,
      private_key_file: certFiles.live.key,
      auth_keys: [stableKey, rotatingKey(step)],
      timeouts: { shutdown: 5 },
      providers,
    };
  }

  const target = (): Target => ({ port: proxy.port, caPem: caBoth, host: 'stable.proxy.test', clientKey: stableKey });

  before(async function () {
    [mockA, mockB] = await Promise.all([startMockProvider(), startMockProvider()]);
    const shared = await testCertificates();
    certDir = await mkdtemp(join(tmpdir(), 'llm-proxy-reload-certs-'));
    const b = await writeCertificates(join(certDir, 'b'), { names: ['*.proxy.test', 'proxy.test'] });
    certFiles.a = { cert: shared.certFile, key: shared.keyFile };
    certFiles.b = { cert: b.certFile, key: b.keyFile };
    certFiles.live = { cert: join(certDir, 'cert.pem'), key: join(certDir, 'key.pem') };
    await copyFile(certFiles.a.cert, certFiles.live.cert);
    await copyFile(certFiles.a.key, certFiles.live.key);
    // Certificate B comes from a CA of its own: the clients trust both CAs, as they would during a CA rollover.
    caBoth = `${shared.caPem.trimEnd()}\n${await readFile(b.caFile, 'utf8')}`;
    fingerprints.a = new X509Certificate(await readFile(certFiles.a.cert)).fingerprint256;
    fingerprints.b = new X509Certificate(await readFile(certFiles.b.cert)).fingerprint256;

    proxy = await startProxy(configAt(0));
    checkAgent = createAgent(caBoth);
    checkSlot = new H2Slot(target);
    load = startLoad(target, { h1Connections: 3, h2Sessions: 2, loopsPerSession: 2, tokens: 5, delayMs: 20 });
  });

  after(async function () {
    await load?.stop();
    checkSlot?.close();
    await checkAgent?.close();
    await proxy?.stop();
    await Promise.all([mockA?.close(), mockB?.close()]);
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  const protocols: { name: string; send: (req: TestRequest) => Promise<TestResponse> }[] = [
    { name: 'h1', send: (req) => h1Request(checkAgent, proxy.port, req) },
    { name: 'h2', send: async (req) => h2Request(await checkSlot.get(), req) },
  ];

  const chat = (host: string, key: string, marker: string): TestRequest => ({
    host,
    path: '/v1/chat/completions',
    body: '{"model":"gpt-test","messages":[]}',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-reload-check': marker },
  });

  function upstreamAuthFor(marker: string): string | undefined {
    const recorded = [...mockA.requests, ...mockB.requests].find((r) => r.headers['x-reload-check'] === marker);
    return recorded === undefined ? undefined : credentialsIn(recorded)[0]?.[1];
  }

  async function swapCertificate(to: 'a' | 'b'): Promise<void> {
    await copyFile(certFiles[to].cert, certFiles.live.cert);
    await copyFile(certFiles[to].key, certFiles.live.key);
  }

  it(`applies ${reloads} reloads in order, each one visible to the very next request`, async function () {
    expect(await peerFingerprint(proxy.port, caBoth)).to.equal(fingerprints.a);
    for (let step = 1; step <= reloads; step++) {
      if (step === swapToB) await swapCertificate('b');
      if (step === swapBackToA) await swapCertificate('a');
      await rewriteConfig(proxy.configFile, configAt(step));
      const line = await reloadTo(proxy, step + 1);
      expect(line.routes, `routes at step ${step}`).to.equal(2);

      const expected = step >= swapToB && step < swapBackToA ? fingerprints.b : fingerprints.a;
      expect(await peerFingerprint(proxy.port, caBoth), `certificate of a new connection after step ${step}`).to.equal(expected);

      for (const { name, send } of protocols) {
        const at = `step ${step} ${name}`;
        const added = await send(chat(addedHost(step), stableKey, `added-${step}-${name}`));
        expect(added.status, `route added at ${at}: ${added.text}`).to.equal(200);
        expect(upstreamAuthFor(`added-${step}-${name}`), `upstream key on the added route at ${at}`).to.equal(`Bearer sk-test-reload-upstream-added-${pad(step)}`);

        const stable = await send(chat('stable.proxy.test', stableKey, `stable-${step}-${name}`));
        expect(stable.status, `stable route at ${at}`).to.equal(200);
        expect(upstreamAuthFor(`stable-${step}-${name}`), `upstream key on the stable route at ${at}`).to.be.oneOf([
          `Bearer sk-test-reload-upstream-a-${pad(step)}`,
          `Bearer sk-test-reload-upstream-b-${pad(step)}`,
        ]);

        const rotated = await send(chat('stable.proxy.test', rotatingKey(step), `rotated-${step}-${name}`));
        expect(rotated.status, `client key added at ${at}`).to.equal(200);
        if (step > 1) {
          const removed = await send(chat(addedHost(step - 1), stableKey, `removed-${step}-${name}`));
          expect(removed.status, `route removed at ${at}`).to.equal(404);
          const revoked = await send(chat('stable.proxy.test', rotatingKey(step - 1), `revoked-${step}-${name}`));
          expect(revoked.status, `client key removed at ${at}`).to.equal(401);
        }
      }
    }
    expect(proxy.logs.filter((l) => l.msg === 'config applied')).to.have.length(reloads);
    // Both instances of the weighted route took part in the load.
    expect(mockA.requests.filter((r) => r.headers['x-reload-check'] === undefined)).to.have.length.greaterThan(10);
    expect(mockB.requests.filter((r) => r.headers['x-reload-check'] === undefined)).to.have.length.greaterThan(10);
  });

  const badConfigs: { name: string; write: () => Promise<void>; reason: RegExp }[] = [
    {
      name: 'a weight of 0',
      write: async () => {
        const config = configAt(reloads);
        (config['providers'] as Record<string, unknown>[])[1]!['weight'] = 0;
        await rewriteConfig(proxy.configFile, config);
      },
      reason: /providers\[1\]\.weight: .*config\.yml:\d+:\d+/,
    },
    {
      name: 'YAML that does not parse',
      write: async () => {
        await rewriteConfig(proxy.configFile, configAt(reloads));
        const good = await readFile(proxy.configFile, 'utf8');
        // A flow map left open at the end of an otherwise valid file.
        await writeFile(proxy.configFile, `${good}log: { level: info\n`);
      },
      // The one YAML error, at the brace left open, with the line and a caret under it.
      reason: /^invalid YAML: this \{ is never closed \(no matching \}\) \(.*config\.yml:\d+:6\)\n {2}\d+ \| log: \{ level: info\n {2} +\| {6}\^$/,
    },
  ];

  for (const bad of badConfigs) {
    it(`refuses ${bad.name} with the field and line, and keeps serving the running config`, async function () {
      const failedBefore = proxy.logs.filter((l) => l.msg === 'config reload failed, keeping the running config').length;
      await bad.write();
      proxy.child.kill('SIGHUP');
      const failure = await proxy.waitForLog(
        (l) => l.msg === 'config reload failed, keeping the running config' && proxy.logs.filter((x) => x.msg === l.msg).length > failedBefore,
        10_000,
      );
      expect(String(failure.reason)).to.match(bad.reason);
      for (const { name, send } of protocols) {
        const added = await send(chat(addedHost(reloads), rotatingKey(reloads), `after-bad-${bad.name}-${name}`));
        expect(added.status, `${name}: ${added.text}`).to.equal(200);
      }
      expect(await peerFingerprint(proxy.port, caBoth)).to.equal(fingerprints.a);
      expect(proxy.logs.filter((l) => l.msg === 'config applied')).to.have.length(reloads);
    });
  }

  it('the load running through every reload saw no failed request and no cut stream', async function () {
    const running = load as Load;
    load = undefined;
    await running.stop();
    const failures = running.failures();
    expect(failures, `failed exchanges:\n${describeOutcomes(failures)}`).to.deep.equal([]);
    const completed = (protocol: 'h1' | 'h2', streaming: boolean) =>
      running.outcomes.filter((o) => o.protocol === protocol && o.streaming === streaming && succeeded(o)).length;
    for (const protocol of ['h1', 'h2'] as const) {
      expect(completed(protocol, true), `${protocol} streams`).to.be.greaterThan(20);
      expect(completed(protocol, false), `${protocol} plain requests`).to.be.greaterThan(20);
    }
  });
});

describe('reload: worker count and listen address', function () {
  this.timeout(60_000);
  const clientKey = 'sk-test-reload-client-resize-0001';
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let load: Load | undefined;

  function configWith(extra: Record<string, unknown>): Record<string, unknown> {
    return {
      auth_keys: [clientKey],
      timeouts: { shutdown: 5 },
      providers: [{ type: 'openai', host: 'resize.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-reload-upstream-resize-0001' }],
      ...extra,
    };
  }
  const targetOn = (port: number): Target => ({ port, caPem: proxy.caPem, host: 'resize.proxy.test', clientKey });

  before(async function () {
    mock = await startMockProvider();
    proxy = await startProxy(configWith({ workers: 2 }));
  });

  after(async function () {
    await load?.stop();
    await proxy?.stop();
    await mock?.close();
  });

  /** A plain exchange on a new connection, so the cluster may hand it to any worker. */
  async function freshRequest(port: number): Promise<TestResponse> {
    const agent = createAgent(proxy.caPem);
    try {
      return await h1Request(agent, port, {
        host: 'resize.proxy.test',
        path: '/v1/chat/completions',
        body: '{}',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` },
      });
    } finally {
      await agent.close();
    }
  }

  const workerCount = (n: number) =>
    pollUntil(`${n} worker processes`, 15_000, async () => {
      const pids = await childPids(proxy.child.pid as number);
      return pids.length === n ? pids : undefined;
    });

  it('workers: 2 -> 3 -> 1 forks and retires worker processes while traffic keeps flowing', async function () {
    const first = await workerCount(2);
    load = startLoad(() => targetOn(proxy.port), { h1Connections: 2, h2Sessions: 1, loopsPerSession: 2, tokens: 5, delayMs: 20 });

    await rewriteConfig(proxy.configFile, configWith({ workers: 3 }));
    const grown = await reloadTo(proxy, 2);
    expect(grown.workers).to.equal(3);
    await proxy.waitForLog((l) => l.msg === 'adding workers');
    const three = await workerCount(3);
    const added = three.find((pid) => !first.includes(pid));
    expect(added, 'a new worker pid').to.be.a('number');
    // The new worker takes its share of new connections.
    const statuses: (number | string)[] = [];
    await pollUntil('a request served by the added worker', 10_000, async () => {
      statuses.push(await freshRequest(proxy.port).then((res) => res.status, (err: Error & { code?: string }) => err.code ?? err.message));
      return proxy.logs.some((l) => l.msg === 'request' && l.pid === added) ? true : undefined;
    }, 100);
    expect(statuses.filter((status) => status !== 200)).to.deep.equal([]);

    await rewriteConfig(proxy.configFile, configWith({ workers: 1 }));
    const shrunk = await reloadTo(proxy, 3);
    expect(shrunk.workers).to.equal(1);
    await proxy.waitForLog((l) => l.msg === 'retiring workers');
    const [survivor] = await workerCount(1);
    expect(three, 'the survivor is one of the workers that were running').to.include(survivor);
    for (let i = 0; i < 5; i++) expect((await freshRequest(proxy.port)).status).to.equal(200);

    const running = load;
    load = undefined;
    await running.stop();
    // Retiring a worker has one race no server can close: a request sent on a kept-alive connection
    // in the instant the worker closes it as idle (h1 reset), or a stream opened as the GOAWAY crosses
    // it (h2 refused). Such a request never reached the upstream, so a client may safely retry it.
    // Anything the upstream saw must complete, and nothing may get an error status.
    const failures = running.failures();
    const reachedUpstream = (o: Outcome) => mock.requests.some((r) => r.headers['x-exchange-id'] === o.id);
    const lost = failures.filter((o) => o.status !== undefined || reachedUpstream(o));
    expect(lost, `failed exchanges that had reached the proxy's upstream:\n${describeOutcomes(lost)}`).to.deep.equal([]);
    expect(failures.length, `refused before forwarding:\n${describeOutcomes(failures)}`).to.be.at.most(4);
    expect(running.outcomes.filter(succeeded).length).to.be.greaterThan(40);
  });

  it('listen: moving to another port serves there and the old port stops accepting', async function () {
    const oldPort = proxy.port;
    const newPort = await freePort();
    await rewriteConfig(proxy.configFile, configWith({ workers: 2, listen: `127.0.0.1:${newPort}` }));
    proxy.child.kill('SIGHUP');
    const moved = await proxy.waitForLog((l) => l.msg === 'listening on the new address, draining the old workers', 10_000);
    expect(moved.listen).to.equal(`127.0.0.1:${newPort}`);
    await proxy.waitForLog(applied(4), 10_000);

    expect((await freshRequest(newPort)).status).to.equal(200);
    const slot = new H2Slot(() => targetOn(newPort));
    try {
      const h2 = await h2Request(await slot.get(), { host: 'resize.proxy.test', path: '/v1/models', headers: { authorization: `Bearer ${clientKey}` } });
      expect(h2.status).to.equal(200);
    } finally {
      slot.close();
    }
    await pollUntil('the old port refusing connections', 5_000, async () => ((await tcpConnect(oldPort)) === 'ECONNREFUSED' ? true : undefined));
    await workerCount(2);
    expect((await freshRequest(newPort)).status).to.equal(200);
  });
});
