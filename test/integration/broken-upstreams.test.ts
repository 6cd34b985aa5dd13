// Issue 7: upstreams that break HTTP. Each case ends in a clean 502/504 or a visibly cut stream,
// never a hung client or a dead worker; a TLS upstream whose certificate is not trusted, or names
// another host, is refused unless ca_file trusts it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { request as undiciRequest } from 'undici';
import { startBrokenUpstream, type BrokenUpstream } from '../helpers/broken-upstream.js';
import { createH1Agent, deadline, h1Request, h2Request, openH2Session } from '../helpers/clients.js';
import { createCertificates } from '../helpers/certs.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { waitUntil } from '../helpers/wait.js';

const host = 'broken.proxy.test';

describe('broken upstreams (2 workers)', function () {
  this.timeout(30_000);
  let broken: BrokenUpstream;
  let trusted: MockProvider;
  let untrusted: MockProvider;
  let wrongName: MockProvider;
  let proxy: ProxyProcess;
  let caDir: string;

  before(async function () {
    broken = await startBrokenUpstream();
    const [trustedSet, untrustedSet] = await Promise.all([createCertificates(), createCertificates()]);
    trusted = await startMockProvider({ tls: trustedSet.server });
    untrusted = await startMockProvider({ tls: untrustedSet.server });
    // Signed by the CA that ca_file trusts, but for 127.0.0.1, not the 127.0.0.2 it is reached on.
    wrongName = await startMockProvider({ tls: trustedSet.server, host: '127.0.0.2' });
    caDir = await mkdtemp(join(tmpdir(), 'llm-proxy-broken-ca-'));
    const caFile = join(caDir, 'ca.pem');
    await writeFile(caFile, trustedSet.ca.cert);
    proxy = await startProxy({
      timeouts: { idle: 1, first_byte: 5 },
      retries: { attempts: 0 },
      providers: [
        { type: 'openai', host, endpoint: '127.0.0.1', port: broken.port, tls: false },
        { type: 'openai', host: 'trusted.proxy.test', endpoint: '127.0.0.1', port: trusted.port, tls: true, ca_file: caFile },
        { type: 'openai', host: 'untrusted.proxy.test', endpoint: '127.0.0.1', port: untrusted.port, tls: true },
        { type: 'openai', host: 'untrusted-with-other-ca.proxy.test', endpoint: '127.0.0.1', port: untrusted.port, tls: true, ca_file: caFile },
        { type: 'openai', host: 'wrong-name.proxy.test', endpoint: '127.0.0.2', port: wrongName.port, tls: true, ca_file: caFile },
      ],
    });
  });
  after(async function () {
    await proxy?.stop();
    await Promise.all([broken?.close(), trusted?.close(), untrusted?.close(), wrongName?.close()]);
    if (caDir !== undefined) await rm(caDir, { recursive: true, force: true });
  });

  const get = (path: string, hostName = host) => {
    const agent = createH1Agent(proxy.caPem);
    return deadline(
      h1Request(agent, proxy.port, { host: hostName, path, headers: {} }).finally(() => agent.close()),
      10_000,
      `GET ${hostName}${path}`,
    );
  };

  for (const [breakage, code] of [
    ['close-mid-headers', 'upstream_protocol'],
    ['garbage', 'upstream_protocol'],
    ['bad-header', 'upstream_protocol'],
    ['huge-headers', 'upstream_protocol'],
  ] as const) {
    it(`${breakage}: 502 ${code} in the provider's format`, async function () {
      const res = await get(`/v1/${breakage}`);
      expect(res.status).to.equal(502);
      expect(res.headers['x-llm-proxy-error']).to.equal(code);
      expect(res.json()).to.have.nested.property('error.type', 'server_error');
    });
  }

  it('a body slower than timeouts.idle: the stream is cut visibly, not ended cleanly', async function () {
    const started = performance.now();
    const agent = createH1Agent(proxy.caPem);
    try {
      const res = await undiciRequest(`https://127.0.0.1:${proxy.port}/v1/slow-body`, { dispatcher: agent, headers: { host } });
      expect(res.statusCode).to.equal(200);
      const outcome = await res.body.text().then(
        () => 'ended cleanly',
        (err: Error) => `cut: ${err.message}`,
      );
      expect(outcome).to.match(/^cut/);
      expect(performance.now() - started).to.be.within(800, 5_000);
    } finally {
      await agent.close();
    }
    const session = await openH2Session(proxy.caPem, proxy.port);
    try {
      const h2outcome = await h2Request(session, { host, path: '/v1/slow-body' }).then(
        () => 'ended cleanly',
        (err: Error) => `cut: ${err.message}`,
      );
      expect(h2outcome).to.match(/^cut/);
    } finally {
      session.close();
    }
  });

  it('an endless body streams until the client leaves, and then the upstream connection is closed', async function () {
    const agent = createH1Agent(proxy.caPem);
    const before = broken.closedByPeer();
    try {
      const controller = new AbortController();
      const res = await undiciRequest(`https://127.0.0.1:${proxy.port}/v1/endless-body`, { dispatcher: agent, headers: { host }, signal: controller.signal });
      let received = 0;
      await new Promise<void>((resolve) => {
        res.body.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > 20_000) resolve();
        });
        res.body.on('error', () => undefined);
      });
      controller.abort();
      await waitUntil(() => broken.closedByPeer() > before, 3_000, 'the proxy closing the endless upstream');
    } finally {
      await agent.close();
    }
  });

  it('TLS upstreams: a CA from ca_file is trusted; an unknown CA or a certificate for another name is refused with 502', async function () {
    expect((await get('/v1/models', 'trusted.proxy.test')).status).to.equal(200);
    for (const refused of ['untrusted.proxy.test', 'untrusted-with-other-ca.proxy.test', 'wrong-name.proxy.test']) {
      const res = await get('/v1/models', refused);
      expect(res.status, refused).to.equal(502);
      expect(res.headers['x-llm-proxy-error'], refused).to.equal('upstream_unreachable');
    }
    expect(untrusted.requests, 'nothing reached an upstream that failed verification').to.have.length(0);
    expect(wrongName.requests).to.have.length(0);
  });

  it('no worker died on any of it', async function () {
    const res = await undiciRequest(`http://127.0.0.1:${proxy.adminPort}/status`);
    const status = (await res.body.json()) as { workers: { restarts: number } };
    expect(status.workers.restarts).to.equal(0);
    expect(proxy.logs.some((line) => line.msg === 'worker exited unexpectedly, replacing it')).to.equal(false);
  });
});
