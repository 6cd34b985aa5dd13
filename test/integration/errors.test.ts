// Issue 2, shown 7: the proxy's own errors (502, 504, 413, 431) in provider format; upstream errors
// relayed verbatim; a stream that dies mid-way ends visibly, never as a clean end.
import { expect } from 'chai';
import { request } from 'undici';
import { deadline, h1Request, h2Request, rawH1Exchange, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { refusedPort } from '../helpers/free-port.js';
import { useProxyFixture } from '../helpers/proxy-fixture.js';

describe('errors', function () {
  const fx = useProxyFixture(async (upstream) => ({
    timeouts: { connect: 1, first_byte: 0.5, idle: 1 },
    limits: { max_body_bytes: 1024, max_header_bytes: 4096 },
    // These tests provoke upstream failures on purpose and want each one relayed; left on, the
    // breaker would take the instance out after five of them (that is tested in failover.test.ts).
    circuit_breaker: { consecutive_failures: 0 },
    providers: [
      { type: 'openai', host: 'openai.proxy.test', ...upstream, api_key: 'sk-test-errors-openai-upstream' },
      { type: 'anthropic', host: 'anthropic.proxy.test', ...upstream, api_key: 'sk-test-errors-anthropic-upstream' },
      { type: 'gemini', host: 'gemini.proxy.test', ...upstream, api_key: 'sk-test-errors-gemini-upstream' },
      // A 429 with Retry-After cools its instance: each protocol gets a route of its own to be limited.
      { type: 'openai', host: 'limited-h1.proxy.test', ...upstream, api_key: 'sk-test-errors-limited-h1-upstream' },
      { type: 'openai', host: 'limited-h2.proxy.test', ...upstream, api_key: 'sk-test-errors-limited-h2-upstream' },
      { type: 'anthropic', host: 'dead.proxy.test', endpoint: '127.0.0.1', port: await refusedPort(), tls: false, api_key: 'sk-test-errors-dead-upstream' },
    ],
  }));

  const protocols: { name: string; tag: string; send: (req: TestRequest) => Promise<TestResponse> }[] = [
    { name: 'HTTP/1.1', tag: 'h1', send: (req) => h1Request(fx.agent, fx.proxy.port, req) },
    { name: 'HTTP/2', tag: 'h2', send: (req) => h2Request(fx.session, req) },
  ];

  for (const { name, tag, send } of protocols) {
    describe(`over ${name}`, function () {
      it('an unreachable upstream is 502 in the route provider format', async function () {
        const res = await send({ host: 'dead.proxy.test', path: '/v1/messages', body: '{}' });
        expect(res.status).to.equal(502);
        expect(res.headers['x-llm-proxy-error']).to.equal('upstream_unreachable');
        expect(res.json()).to.deep.include({ type: 'error' });
      });

      it('an upstream slower than timeouts.first_byte is 504', async function () {
        const started = Date.now();
        const res = await send({ host: 'gemini.proxy.test', path: '/v1beta/models/m:generateContent', body: '{}', headers: { 'x-mock-first-byte-delay-ms': '4000' } });
        expect(res.status).to.equal(504);
        expect(res.headers['x-llm-proxy-error']).to.equal('upstream_timeout');
        expect(res.json<{ error: { status: string } }>().error.status).to.equal('DEADLINE_EXCEEDED');
        expect(Date.now() - started).to.be.lessThan(3000);
      });

      it('a body over limits.max_body_bytes is 413 and never reaches the upstream', async function () {
        const before = fx.mock.requests.length;
        const res = await send({ host: 'openai.proxy.test', path: '/v1/chat/completions', body: 'x'.repeat(2000) });
        expect(res.status).to.equal(413);
        expect(res.headers['x-llm-proxy-error']).to.equal('body_too_large');
        expect(res.json<{ error: { message: string } }>().error.message).to.match(/body/);
        expect(fx.mock.requests.length).to.equal(before);
      });

      it('a header block over limits.max_header_bytes is 431', async function () {
        const before = fx.mock.requests.length;
        const res = await send({ host: 'openai.proxy.test', path: '/v1/models', headers: { 'x-big': 'y'.repeat(6000) } });
        expect(res.status).to.equal(431);
        expect(res.headers['x-llm-proxy-error']).to.equal('headers_too_large');
        expect(res.json<{ error: { code: string } }>().error.code).to.equal('headers_too_large');
        expect(fx.mock.requests.length).to.equal(before);
      });

      for (const status of [429, 500]) {
        it(`an upstream ${status} is relayed verbatim with its headers`, async function () {
          const extra = JSON.stringify({ 'retry-after': '7', 'x-ratelimit-remaining-requests': '0', 'x-request-id': 'req_upstream_1' });
          const host = status === 429 ? `limited-${tag}.proxy.test` : 'openai.proxy.test';
          const res = await send({ host, path: '/v1/chat/completions', body: '{}', headers: { 'x-mock-status': String(status), 'x-mock-headers': extra } });
          expect(res.status).to.equal(status);
          expect(res.headers['retry-after']).to.equal('7');
          expect(res.headers['x-ratelimit-remaining-requests']).to.equal('0');
          expect(res.headers['x-request-id']).to.equal('req_upstream_1');
          expect(res.headers['x-llm-proxy-error']).to.equal(undefined);
          const sent = fx.mock.requests.at(-1)?.responseChunks.map((c) => c.bytes) ?? [];
          expect(res.body.equals(Buffer.concat(sent))).to.equal(true);
        });
      }

      it('while the only key of a route cools after that 429, the proxy answers 429 itself with the time left', async function () {
        const before = fx.mock.requests.length;
        const res = await send({ host: `limited-${tag}.proxy.test`, path: '/v1/chat/completions', body: '{}' });
        expect(res.status).to.equal(429);
        expect(res.headers['x-llm-proxy-error']).to.equal('upstream_rate_limited');
        expect(Number(res.headers['retry-after'])).to.be.within(1, 7);
        expect(res.json<{ error: { type: string } }>().error.type).to.equal('rate_limit_error');
        expect(fx.mock.requests.length).to.equal(before);
      });
    });
  }

  it('a streamed body without Content-Length over the limit is 413 (HTTP/2)', async function () {
    const before = fx.mock.requests.length;
    const res = await new Promise<number>((resolve, reject) => {
      const stream = fx.session.request({ ':method': 'POST', ':path': '/v1/chat/completions', ':authority': 'openai.proxy.test' });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.write('a'.repeat(800));
      setTimeout(() => stream.end('b'.repeat(800)), 50);
    });
    expect(res).to.equal(413);
    expect(fx.mock.requests.length).to.equal(before);
  });

  it('an oversized HTTP/1.1 head is refused with 431 and a JSON body before any routing', async function () {
    const raw = `GET /v1/models HTTP/1.1\r\nHost: openai.proxy.test\r\nX-Big: ${'z'.repeat(8000)}\r\n\r\n`;
    const response = await rawH1Exchange(fx.proxy.caPem, fx.proxy.port, raw);
    expect(response).to.match(/^HTTP\/1\.1 431 /);
    expect(response).to.include('x-llm-proxy-error: headers_too_large');
    expect(response).to.include('"code":"headers_too_large"');
  });

  describe('an upstream that dies mid-stream', function () {
    it('anthropic over HTTP/2: an `event: error` and then a stream reset, never a clean end', async function () {
      const outcome = await deadline(
        new Promise<{ data: string; error: Error | undefined }>((resolve) => {
          const stream = fx.session.request({ ':method': 'POST', ':path': '/v1/messages', ':authority': 'anthropic.proxy.test', 'x-mock-cut-after': '3' });
          let data = '';
          stream.on('data', (chunk: Buffer) => (data += chunk.toString()));
          stream.on('end', () => resolve({ data, error: undefined }));
          stream.on('error', (error) => resolve({ data, error }));
          stream.end(JSON.stringify({ model: 'claude-test', stream: true, max_tokens: 5, messages: [] }));
        }),
        5_000,
        'cut stream',
      );
      expect(outcome.data).to.include('event: message_start');
      expect(outcome.data).to.match(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
      expect(outcome.error, 'the stream ended cleanly').to.be.instanceOf(Error);
      expect(String((outcome.error as Error & { code?: string }).code)).to.equal('ERR_HTTP2_STREAM_ERROR');
    });

    it('openai over HTTP/1.1: the connection is cut, the client sees an error', async function () {
      const res = await request(`https://127.0.0.1:${fx.proxy.port}/v1/chat/completions`, {
        dispatcher: fx.agent,
        method: 'POST',
        headers: { host: 'openai.proxy.test', 'x-mock-cut-after': '2', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-test', stream: true }),
      });
      expect(res.statusCode).to.equal(200);
      let failure: unknown;
      try {
        await deadline(res.body.text(), 5_000, 'cut stream body');
      } catch (err) {
        failure = err;
      }
      expect(failure, 'the stream ended cleanly').to.be.instanceOf(Error);
    });

    it('an upstream silent for longer than timeouts.idle is cut the same way', async function () {
      const outcome = await deadline(
        new Promise<Error | undefined>((resolve) => {
          const stream = fx.session.request({ ':method': 'POST', ':path': '/v1/messages', ':authority': 'anthropic.proxy.test', 'x-mock-delay-ms': '4000', 'x-mock-tokens': '3' });
          stream.resume();
          stream.on('end', () => resolve(undefined));
          stream.on('error', resolve);
          stream.end(JSON.stringify({ model: 'claude-test', stream: true, max_tokens: 5, messages: [] }));
        }),
        6_000,
        'idle stream',
      );
      expect(outcome).to.be.instanceOf(Error);
    });
  });
});
