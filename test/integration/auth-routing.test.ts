// Issue 2, shown 2-4: client auth, routing by host and prefix, weighted key choice.
import { expect } from 'chai';
import type { Agent } from 'undici';
import { createH1Agent, h1Request, h2Request, type TestResponse } from '../helpers/clients.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { useProxyFixture } from '../helpers/proxy-fixture.js';

const globalKey = 'client-test-auth-global-0001';
const scopedKey = 'client-test-auth-scoped-0001';

describe('auth, routing and weights', function () {
  const fx = useProxyFixture((upstream) => ({
    auth_keys: [globalKey],
    providers: [
      { type: 'openai', host: 'openai.proxy.test', ...upstream, api_key: 'sk-test-route-openai-000001' },
      { type: 'anthropic', host: 'anthropic.proxy.test', ...upstream, api_key: 'sk-test-route-anthropic-0001' },
      { type: 'gemini', host: 'gemini.proxy.test', ...upstream, api_key: 'sk-test-route-gemini-000001' },
      { type: 'openai', host: 'scoped.proxy.test', ...upstream, api_key: 'sk-test-route-scoped-000001', auth_keys: [scopedKey] },
      { type: 'openai', host: 'prefix.proxy.test', ...upstream, api_key: 'sk-test-route-hostonly-0001' },
      { type: 'openai', host: 'prefix.proxy.test/openai', ...upstream, api_key: 'sk-test-route-prefix-00001' },
      { type: 'openai', host: 'prefix.proxy.test/openai/v2/', ...upstream, api_key: 'sk-test-route-longer-00001' },
      { type: 'openai', host: 'onlyprefix.proxy.test/openai', ...upstream, api_key: 'sk-test-route-onlypfx-0001' },
      {
        type: 'openai',
        host: 'weights.proxy.test',
        ...upstream,
        api_keys: [
          { key: 'sk-test-weight-one-000001', weight: 1 },
          { key: 'sk-test-weight-three-0001', weight: 3 },
        ],
      },
    ],
  }));

  function upstreamKeySeen(): string | undefined {
    const last = fx.mock.requests.at(-1);
    const auth = last?.headers.authorization;
    return typeof auth === 'string' ? auth.replace('Bearer ', '') : undefined;
  }

  async function get(host: string, path: string, headers: Record<string, string> = { authorization: `Bearer ${globalKey}` }): Promise<TestResponse> {
    return h2Request(fx.session, { host, path, headers });
  }

  describe('client keys', function () {
    const cases = [
      { type: 'openai', host: 'openai.proxy.test', path: '/v1/chat/completions', header: 'authorization', check: (body: any) => expect(body.error.message).to.be.a('string') },
      { type: 'anthropic', host: 'anthropic.proxy.test', path: '/v1/messages', header: 'x-api-key', check: (body: any) => expect(body).to.include({ type: 'error' }) && expect(body.error.type).to.equal('authentication_error') },
      { type: 'gemini', host: 'gemini.proxy.test', path: '/v1beta/models/m:generateContent', header: 'x-goog-api-key', check: (body: any) => expect(body.error.status).to.equal('UNAUTHENTICATED') },
    ];
    for (const { type, host, path, header, check } of cases) {
      it(`${type}: a missing key is 401 in ${type}'s error format and the upstream is never contacted`, async function () {
        const before = fx.mock.requests.length;
        const res = await h1Request(fx.agent, fx.proxy.port, { host, path, body: '{}' });
        expect(res.status).to.equal(401);
        expect(res.headers['x-llm-proxy-error']).to.equal('unauthorized');
        expect(res.headers['content-type']).to.equal('application/json');
        check(res.json());
        expect(fx.mock.requests.length).to.equal(before);
      });

      it(`${type}: a wrong key is 401 and the upstream is never contacted`, async function () {
        const before = fx.mock.requests.length;
        const res = await h2Request(fx.session, { host, path, body: '{}', headers: { [header]: 'client-test-wrong-key-0001' } });
        expect(res.status).to.equal(401);
        check(res.json());
        expect(fx.mock.requests.length).to.equal(before);
      });

      it(`${type}: the right key is let through`, async function () {
        const value = header === 'authorization' ? `Bearer ${globalKey}` : globalKey;
        const res = await h2Request(fx.session, { host, path, body: '{}', headers: { [header]: value } });
        expect(res.status).to.equal(200);
      });
    }

    it('openai: "Bearer " is optional', async function () {
      const res = await get('openai.proxy.test', '/v1/models', { authorization: globalKey });
      expect(res.status).to.equal(200);
      expect(upstreamKeySeen()).to.equal('sk-test-route-openai-000001');
    });

    it('a key that only differs in one character is refused', async function () {
      const res = await get('openai.proxy.test', '/v1/models', { authorization: `Bearer ${globalKey.slice(0, -1)}2` });
      expect(res.status).to.equal(401);
    });

    it('a per-route key opens its route, and the global key works there too', async function () {
      expect((await get('scoped.proxy.test', '/v1/models', { authorization: `Bearer ${scopedKey}` })).status).to.equal(200);
      expect(upstreamKeySeen()).to.equal('sk-test-route-scoped-000001');
      expect((await get('scoped.proxy.test', '/v1/models')).status).to.equal(200);
    });

    it('a per-route key does not open another route', async function () {
      const res = await get('openai.proxy.test', '/v1/models', { authorization: `Bearer ${scopedKey}` });
      expect(res.status).to.equal(401);
    });
  });

  describe('routing', function () {
    it('an unknown host is 404 with a JSON body', async function () {
      const res = await get('unknown.proxy.test', '/v1/models');
      expect(res.status).to.equal(404);
      expect(res.headers['x-llm-proxy-error']).to.equal('no_route');
      expect(res.json<{ error: { message: string } }>().error.message).to.match(/no route/i);
    });

    it('a path prefix routes and is stripped before forwarding', async function () {
      expect((await get('prefix.proxy.test', '/openai/v1/models?x=1')).status).to.equal(200);
      expect(upstreamKeySeen()).to.equal('sk-test-route-prefix-00001');
      expect(fx.mock.requests.at(-1)?.target).to.equal('/v1/models?x=1');
    });

    it('the bare prefix is forwarded as /', async function () {
      await get('prefix.proxy.test', '/openai?a=b');
      expect(fx.mock.requests.at(-1)?.target).to.equal('/?a=b');
      expect(upstreamKeySeen()).to.equal('sk-test-route-prefix-00001');
    });

    it('prefixes match on segment boundaries: /openai2 is not /openai', async function () {
      await get('prefix.proxy.test', '/openai2/v1/models');
      expect(upstreamKeySeen()).to.equal('sk-test-route-hostonly-0001');
      expect(fx.mock.requests.at(-1)?.target).to.equal('/openai2/v1/models');
      const res = await get('onlyprefix.proxy.test', '/openai2/v1/models');
      expect(res.status).to.equal(404);
    });

    it('the longest matching prefix wins', async function () {
      await get('prefix.proxy.test', '/openai/v2/chat');
      expect(upstreamKeySeen()).to.equal('sk-test-route-longer-00001');
      expect(fx.mock.requests.at(-1)?.target).to.equal('/chat');
      await get('prefix.proxy.test', '/openai/v3/chat');
      expect(upstreamKeySeen()).to.equal('sk-test-route-prefix-00001');
    });

    it('a Host with a port and in upper case still routes, over HTTP/1.1 and HTTP/2', async function () {
      const h2 = await get('OPENAI.Proxy.TEST:8443', '/v1/models');
      expect(h2.status).to.equal(200);
      const h1 = await h1Request(fx.agent, fx.proxy.port, { host: 'OpenAI.PROXY.test:443', path: '/v1/models', headers: { authorization: `Bearer ${globalKey}` } });
      expect(h1.status).to.equal(200);
      expect(upstreamKeySeen()).to.equal('sk-test-route-openai-000001');
    });
  });

  describe('weights', function () {
    it('keys weighted 1:3 split 25/75 within ±4 points over 2,000 requests', async function () {
      this.timeout(60_000);
      const before = fx.mock.requests.length;
      const total = 2000;
      let sent = 0;
      const lane = async () => {
        while (sent < total) {
          sent += 1;
          const res = await get('weights.proxy.test', '/v1/models');
          expect(res.status).to.equal(200);
        }
      };
      await Promise.all(Array.from({ length: 32 }, lane));
      const seen = fx.mock.requests.slice(before).map((r) => r.headers.authorization);
      expect(seen.length).to.equal(total);
      const heavy = seen.filter((auth) => auth === 'Bearer sk-test-weight-three-0001').length;
      const light = seen.filter((auth) => auth === 'Bearer sk-test-weight-one-000001').length;
      expect(heavy + light).to.equal(total);
      expect((heavy / total) * 100).to.be.within(71, 79);
    });
  });
});

describe('a config without any client keys', function () {
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let agent: Agent;

  before(async function () {
    mock = await startMockProvider();
    proxy = await startProxy({
      providers: [{ type: 'anthropic', host: 'open.proxy.test', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-open-upstream-0001' }],
    });
    agent = createH1Agent(proxy.caPem);
  });

  after(async function () {
    await agent?.close();
    await proxy?.stop();
    await mock?.close();
  });

  it('is open: any request passes and still gets the upstream key', async function () {
    const res = await h1Request(agent, proxy.port, { host: 'open.proxy.test', path: '/v1/messages', body: '{}' });
    expect(res.status).to.equal(200);
    expect(mock.requests.at(-1)?.headers['x-api-key']).to.equal('sk-test-open-upstream-0001');
  });
});
