// Issue 14, part 2: tokens_per_minute cannot be bypassed. A response that reports no usage (an OpenAI
// stream without stream_options.include_usage, as the SDKs send by default) is charged an estimate
// from its prompt and the text it relayed, a stream cut short is charged what it relayed, and what a
// request reserves before it is sent comes from its declared max_tokens (rules: src/shared/usage/estimate.ts).
import type { ClientHttp2Session } from 'node:http2';
import { constants as h2constants } from 'node:http2';
import { expect } from 'chai';
import { Agent } from 'undici';
import { deadline, h1Request, h2Request, openH2Session, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';
import { waitUntil } from '../helpers/wait.js';

const host = 'token-limits.proxy.test';
const keys = {
  noUsage: 'sk-test-tpm-no-usage-0001',
  declared: 'sk-test-tpm-declared-0002',
  upstreamCut: 'sk-test-tpm-upstream-cut-0003',
  clientCut: 'sk-test-tpm-client-cut-0004',
};

const chat = (key: string, body: Record<string, unknown>, mockHeaders: Record<string, string>): TestRequest => ({
  host,
  path: '/v1/chat/completions',
  body: JSON.stringify({ model: 'tpm-model', stream: true, messages: [{ role: 'user', content: 'Write a long story.' }], ...body }),
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...mockHeaders },
});

function expectTokensRefusal(res: TestResponse): void {
  expect(res.status, res.text).to.equal(429);
  expect(res.headers['x-llm-proxy-error']).to.equal('key_tokens_limited');
  expect(Number(res.headers['retry-after'])).to.be.at.least(1);
  expect(res.headers['x-ratelimit-limit-tokens']).to.equal('1000');
}

/** An HTTP/2 stream read until it ends, is reset by the proxy, or (`stopAfter`) the client cancels it. */
function h2Partial(session: ClientHttp2Session, req: TestRequest, stopAfter = Infinity): Promise<{ status: number; bytes: number; reset: boolean }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': req.path, ':authority': req.host ?? 'localhost', ...req.headers });
    let status = 0;
    let bytes = 0;
    const done = (reset: boolean) => resolve({ status, bytes, reset });
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes >= stopAfter && !stream.closed) {
        stream.close(h2constants.NGHTTP2_CANCEL);
        done(true);
      }
    });
    stream.on('end', () => done(false));
    stream.on('error', () => done(true));
    stream.end(req.body);
  });
}

describe('tokens per minute without reported usage (2 workers)', function () {
  this.timeout(60_000);
  let mock: MockProvider;
  let proxy: ProxyProcess;

  before(async function () {
    mock = await startMockProvider();
    proxy = await startProxy({
      auth_keys: Object.entries(keys).map(([name, key]) => ({ key, name, rate_limit: { tokens_per_minute: 1000 } })),
      providers: [{ type: 'openai', host, endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: 'sk-test-tpm-upstream-0005' }],
    });
  });
  after(async function () {
    await proxy?.stop();
    await mock?.close();
  });

  it('ten long OpenAI streams in a row without include_usage, under 1,000 tokens/min: only the first few are admitted, the rest get 429 with Retry-After', async function () {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      // A new connection each time, so the streams land on both workers.
      const agent = new Agent({ connect: { ca: proxy.caPem, servername: 'localhost' } });
      try {
        // 300 generated tokens of about 7 bytes each: an estimate of about 500 tokens a stream.
        const res = await h1Request(agent, proxy.port, chat(keys.noUsage, {}, { 'x-mock-tokens': '300', 'x-mock-delay-ms': '1' }));
        statuses.push(res.status);
        if (res.status === 200) {
          expect(res.text).to.include('data: [DONE]');
          expect(res.text, 'the upstream reported no usage').to.not.include('"usage"');
        } else {
          expectTokensRefusal(res);
        }
      } finally {
        await agent.close();
      }
    }
    const admitted = statuses.filter((status) => status === 200).length;
    expect(statuses[0]).to.equal(200);
    expect(admitted, statuses.join(',')).to.be.within(1, 3);
    expect(statuses.filter((status) => status === 429)).to.have.length(10 - admitted);
  });

  it('max_tokens 5,000 on a 1,000 tokens/min key reserves the whole minute: admitted on a full bucket, nothing else while it runs, and settled to its usage', async function () {
    const session = await openH2Session(proxy.caPem, proxy.port);
    try {
      const upstreamBefore = mock.requests.length;
      // Reports its usage (10 prompt + 20 generated) at the end, about 2 s from now.
      const long = h2Request(session, chat(keys.declared, { max_tokens: 5000, stream_options: { include_usage: true } }, { 'x-mock-tokens': '20', 'x-mock-delay-ms': '100' }));
      await waitUntil(() => mock.requests.length > upstreamBefore, 5_000, 'the 5,000 max_tokens stream reaching the upstream');
      const small = { max_tokens: 10, stream_options: { include_usage: true } };
      const meanwhile = await h2Request(session, chat(keys.declared, small, { 'x-mock-tokens': '5' }));
      expectTokensRefusal(meanwhile);
      // The bucket holds no more than the limit, so the big one reserved all of it.
      expect(Number(meanwhile.headers['x-ratelimit-remaining-tokens'])).to.be.below(100);
      const first = await deadline(long, 10_000, 'the 5,000 max_tokens stream');
      expect(first.status).to.equal(200);
      // It used 30 tokens: the rest of its reservation is back, and a small request goes through.
      const after = await h2Request(session, chat(keys.declared, small, { 'x-mock-tokens': '5' }));
      expect(after.status, after.text).to.equal(200);
    } finally {
      session.close();
    }
  });

  it('a stream the upstream cuts is charged what it relayed (it is not refunded): the next request is refused', async function () {
    const session = await openH2Session(proxy.caPem, proxy.port);
    try {
      // 800 chunks of about 7 bytes of text relayed: more than a minute's 1,000 tokens by the estimate.
      const cut = await h2Partial(session, chat(keys.upstreamCut, {}, { 'x-mock-tokens': '1000', 'x-mock-cut-after': '800' }));
      expect(cut).to.include({ status: 200, reset: true });
      // Charged when its access line is written.
      await proxy.waitForLog((entry) => entry.msg === 'request' && entry.clientKey === 'upstreamCut' && entry.code === 'UC', 10_000);
      expectTokensRefusal(await h2Request(session, chat(keys.upstreamCut, { max_tokens: 10 }, { 'x-mock-tokens': '5' })));
    } finally {
      session.close();
    }
  });

  it('a stream the client leaves is charged what it relayed: the next request is refused', async function () {
    const session = await openH2Session(proxy.caPem, proxy.port);
    try {
      // A chunk is about 200 bytes for 7 bytes of text: 150 KB carry more than 1,000 tokens of text.
      const left = await h2Partial(session, chat(keys.clientCut, {}, { 'x-mock-tokens': '5000', 'x-mock-delay-ms': '1' }), 150_000);
      expect(left).to.include({ status: 200, reset: true });
      await proxy.waitForLog((entry) => entry.msg === 'request' && entry.clientKey === 'clientCut' && entry.code === 'DC', 10_000);
      expectTokensRefusal(await h2Request(session, chat(keys.clientCut, { max_tokens: 10 }, { 'x-mock-tokens': '5' })));
    } finally {
      session.close();
    }
  });
});
