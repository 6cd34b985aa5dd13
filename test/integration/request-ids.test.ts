// Issue 16: every response carries x-llm-proxy-request-id, and it is the reqId of that request's
// access-log line: a success, a stream, the proxy's own errors and a relayed upstream error, over
// HTTP/1.1 and HTTP/2. A client's own x-request-id still goes upstream unchanged.
import { expect } from 'chai';
import { h1Request, h2Request, rawH1Exchange, type TestRequest, type TestResponse } from '../helpers/clients.js';
import { refusedPort } from '../helpers/free-port.js';
import { useProxyFixture } from '../helpers/proxy-fixture.js';
import type { LogLine } from '../helpers/proxy-process.js';

const clientKey = 'sk-test-request-ids-client-0001';

describe('request ids', function () {
  const fx = useProxyFixture(async (upstream) => ({
    limits: { max_body_bytes: 4096 },
    circuit_breaker: { consecutive_failures: 0 },
    providers: [
      { type: 'openai', host: 'ids.proxy.test', ...upstream, api_key: 'sk-test-request-ids-upstream-0001', auth_keys: [{ key: clientKey, name: 'ids-client' }] },
      { type: 'anthropic', host: 'dead.proxy.test', endpoint: '127.0.0.1', port: await refusedPort(), tls: false, api_key: 'sk-test-request-ids-dead-0001' },
    ],
  }));

  const seen: string[] = [];

  /** The response's id, checked against the one access-log line that carries it. */
  async function idOf(res: TestResponse, path: string): Promise<{ id: string; line: LogLine }> {
    const id = res.headers['x-llm-proxy-request-id'];
    expect(id, 'x-llm-proxy-request-id').to.be.a('string').and.match(/^[0-9a-f]{10}-[0-9a-z]+-[0-9a-z]+$/);
    const line = await fx.proxy.waitForLog((l) => l.msg === 'request' && l.reqId === id);
    expect(line.status).to.equal(res.status);
    expect(line.path).to.equal(path);
    expect(fx.proxy.logs.filter((l) => l.msg === 'request' && l.reqId === id)).to.have.length(1);
    seen.push(id as string);
    return { id: id as string, line };
  }

  const auth = { authorization: `Bearer ${clientKey}` };
  const protocols: { name: string; send: (req: TestRequest) => Promise<TestResponse> }[] = [
    { name: 'HTTP/1.1', send: (req) => h1Request(fx.agent, fx.proxy.port, req) },
    { name: 'HTTP/2', send: (req) => h2Request(fx.session, req) },
  ];

  for (const { name, send } of protocols) {
    describe(`over ${name}`, function () {
      it('a proxied success', async function () {
        const path = '/v1/chat/completions';
        const res = await send({ host: 'ids.proxy.test', path, body: '{"model":"m"}', headers: auth });
        expect(res.status).to.equal(200);
        const { line } = await idOf(res, path);
        expect(line.clientKey).to.equal('ids-client');
      });

      it('a stream, in its response head', async function () {
        const path = '/v1/chat/completions';
        const res = await send({ host: 'ids.proxy.test', path, body: '{"model":"m","stream":true}', headers: auth });
        expect(res.status).to.equal(200);
        expect(res.headers['content-type']).to.include('text/event-stream');
        expect(res.text).to.include('data: [DONE]');
        await idOf(res, path);
      });

      it("the proxy's own 401, 404, 413 and 502", async function () {
        const cases: [TestRequest, number][] = [
          [{ host: 'ids.proxy.test', path: '/v1/models', headers: { authorization: 'Bearer wrong' } }, 401],
          [{ host: 'nowhere.proxy.test', path: '/v1/models' }, 404],
          [{ host: 'ids.proxy.test', path: '/v1/chat/completions', body: 'x'.repeat(5000), headers: auth }, 413],
          [{ host: 'dead.proxy.test', path: '/v1/messages', body: '{}' }, 502],
        ];
        for (const [req, status] of cases) {
          const res = await send(req);
          expect(res.status).to.equal(status);
          expect(res.headers['x-llm-proxy-error']).to.be.a('string');
          await idOf(res, req.path);
        }
      });

      it("a relayed upstream 500, keeping the upstream's x-request-id beside ours", async function () {
        const path = '/v1/chat/completions';
        const headers = { ...auth, 'x-mock-status': '500', 'x-mock-headers': JSON.stringify({ 'x-request-id': 'req_upstream_9', 'x-llm-proxy-request-id': 'forged' }) };
        const res = await send({ host: 'ids.proxy.test', path, body: '{}', headers });
        expect(res.status).to.equal(500);
        expect(res.headers['x-request-id']).to.equal('req_upstream_9');
        expect(res.headers['x-llm-proxy-request-id']).not.to.equal('forged');
        await idOf(res, path);
      });

      it("forwards the client's x-request-id unchanged, logs it, and does not take it for ours", async function () {
        const path = '/v1/chat/completions';
        const res = await send({ host: 'ids.proxy.test', path, body: '{}', headers: { ...auth, 'x-request-id': 'client-chosen-id' } });
        expect(res.status).to.equal(200);
        const { id, line } = await idOf(res, path);
        expect(id).not.to.equal('client-chosen-id');
        expect(line.clientRequestId, 'logged beside ours').to.equal('client-chosen-id');
        const recorded = fx.mock.requests.at(-1);
        expect(recorded?.headers['x-request-id']).to.equal('client-chosen-id');
      });
    });
  }

  // Nested, so they run after the suites above (mocha runs a block's own tests before its children).
  describe('and then', function () {
    it('a malformed HTTP/1.1 head, answered before any request object exists, still has an id and a line', async function () {
      const response = await rawH1Exchange(fx.proxy.caPem, fx.proxy.port, 'GET /v1/models HTTP/1.1\r\nHost: ids.proxy.test\r\nBad Header: x\r\n\r\n');
      expect(response).to.match(/^HTTP\/1\.1 400 /);
      const id = /x-llm-proxy-request-id: (\S+)\r\n/.exec(response)?.[1];
      expect(id).to.be.a('string');
      const line = await fx.proxy.waitForLog((l) => l.msg === 'request' && l.reqId === id);
      expect(line).to.include({ status: 400, code: 'BR', protocol: 'http/1.1' });
      seen.push(id as string);
    });

    it('no two lines or responses share an id', function () {
      expect(seen.length).to.be.greaterThan(10);
      expect(new Set(seen).size).to.equal(seen.length);
      const ids = fx.proxy.logs.filter((l) => l.msg === 'request').map((l) => l.reqId);
      expect(new Set(ids).size).to.equal(ids.length);
    });
  });
});
