// Issue 7: hostile clients. The proxy is never an open proxy (absolute targets, CONNECT, foreign or
// conflicting authorities, dot segments), answers malformed input with the right status and a JSON
// body, and shrugs off floods, slowloris and readers that never read. After all of it, normal requests
// still succeed and no worker has been replaced.
import { connect as h2connect, constants as h2 } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { request } from 'undici';
import { h1Request, h2Request, rawH1Exchange } from '../helpers/clients.js';
import { useProxyFixture } from '../helpers/proxy-fixture.js';
import { closedWithin, frameType, h2Frame, h2Preface, openTls, startSink } from '../helpers/raw-clients.js';

const host = 'hostile.proxy.test';
const clientKey = 'sk-test-hostile-client-0001';
const auth = `Authorization: Bearer ${clientKey}\r\n`;

interface WorkerList {
  workers: { restarts: number; list: { pid: number }[] };
}

function statusOf(raw: string): number {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return match === null ? 0 : Number(match[1]);
}

function jsonBodyOf(raw: string): unknown {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

describe('hostile clients (2 workers)', function () {
  this.timeout(30_000);
  let sink: Awaited<ReturnType<typeof startSink>>;
  let workersBefore: WorkerList['workers'];
  const fx = useProxyFixture((upstream) => ({
    auth_keys: [clientKey],
    timeouts: { request_header: 2, idle: 2 },
    providers: [
      { type: 'openai', host, ...upstream, api_key: 'sk-test-hostile-upstream-0002' },
      { type: 'openai', host: `${host}/openai`, ...upstream, api_key: 'sk-test-hostile-upstream-0003' },
    ],
  }));

  const workers = async (): Promise<WorkerList['workers']> => {
    const res = await request(`http://127.0.0.1:${fx.proxy.adminPort}/status`);
    return ((await res.body.json()) as WorkerList).workers;
  };
  const raw = (text: string | Buffer, timeoutMs = 5_000) => rawH1Exchange(fx.proxy.caPem, fx.proxy.port, text, timeoutMs);

  before(async function () {
    sink = await startSink();
    workersBefore = await workers();
  });
  after(async function () {
    await sink?.close();
  });

  describe('never an open proxy', function () {
    it('an absolute-form target is 400, even naming a real server', async function () {
      const res = await raw(`GET http://127.0.0.1:${sink.port}/v1/models HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n\r\n`);
      expect(statusOf(res)).to.equal(400);
      expect(jsonBodyOf(res)).to.have.nested.property('error.code', 'bad_request');
    });

    it('CONNECT is refused over HTTP/1.1 and HTTP/2', async function () {
      const res = await raw(`CONNECT 127.0.0.1:${sink.port} HTTP/1.1\r\nHost: 127.0.0.1:${sink.port}\r\n${auth}\r\n`);
      expect(statusOf(res)).to.equal(400);
      const session = h2connect(`https://127.0.0.1:${fx.proxy.port}`, { ca: fx.proxy.caPem, servername: 'localhost' });
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const stream = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${sink.port}`, authorization: `Bearer ${clientKey}` });
          stream.on('response', (headers) => resolve(Number(headers[':status'])));
          stream.on('error', reject);
          stream.resume();
        });
        expect(status).to.equal(400);
      } finally {
        session.close();
      }
    });

    it('an authority naming an unconfigured host is 404; :authority and Host naming different hosts is 400', async function () {
      const foreign = await h2Request(fx.session, { host: `127.0.0.1:${sink.port}`, path: '/v1/models', headers: { authorization: `Bearer ${clientKey}` } });
      expect(foreign.status).to.equal(404);
      const conflicting = await h2Request(fx.session, { host, path: '/v1/models', headers: { authorization: `Bearer ${clientKey}`, host: `127.0.0.1:${sink.port}` } });
      expect(conflicting.status).to.equal(400);
      const twoHosts = await raw(`GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nHost: 127.0.0.1:${sink.port}\r\n${auth}Connection: close\r\n\r\n`);
      expect(statusOf(twoHosts)).to.equal(400);
    });

    it('dot segments, raw or percent-encoded, are 400; // paths go to the configured upstream only', async function () {
      // Raw requests and h2: a URL-based client (undici, curl) would resolve the dot segments itself.
      for (const path of ['/openai/../v1/models', '/openai/%2e%2e/v1/models', '/openai/.%2E/v1/models', '/openai/v1/./models', '/openai/v1/..']) {
        const res = await raw(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n\r\n`);
        expect(statusOf(res), path).to.equal(400);
        expect((await h2Request(fx.session, { host, path, headers: { authorization: `Bearer ${clientKey}` } })).status, `h2 ${path}`).to.equal(400);
      }
      fx.mock.reset();
      for (const path of [`//127.0.0.1:${sink.port}/v1/models`, `/openai//127.0.0.1:${sink.port}/v1/models`]) {
        const res = await h2Request(fx.session, { host, path, headers: { authorization: `Bearer ${clientKey}` } });
        expect(res.status, path).to.be.below(500);
      }
      expect(fx.mock.requests.map((r) => r.target)).to.deep.equal([`//127.0.0.1:${sink.port}/v1/models`, `//127.0.0.1:${sink.port}/v1/models`]);
      expect(sink.connections()).to.equal(0);
    });
  });

  describe('malformed HTTP/1.1 gets 400 (or 408, 431) in JSON', function () {
    const cases: [string, string | Buffer, number][] = [
      ['a malformed request line', 'GET /v1/models HTTP/1.1 junk\r\n\r\n', 400],
      ['a CR inside a header value', `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nX-A: a\rb\r\n\r\n`, 400],
      ['a NUL inside a header value', `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nX-A: a\u0000b\r\n\r\n`, 400],
      ['two different Content-Lengths', `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, 400],
      ['Content-Length with Transfer-Encoding', `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, 400],
      ['bad chunk framing', `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${auth}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, 400],
      ['5,000 headers', `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\n${Array.from({ length: 5000 }, (_, i) => `x-h${i}: v\r\n`).join('')}\r\n`, 431],
    ];
    for (const [name, text, status] of cases) {
      it(name, async function () {
        const res = await raw(text);
        expect(statusOf(res), res.slice(0, 200)).to.equal(status);
        expect(jsonBodyOf(res)).to.have.property('error');
      });
    }

    it('a body shorter than declared that stops coming gets 408 after timeouts.idle', async function () {
      const started = performance.now();
      const res = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`, 8_000);
      expect(statusOf(res)).to.equal(408);
      expect(performance.now() - started).to.be.within(1_500, 6_000);
    });

    it('an answer given before the body (a wrong key) closes the connection instead of waiting for the body', async function () {
      const started = performance.now();
      const res = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer sk-wrong\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`, 8_000);
      expect(statusOf(res)).to.equal(401);
      expect(res.toLowerCase()).to.include('\r\nconnection: close\r\n');
      expect(performance.now() - started).to.be.below(1_500);
    });

    it('a body that keeps coming for longer than timeouts.idle and request_header together is forwarded whole', async function () {
      // Regression: Node's own requestTimeout (then max(idle, request_header)) cut it unanswered.
      const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'slow but steady' }] });
      const socket = await openTls(fx.proxy.caPem, fx.proxy.port, 'http/1.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      const closed = closedWithin(socket, 12_000);
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      const pieces = 10;
      const step = Math.ceil(body.length / pieces);
      const started = performance.now();
      for (let i = 0; i < pieces; i += 1) {
        await sleep(500);
        socket.write(body.slice(i * step, (i + 1) * step));
      }
      await closed;
      expect(performance.now() - started).to.be.above(4_500);
      const res = Buffer.concat(chunks).toString('latin1');
      expect(statusOf(res), res.slice(0, 200)).to.equal(200);
    });

    it('a body longer than declared: the excess is a malformed next request, answered 400, and the connection closed', async function () {
      const res = await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}garbage that is not a request\r\n\r\n`);
      // Node parses the excess at once: its 400 may come before or after the first request's answer.
      expect(res).to.match(/HTTP\/1\.1 400 /);
      expect(res.match(/HTTP\/1\.1 \d{3}/g)?.every((line) => line === 'HTTP/1.1 400' || line === 'HTTP/1.1 200')).to.equal(true);
    });

    it('bytes that are not UTF-8 in the path are forwarded as they came, or refused, never a crash', async function () {
      const res = await raw(Buffer.concat([Buffer.from('GET /v1/models/'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(` HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n\r\n`)]));
      expect(statusOf(res)).to.be.oneOf([400, 404]);
      // nghttp2 itself may reset a stream whose :path it finds invalid; either way nothing is forwarded.
      fx.mock.reset();
      const h2res = await h2Request(fx.session, { host, path: '/v1/models/é😀', headers: { authorization: `Bearer ${clientKey}` } }).catch((err: Error & { code?: string }) => err);
      if (h2res instanceof Error) expect(h2res.message).to.include('PROTOCOL_ERROR');
      else expect(h2res.status).to.equal(400);
      expect(fx.mock.requests).to.deep.equal([]);
    });
  });

  describe('floods and slow clients', function () {
    it('HTTP/2 rapid reset: thousands of streams opened and cancelled at once', async function () {
      const session = h2connect(`https://127.0.0.1:${fx.proxy.port}`, { ca: fx.proxy.caPem, servername: 'localhost', peerMaxConcurrentStreams: 100_000 });
      session.on('error', () => undefined);
      try {
        for (let i = 0; i < 5_000 && !session.destroyed; i++) {
          const stream = session.request({ ':path': '/v1/models', ':authority': host, authorization: `Bearer ${clientKey}` });
          stream.on('error', () => undefined);
          stream.close(h2.NGHTTP2_CANCEL);
          if (i % 500 === 0) await sleep(1);
        }
        await sleep(200);
      } finally {
        session.destroy();
      }
    });

    it('SETTINGS and PING floods from a client that never reads: other clients are served meanwhile', async function () {
      const socket = await openTls(fx.proxy.caPem, fx.proxy.port, 'h2');
      socket.pause();
      socket.on('error', () => undefined);
      try {
        socket.write(Buffer.concat([h2Preface, h2Frame(frameType.settings, 0, 0)]));
        const ping = h2Frame(frameType.ping, 0, 0, Buffer.alloc(8));
        const settings = h2Frame(frameType.settings, 0, 0);
        for (let i = 0; i < 200 && !socket.destroyed; i++) socket.write(Buffer.concat(Array.from({ length: 500 }, (_, j) => (j % 2 === 0 ? ping : settings))));
        // nghttp2 drops such a session once the acknowledgements it cannot send pile up; whether it
        // has yet depends on timing. What must hold either way: the worker serves everyone else.
        const started = performance.now();
        const res = await h1Request(fx.agent, fx.proxy.port, { host, path: '/v1/chat/completions', body: '{}', headers: { authorization: `Bearer ${clientKey}` } });
        expect(res.status).to.equal(200);
        expect(performance.now() - started).to.be.below(2_000);
      } finally {
        socket.destroy();
      }
    });

    it('slowloris: a head dripped byte by byte is cut at timeouts.request_header', async function () {
      const socket = await openTls(fx.proxy.caPem, fx.proxy.port, 'http/1.1');
      const closed = closedWithin(socket, 8_000);
      const head = `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nX-Slow: ${'a'.repeat(200)}`;
      void (async () => {
        for (const char of head) {
          if (socket.destroyed) return;
          socket.write(char);
          await sleep(50);
        }
      })();
      expect(await closed).to.be.within(1_500, 5_000);
    });

    it('a reader that never reads: after timeouts.idle its stream is cut and the upstream aborted', async function () {
      const socket = await openTls(fx.proxy.caPem, fx.proxy.port, 'http/1.1');
      socket.pause();
      const closed = closedWithin(socket, 15_000);
      const body = JSON.stringify({ model: 'm', stream: true, messages: [] });
      fx.mock.reset();
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${auth}Content-Type: application/json\r\nX-Mock-Tokens: 200000\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const aborted = await fx.mock.waitForAbort(12_000);
      expect(aborted.target).to.equal('/v1/chat/completions');
      const line = await fx.proxy.waitForLog((l) => l.msg === 'request' && l.code === 'DT', 3_000);
      expect(line.status).to.equal(200);
      // A paused socket cannot see the close; reading now drains what was sent, then the end.
      socket.resume();
      await closed;
    });
  });

  // A suite of its own, so mocha runs it after every other one here (a bare `it` would run first).
  describe('afterwards', function () {
    it('normal requests succeed over both protocols and no worker was replaced', async function () {
      const h1 = await h1Request(fx.agent, fx.proxy.port, { host, path: '/v1/chat/completions', body: '{}', headers: { authorization: `Bearer ${clientKey}` } });
      expect(h1.status).to.equal(200);
      const session = h2connect(`https://127.0.0.1:${fx.proxy.port}`, { ca: fx.proxy.caPem, servername: 'localhost' });
      try {
        const answer = await new Promise<number>((resolve, reject) => {
          const stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions', ':authority': host, authorization: `Bearer ${clientKey}` });
          stream.on('response', (headers) => resolve(Number(headers[':status'])));
          stream.on('error', reject);
          stream.resume();
          stream.end('{}');
        });
        expect(answer).to.equal(200);
      } finally {
        session.close();
      }
      const after = await workers();
      // Why a worker went, should one have: the supervisor's line carries its exit code or signal,
      // and a worker that died of an exception logged it just before.
      const exits = fx.proxy.logs.filter((line) => line.level >= 50 || /exited|uncaught/.test(line.msg));
      const stderr = fx.proxy.output().split('\n').filter((line) => line !== '' && !line.startsWith('{')).slice(0, 30);
      expect(after.restarts, JSON.stringify({ exits, stderr })).to.equal(0);
      expect(after.list.map((w) => w.pid).sort()).to.deep.equal(workersBefore.list.map((w) => w.pid).sort());
    });
  });
});
