// Quiet stretches (issue 15): a route idle for 10 s keeps its warm upstream connection (provider
// keep_alive, capped by the upstream's Keep-Alive hint); an event stream the upstream keeps silent
// gets `: keep-alive` comment lines (stream_keepalive) and the official SDKs read the same content.
// One proxy for both: the stream tests run inside the 10 s the connection test has to wait anyway.
import Anthropic from '@anthropic-ai/sdk';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { createH1Agent, deadline, h1Request, h2Request, openH2Session } from '../helpers/clients.js';
import { startMockProvider, type MockProvider, type RecordedRequest } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';

const upstreamKeys = { openai: 'sk-test-quiet-openai-upstream-01', anthropic: 'sk-ant-test-quiet-upstream-0001' };
const clientKey = 'client-test-quiet-key-00001';
const keepaliveSeconds = 0.1;
// Gaps between the mock's events: more than the keep-alive interval, so comments must come in them.
const silentGap = { 'x-mock-delay-ms': '250', 'x-mock-tokens': '2' };
const comment = ': keep-alive\n';
const gapMs = 10_000;

/**
 * An upstream that keeps idle connections 30 s and counts the connections it accepts. Like most
 * providers' front ends it sends no Keep-Alive header unless given one (undici would follow it).
 */
async function countingUpstream(keepAliveHint?: string): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer({ keepAliveTimeout: 30_000 }, (_req, res) => {
    // A Connection header of our own keeps Node from adding the Keep-Alive it derives from keepAliveTimeout.
    res.setHeader('connection', 'keep-alive');
    if (keepAliveHint !== undefined) res.setHeader('keep-alive', keepAliveHint);
    res.setHeader('content-type', 'application/json').end('{"object":"list","data":[]}');
  });
  server.on('connection', () => (connections += 1));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

type Fetch = typeof globalThis.fetch;

function trustingFetch(dispatcher: Agent): Fetch {
  const trusted = (input: Parameters<Fetch>[0], init?: Parameters<Fetch>[1]) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
  return trusted as unknown as Fetch;
}

describe('quiet upstreams', function () {
  this.timeout(30_000);
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let agent: Agent;
  let sdkAgent: Agent;
  let fetch: Fetch;
  let upstreams: Record<'plain' | 'hinted' | 'short', Awaited<ReturnType<typeof countingUpstream>>>;
  let firstRoundAt = 0;

  const pooled = (host: string) => h1Request(agent, proxy.port, { host, path: '/v1/models' });

  before(async function () {
    mock = await startMockProvider();
    upstreams = { plain: await countingUpstream(), hinted: await countingUpstream('timeout=3'), short: await countingUpstream() };
    const counting = (port: number) => ({ type: 'openai', endpoint: '127.0.0.1', port, tls: false });
    proxy = await startProxy({
      // One worker: every request meets the same pools.
      workers: 1,
      stream_keepalive: keepaliveSeconds,
      providers: [
        { type: 'openai', host: 'localhost/openai', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: upstreamKeys.openai, auth_keys: [clientKey] },
        { type: 'anthropic', host: 'localhost/anthropic', endpoint: '127.0.0.1', port: mock.port, tls: false, api_key: upstreamKeys.anthropic, auth_keys: [clientKey] },
        { ...counting(upstreams.plain.port), host: 'plain.proxy.test' },
        { ...counting(upstreams.hinted.port), host: 'hinted.proxy.test' },
        { ...counting(upstreams.short.port), host: 'short.proxy.test', keep_alive: 2 },
      ],
    });
    agent = createH1Agent(proxy.caPem);
    sdkAgent = new Agent({ connect: { ca: proxy.caPem } });
    fetch = trustingFetch(sdkAgent);
    for (const host of ['plain.proxy.test', 'hinted.proxy.test', 'short.proxy.test']) expect((await pooled(host)).status).to.equal(200);
    firstRoundAt = Date.now();
  });

  after(async function () {
    await agent?.close();
    await sdkAgent?.close();
    await proxy?.stop();
    await mock?.close();
    for (const upstream of Object.values(upstreams ?? {})) {
      upstream.server.closeAllConnections();
      upstream.server.close();
    }
  });

  describe('stream_keepalive', function () {
    const chatBody = JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const chatHeaders = { authorization: `Bearer ${clientKey}`, 'content-type': 'application/json' };
    const lastUpstream = (): RecordedRequest => mock.requests.at(-1) as RecordedRequest;
    const upstreamFor = (model: string): RecordedRequest => mock.requests.find((r) => r.body.toString('utf8').includes(`"${model}"`)) as RecordedRequest;
    const upstreamText = (recorded: RecordedRequest) => Buffer.concat(recorded.responseChunks.map((chunk) => chunk.bytes)).toString('utf8');

    it('sends `: keep-alive` while the upstream is silent and leaves its bytes as they were (HTTP/1.1 and HTTP/2)', async function () {
      const session = await openH2Session(proxy.caPem, proxy.port);
      try {
        // Each stream names itself to the mock, whose record then gives what the upstream sent for it.
        const request = (protocol: string) => ({ method: 'POST', path: `/openai/v1/chat/completions?via=${protocol}`, headers: { ...chatHeaders, ...silentGap }, body: chatBody });
        const [h1, h2] = await Promise.all([h1Request(agent, proxy.port, request('h1')), h2Request(session, request('h2'))]);
        const sentFor = (protocol: string) => upstreamText(mock.requests.find((r) => r.target.endsWith(`?via=${protocol}`)) as RecordedRequest);
        for (const [response, upstream] of [
          [h1, sentFor('h1')],
          [h2, sentFor('h2')],
        ] as const) {
          expect(response.status).to.equal(200);
          expect(response.text.split(comment).length - 1, response.text).to.be.at.least(2);
          // Comments go between events only: taken out, what is left is the upstream's stream to the byte.
          expect(response.text.replaceAll(`${comment}\n`, '')).to.equal(upstream);
        }
      } finally {
        session.close();
      }
    });

    it('sends none while the upstream keeps talking', async function () {
      const response = await h1Request(agent, proxy.port, { method: 'POST', path: '/openai/v1/chat/completions', headers: { ...chatHeaders, 'x-mock-tokens': '20' }, body: chatBody });
      expect(response.status).to.equal(200);
      expect(response.text).not.to.include(comment);
      expect(response.text).to.equal(upstreamText(lastUpstream()));
    });

    it('the openai SDK reads the same deltas from a stream with silent stretches', async function () {
      const client = new OpenAI({ apiKey: clientKey, baseURL: `${proxy.origin}/openai/v1`, fetch, maxRetries: 0, timeout: 5_000 });
      const stream = await client.chat.completions.create({ model: 'mock-sdk-openai', messages: [{ role: 'user', content: 'hi' }], stream: true }, { headers: silentGap });
      const deltas: string[] = [];
      await deadline(
        (async () => {
          for await (const chunk of stream) if (typeof chunk.choices[0]?.delta.content === 'string') deltas.push(chunk.choices[0].delta.content);
        })(),
        5_000,
        'openai stream',
      );
      expect(deltas).to.deep.equal(['tok0 ', 'tok1 ']);
      await expectCommentsSent('mock-sdk-openai');
    });

    it('the anthropic SDK reads the same message from a stream with silent stretches', async function () {
      const client = new Anthropic({ apiKey: clientKey, baseURL: `${proxy.origin}/anthropic`, fetch, maxRetries: 0, timeout: 5_000 });
      const stream = await client.messages.create({ model: 'mock-sdk-anthropic', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], stream: true }, { headers: silentGap });
      const types: string[] = [];
      let text = '';
      await deadline(
        (async () => {
          for await (const event of stream) {
            types.push(event.type);
            if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
          }
        })(),
        5_000,
        'anthropic stream',
      );
      expect(text).to.equal('tok0 tok1 ');
      expect(types[0]).to.equal('message_start');
      expect(types.at(-1)).to.equal('message_stop');
      await expectCommentsSent('mock-sdk-anthropic');
    });

    /** The access log counts more bytes to the client than the upstream sent: the comments went out. */
    async function expectCommentsSent(model: string): Promise<void> {
      const line = await proxy.waitForLog((l) => l.msg === 'request' && l.model === model);
      const upstreamBytes = upstreamFor(model).responseChunks.reduce((sum, chunk) => sum + chunk.bytes.length, 0);
      expect(line.bytesOut).to.be.at.least(upstreamBytes + 2 * Buffer.byteLength(`${comment}\n`));
    }
  });

  // After the stream tests, which run while the 10 s pass (mocha runs a block's own tests first).
  describe('upstream connections', function () {
    it('raises the HTTP/2 connection window past the 65,535 bytes it starts with', async function () {
      const session = await openH2Session(proxy.caPem, proxy.port);
      try {
        // The server's WINDOW_UPDATE for stream 0 follows its SETTINGS at once.
        let window = session.state.remoteWindowSize ?? 0;
        for (let i = 0; i < 40 && window <= 65_535; i++) {
          await sleep(25);
          window = session.state.remoteWindowSize ?? 0;
        }
        expect(window).to.be.at.least(1024 * 1024);
      } finally {
        session.close();
      }
    });

    it('requests 10 s apart reuse one upstream connection; a shorter keep_alive or Keep-Alive hint does not', async function () {
      await sleep(Math.max(0, firstRoundAt + gapMs - Date.now()));
      for (const host of ['plain.proxy.test', 'hinted.proxy.test', 'short.proxy.test']) expect((await pooled(host)).status).to.equal(200);
      expect(upstreams.plain.connections(), 'connections to an upstream that keeps them 30 s').to.equal(1);
      expect(upstreams.hinted.connections(), 'connections to an upstream whose Keep-Alive says timeout=3').to.equal(2);
      expect(upstreams.short.connections(), 'connections with keep_alive: 2').to.equal(2);
    });
  });
});
