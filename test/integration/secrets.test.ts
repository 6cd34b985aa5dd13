// Issue 7: secrets. Distinct keys everywhere (client keys, named and limited ones, route keys, upstream
// keys of every provider type, a health-check header), then every error path, a reload that works and
// one that fails, and health transitions; no key, nor a wrong key a client tried, may appear in
// stdout, stderr, /status, /metrics or any answer, the upstream's own error bodies included.
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { request } from 'undici';
import { rewriteConfig } from '../helpers/cluster-ops.js';
import { createH1Agent, h1Request, h2Request, openH2Session, type TestResponse } from '../helpers/clients.js';
import { refusedPort } from '../helpers/free-port.js';
import { credentialsIn, startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';

const secrets = {
  clientPlain: 'sk-test-secrets-client-plain-0001',
  clientLimited: 'sk-test-secrets-client-limited-0002',
  routeClient: 'sk-test-secrets-route-client-0003',
  openaiA: 'sk-test-secrets-upstream-openai-a-0004',
  openaiB: 'sk-test-secrets-upstream-openai-b-0005',
  anthropic: 'sk-test-secrets-upstream-anthropic-0006',
  gemini: 'sk-test-secrets-upstream-gemini-0007',
  probeToken: 'probe-token-secrets-0008',
  dead: 'sk-test-secrets-upstream-dead-0009',
  rotated: 'sk-test-secrets-upstream-rotated-0010',
  inBadConfig: 'sk-test-secrets-in-bad-config-0011',
  echoed: 'sk-test-secrets-upstream-echoed-0014',
  echoedGzip: 'sk-test-secrets-upstream-echoed-gzip-0015',
};
/** Keys clients guessed: wrong, so never configured, and they must not be echoed either. */
const guesses = ['sk-test-secrets-wrong-guess-0012', 'sk-test-secrets-wrong-query-0013'];

describe('secrets: no key in any output, answer or admin page', function () {
  this.timeout(40_000);
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let deadPort: number;
  const answers: TestResponse[] = [];

  const config = (openaiB: string) => ({
    auth_keys: [secrets.clientPlain, { key: secrets.clientLimited, name: 'limited', rate_limit: { requests_per_minute: 2 } }],
    health_check_interval: 1,
    limits: { max_body_bytes: 2048 },
    circuit_breaker: { consecutive_failures: 1, cooldown: 30 },
    providers: [
      {
        type: 'openai',
        host: 'secrets.proxy.test',
        endpoint: '127.0.0.1',
        port: mock.port,
        tls: false,
        api_keys: [{ key: secrets.openaiA }, { key: openaiB }],
        health_check: { path: '/v1/models', headers: [`X-Probe-Token: ${secrets.probeToken}`] },
      },
      { type: 'anthropic', host: 'secrets.proxy.test/claude', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: secrets.anthropic, auth_keys: [secrets.routeClient] },
      { type: 'gemini', host: 'secrets.proxy.test/gemini', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: secrets.gemini },
      { type: 'openai', host: 'dead.proxy.test', endpoint: '127.0.0.1', port: deadPort, tls: false, api_key: secrets.dead },
      { type: 'openai', host: 'echo.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: secrets.echoed },
      { type: 'openai', host: 'echo-gzip.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: secrets.echoedGzip },
    ],
  });

  before(async function () {
    mock = await startMockProvider();
    deadPort = await refusedPort();
    // Two keys are refused upstream, with an error that quotes them as OpenAI's does: the first
    // OpenAI key (its probe fails: a health transition) and the key of echo.proxy.test.
    mock.override((req) => {
      const refused = [secrets.openaiA, secrets.echoed, secrets.echoedGzip].find((key) => credentialsIn(req).some(([, value]) => value.includes(key)));
      if (refused === undefined) return undefined;
      // One of them compressed, as an upstream does for a client that accepts gzip.
      return { status: 401, gzip: refused === secrets.echoedGzip, body: { error: { message: `Incorrect API key provided: ${refused}`, type: 'invalid_request_error' } } };
    });
    proxy = await startProxy(config(secrets.openaiB), ['--enable-health-check']);
  });
  after(async function () {
    await proxy?.stop();
    await mock?.close();
  });

  it('drives every answer the proxy makes, a good and a bad reload, and health transitions', async function () {
    const agent = createH1Agent(proxy.caPem);
    const session = await openH2Session(proxy.caPem, proxy.port);
    const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
    try {
      const sends: Promise<TestResponse>[] = [
        h1Request(agent, proxy.port, { host: 'secrets.proxy.test', path: '/v1/chat/completions', body: '{}', headers: bearer(guesses[0] as string) }),
        h1Request(agent, proxy.port, { host: 'secrets.proxy.test', path: `/gemini/v1beta/models/g:generateContent?key=${guesses[1]}`, body: '{}' }),
        h1Request(agent, proxy.port, { host: 'nowhere.proxy.test', path: '/v1/models', headers: bearer(secrets.clientPlain) }),
        h1Request(agent, proxy.port, { host: 'secrets.proxy.test', path: '/v1/chat/completions', body: 'x'.repeat(4096), headers: bearer(secrets.clientPlain) }),
        h1Request(agent, proxy.port, { host: 'dead.proxy.test', path: '/v1/models', headers: bearer(secrets.clientPlain) }),
        h1Request(agent, proxy.port, { host: 'echo.proxy.test', path: '/v1/chat/completions', body: '{}', headers: bearer(secrets.clientPlain) }),
        h1Request(agent, proxy.port, { host: 'echo-gzip.proxy.test', path: '/v1/chat/completions', body: '{}', headers: { ...bearer(secrets.clientPlain), 'accept-encoding': 'gzip' } }),
        h2Request(session, { host: 'secrets.proxy.test', path: '/claude/v1/messages', body: JSON.stringify({ model: 'c', stream: true, max_tokens: 5, messages: [] }), headers: bearer(secrets.routeClient) }),
        h2Request(session, { host: 'secrets.proxy.test', path: `/gemini/v1beta/models/g:streamGenerateContent?alt=sse&key=${secrets.clientPlain}`, body: '{}' }),
      ];
      for (let i = 0; i < 6; i++) sends.push(h1Request(agent, proxy.port, { host: 'secrets.proxy.test', path: '/v1/chat/completions', body: '{}', headers: bearer(i < 4 ? secrets.clientPlain : secrets.clientLimited) }));
      for (let i = 0; i < 3; i++) sends.push(h2Request(session, { host: 'secrets.proxy.test', path: '/v1/chat/completions', body: '{}', headers: bearer(secrets.clientLimited) }));
      answers.push(...(await Promise.all(sends)));
      const statuses = new Set(answers.map((res) => res.status));
      for (const status of [200, 401, 404, 413, 429]) expect(statuses, `a ${status} among the answers`).to.include(status);
      expect([...statuses].some((status) => status === 502 || status === 503), 'a 502 or 503').to.equal(true);

      // Health: the dead upstream is taken out by its probe.
      await proxy.waitForLog((line) => line.msg === 'instance unhealthy', 5_000);

      // A reload that rotates a key, then one that fails on a YAML error next to a key.
      await rewriteConfig(proxy.configFile, config(secrets.rotated));
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog((line) => line.msg === 'config applied' && line.configVersion === 2, 10_000);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(proxy.configFile, `cert_file: x\nproviders:\n  - type: openai\n    api_key: [${secrets.inBadConfig}\n`);
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog((line) => line.msg === 'config reload failed, keeping the running config', 10_000);
      answers.push(await h1Request(agent, proxy.port, { host: 'secrets.proxy.test', path: '/v1/chat/completions', body: '{}', headers: bearer(secrets.clientPlain) }));
      await sleep(300); // access lines are written in batches
    } finally {
      session.close();
      await agent.close();
    }
  });

  it('no secret appears in stdout, stderr, /status, /metrics or a proxy-made answer', async function () {
    const admin = async (path: string) => (await (await request(`http://127.0.0.1:${proxy.adminPort}${path}`)).body.text());
    const places: Record<string, string> = {
      'proxy output': proxy.output(),
      '/status': await admin('/status'),
      '/metrics': await admin('/metrics'),
      // Relayed upstream errors too: the mock's 401 quotes the key it got, as OpenAI's does.
      answers: answers.map((res) => `${JSON.stringify(res.headers)}\n${res.text}`).join('\n'),
    };
    expect(places['proxy output']).to.include('"msg":"request"');
    expect(places.answers).to.include('unauthorized');
    expect(places.answers, 'the upstream 401 was relayed, its key masked').to.include('Incorrect API key provided: sk-...0014');
    expect(places.answers, 'the gzip-compressed 401 too, relayed decoded').to.include('Incorrect API key provided: sk-...0015');
    for (const [place, text] of Object.entries(places)) {
      for (const secret of [...Object.values(secrets), ...guesses]) {
        expect(text.includes(secret) || text.includes(encodeURIComponent(secret)), `${secret} in ${place}`).to.equal(false);
        // Nor a long piece of one (a key cut short is still most of a key).
        expect(text.includes(secret.slice(0, 20)), `the first 20 characters of ${secret} in ${place}`).to.equal(false);
      }
    }
  });
});
