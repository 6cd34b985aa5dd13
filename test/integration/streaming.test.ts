// Issue 2, shown 5: SSE flows through event by event (no buffering) over both protocols, the bytes
// are the upstream's, and a client that leaves makes the upstream see the abort at once.
import { constants as h2constants } from 'node:http2';
import { expect } from 'chai';
import { request } from 'undici';
import { deadline } from '../helpers/clients.js';
import { useProxyFixture } from '../helpers/proxy-fixture.js';

interface StreamObservation {
  status: number;
  headers: Record<string, unknown>;
  chunks: { at: number; bytes: Buffer }[];
  ended: Promise<void>;
  abort(): void;
}

const streamBody = JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] });

describe('streaming', function () {
  const fx = useProxyFixture((upstream) => ({
    auth_keys: ['client-test-stream-key-0001'],
    providers: [
      { type: 'openai', host: 'openai.proxy.test', ...upstream, api_key: 'sk-test-stream-openai-upstream' },
      { type: 'anthropic', host: 'anthropic.proxy.test', ...upstream, api_key: 'sk-test-stream-anthropic-upstream' },
    ],
  }));

  const headersFor = (tokens: number, delayMs: number) => ({
    'content-type': 'application/json',
    authorization: 'Bearer client-test-stream-key-0001',
    'x-mock-tokens': String(tokens),
    'x-mock-delay-ms': String(delayMs),
  });

  async function streamOverH1(path: string, headers: Record<string, string>): Promise<StreamObservation> {
    const controller = new AbortController();
    const res = await request(`https://127.0.0.1:${fx.proxy.port}${path}`, {
      dispatcher: fx.agent,
      method: 'POST',
      headers: { host: 'openai.proxy.test', ...headers },
      body: streamBody,
      signal: controller.signal,
    });
    const chunks: StreamObservation['chunks'] = [];
    res.body.on('data', (bytes: Buffer) => chunks.push({ at: Date.now(), bytes }));
    const ended = new Promise<void>((resolve, reject) => {
      res.body.on('end', resolve);
      res.body.on('error', reject);
    });
    return { status: res.statusCode, headers: res.headers, chunks, ended, abort: () => controller.abort() };
  }

  function streamOverH2(path: string, headers: Record<string, string>): Promise<StreamObservation> {
    return new Promise((resolve, reject) => {
      const stream = fx.session.request({ ':method': 'POST', ':path': path, ':authority': 'openai.proxy.test', ...headers });
      const chunks: StreamObservation['chunks'] = [];
      stream.on('data', (bytes: Buffer) => chunks.push({ at: Date.now(), bytes }));
      const ended = new Promise<void>((resolveEnd, rejectEnd) => {
        stream.on('end', resolveEnd);
        stream.on('error', rejectEnd);
      });
      stream.once('response', (h) =>
        resolve({ status: Number(h[':status']), headers: h, chunks, ended, abort: () => stream.close(h2constants.NGHTTP2_CANCEL) }),
      );
      stream.once('error', reject);
      stream.end(streamBody);
    });
  }

  const protocols = [
    { name: 'HTTP/1.1', open: streamOverH1 },
    { name: 'HTTP/2', open: streamOverH2 },
  ];

  for (const { name, open } of protocols) {
    describe(`over ${name}`, function () {
      it('delivers each SSE event as the upstream sends it, bytes identical', async function () {
        const before = fx.mock.requests.length;
        const started = Date.now();
        const obs = await open('/v1/chat/completions', headersFor(8, 150));
        expect(obs.status).to.equal(200);
        expect(String(obs.headers['content-type'])).to.include('text/event-stream');
        expect(obs.headers['x-accel-buffering']).to.equal('no');
        await deadline(obs.ended, 10_000, 'stream end');

        const upstream = fx.mock.requests[before];
        if (!upstream) throw new Error('upstream not contacted');
        const sent = upstream.responseChunks;
        const lastSentAt = sent.at(-1)?.at ?? 0;
        const firstEventAt = obs.chunks[0]?.at ?? Infinity;
        // 8 tokens 150 ms apart: the whole stream takes over a second upstream.
        expect(lastSentAt - started).to.be.greaterThan(1000);
        expect(firstEventAt, 'first event only arrived at the end').to.be.lessThan(lastSentAt - 700);
        // Events arrive spread out, not in one burst at the end.
        const arrivals = new Set(obs.chunks.map((c) => Math.floor((c.at - started) / 100)));
        expect(arrivals.size).to.be.greaterThan(6);
        const received = Buffer.concat(obs.chunks.map((c) => c.bytes));
        const written = Buffer.concat(sent.map((c) => c.bytes));
        expect(received.equals(written)).to.equal(true, 'streamed bytes differ from what the upstream sent');
        expect(received.toString()).to.include('data: [DONE]');
      });

      it('sends the response head while the upstream has not yet sent its first event (a model thinking)', async function () {
        const started = Date.now();
        const obs = await open('/v1/chat/completions', { ...headersFor(2, 0), 'x-mock-first-event-delay-ms': '2500' });
        const headAt = Date.now();
        expect(obs.status).to.equal(200);
        await deadline(obs.ended, 10_000, 'stream end');
        const firstEventAt = obs.chunks[0]?.at ?? 0;
        expect(firstEventAt - started, 'the first event came before its delay').to.be.at.least(2400);
        // The head came with the upstream's head, not with the event 2.5 s later.
        expect(firstEventAt - headAt).to.be.greaterThan(1500);
      });

      it('a client that disconnects mid-stream makes the upstream see the abort within 1 s', async function () {
        const before = fx.mock.requests.length;
        const obs = await open('/v1/chat/completions', headersFor(100, 100));
        expect(obs.status).to.equal(200);
        obs.ended.catch(() => undefined);
        const waitStart = Date.now();
        while (obs.chunks.length < 2 && Date.now() - waitStart < 5_000) await new Promise((r) => setTimeout(r, 20));
        expect(obs.chunks.length).to.be.at.least(2);
        const upstream = fx.mock.requests[before];
        if (!upstream) throw new Error('upstream not contacted');
        const abortedAt = Date.now();
        obs.abort();
        while (!upstream.aborted && Date.now() - abortedAt < 3_000) await new Promise((r) => setTimeout(r, 10));
        expect(upstream.aborted, 'the upstream never saw the abort').to.equal(true);
        expect((upstream.abortedAt ?? Infinity) - abortedAt).to.be.lessThan(1000);
        // The upstream stopped long before its 100 tokens (10 s) were sent.
        expect(upstream.responseChunks.length).to.be.lessThan(50);
      });
    });
  }
});
