// Issue 2, shown 1: the upstream sees exactly one credential, the upstream key, never the client's;
// Host is the endpoint; method, path, query, other headers and body arrive byte for byte.
import { expect } from 'chai';
import { h1Request, h2Request, rawH1Exchange, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { credentialsIn, type RecordedRequest } from '../helpers/mock-provider.js';
import { useProxyFixture } from '../helpers/proxy-fixture.js';

const clientKey = 'client-test-keyswap-0001';
const upstreamKeys = {
  openai: 'sk-test-keyswap-openai-upstream-0001',
  anthropic: 'sk-ant-test-keyswap-upstream-0001',
  gemini: 'gm-test-keyswap-gemini-upstream-0001',
};
// Not valid UTF-8, and a CR LF inside: a body that any re-encoding would change.
const body = Buffer.concat([Buffer.from('{"model":"m","messages":[]}\r\n'), Buffer.from([0xff, 0xfe, 0x00, 0x80])]);

describe('key swap and byte-for-byte forwarding', function () {
  const fx = useProxyFixture((upstream) => ({
    auth_keys: [clientKey],
    providers: [
      { type: 'openai', host: 'openai.proxy.test', ...upstream, api_key: upstreamKeys.openai },
      { type: 'anthropic', host: 'anthropic.proxy.test', ...upstream, api_key: upstreamKeys.anthropic },
      { type: 'gemini', host: 'gemini.proxy.test', ...upstream, api_key: upstreamKeys.gemini },
    ],
  }));

  const protocols: { name: string; send: (req: TestRequest) => Promise<TestResponse> }[] = [
    { name: 'HTTP/1.1', send: (req) => h1Request(fx.agent, fx.proxy.port, req) },
    { name: 'HTTP/2', send: (req) => h2Request(fx.session, req) },
  ];

  function lastUpstreamRequest(): RecordedRequest {
    const last = fx.mock.requests.at(-1);
    if (!last) throw new Error('the upstream was never contacted');
    return last;
  }


  function expectForwardedIntact(recorded: RecordedRequest, target: string): void {
    expect(recorded.method).to.equal('POST');
    expect(recorded.target).to.equal(target);
    expect(recorded.body.equals(body)).to.equal(true, 'body changed on the way');
    expect(recorded.headers.host).to.equal(`127.0.0.1:${fx.mock.port}`);
    expect(recorded.headers['x-custom-header']).to.equal('Some Value; with=params');
    expect(recorded.headers['content-type']).to.equal('application/octet-stream');
    expect(JSON.stringify(recorded.rawHeaders)).not.to.include(clientKey);
    expect(recorded.target).not.to.include(clientKey);
  }

  for (const { name, send } of protocols) {
    describe(`over ${name}`, function () {
      const common = { 'x-custom-header': 'Some Value; with=params', 'content-type': 'application/octet-stream' };

      it('openai: Authorization: Bearer <client key> becomes the upstream key', async function () {
        const target = '/v1/chat/completions?api-version=2024-01-01&x=%20a%2Fb';
        const res = await send({ host: 'openai.proxy.test', path: target, body, headers: { ...common, authorization: `Bearer ${clientKey}` } });
        expect(res.status).to.equal(200);
        const recorded = lastUpstreamRequest();
        expectForwardedIntact(recorded, target);
        expect(credentialsIn(recorded)).to.deep.equal([['authorization', `Bearer ${upstreamKeys.openai}`]]);
      });

      it('anthropic: x-api-key becomes the upstream key', async function () {
        const target = '/v1/messages?beta=true';
        const res = await send({ host: 'anthropic.proxy.test', path: target, body, headers: { ...common, 'x-api-key': clientKey, 'anthropic-version': '2023-06-01' } });
        expect(res.status).to.equal(200);
        const recorded = lastUpstreamRequest();
        expectForwardedIntact(recorded, target);
        expect(recorded.headers['anthropic-version']).to.equal('2023-06-01');
        expect(credentialsIn(recorded)).to.deep.equal([['x-api-key', upstreamKeys.anthropic]]);
      });

      it('anthropic: Authorization: Bearer (current SDKs) is stripped and replaced the same way', async function () {
        const res = await send({ host: 'anthropic.proxy.test', path: '/v1/messages', body, headers: { ...common, authorization: `Bearer ${clientKey}` } });
        expect(res.status).to.equal(200);
        expect(credentialsIn(lastUpstreamRequest())).to.deep.equal([['x-api-key', upstreamKeys.anthropic]]);
      });

      it('gemini: x-goog-api-key becomes the upstream key', async function () {
        const target = '/v1beta/models/gemini-pro:generateContent?alt=sse';
        const res = await send({ host: 'gemini.proxy.test', path: target, body, headers: { ...common, 'x-goog-api-key': clientKey } });
        expect(res.status).to.equal(200);
        const recorded = lastUpstreamRequest();
        expectForwardedIntact(recorded, target);
        expect(credentialsIn(recorded)).to.deep.equal([['x-goog-api-key', upstreamKeys.gemini]]);
      });

      it('gemini: ?key=<client key> is rewritten to the upstream key, the rest of the query untouched', async function () {
        const res = await send({ host: 'gemini.proxy.test', path: `/v1beta/models/gemini-pro:streamGenerateContent?alt=sse&key=${clientKey}&z=1`, body, headers: common });
        expect(res.status).to.equal(200);
        const recorded = lastUpstreamRequest();
        expectForwardedIntact(recorded, `/v1beta/models/gemini-pro:streamGenerateContent?alt=sse&key=${upstreamKeys.gemini}&z=1`);
        expect(credentialsIn(recorded)).to.deep.equal([['x-goog-api-key', upstreamKeys.gemini]]);
      });

      it('the client Host and HTTP/2-forbidden headers do not reach the upstream', async function () {
        const res = await send({ host: 'OpenAI.Proxy.Test:443', path: '/v1/models', headers: { authorization: `Bearer ${clientKey}` } });
        expect(res.status).to.equal(200);
        const recorded = lastUpstreamRequest();
        expect(recorded.headers.host).to.equal(`127.0.0.1:${fx.mock.port}`);
        expect(recorded.method).to.equal('GET');
      });
    });
  }

  it('HTTP/1.1 hop-by-hop headers, and headers the Connection header names, are not forwarded', async function () {
    const raw =
      'GET /v1/models HTTP/1.1\r\nHost: openai.proxy.test\r\n' +
      `Authorization: Bearer ${clientKey}\r\nConnection: close, X-Private-Hop\r\nX-Private-Hop: secret\r\n` +
      'Keep-Alive: timeout=5\r\nProxy-Authorization: Basic abc\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n';
    const response = await rawH1Exchange(fx.proxy.caPem, fx.proxy.port, raw);
    expect(response).to.match(/^HTTP\/1\.1 200 /);
    const recorded = lastUpstreamRequest();
    for (const name of ['x-private-hop', 'keep-alive', 'proxy-authorization', 'te']) expect(recorded.headers[name], name).to.equal(undefined);
    expect(recorded.headers['x-kept']).to.equal('yes');
  });
});
