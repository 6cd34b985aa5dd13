// The official SDKs as clients: openai, @anthropic-ai/sdk and @google/genai, each pointed at a path
// prefix of one proxy, streaming and not, get the mock's answers; a 401 from the proxy reaches each
// SDK as its own auth error carrying the proxy's message.
import Anthropic from '@anthropic-ai/sdk';
import { ApiError, GoogleGenAI } from '@google/genai';
import { expect } from 'chai';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { deadline } from '../helpers/clients.js';
import { credentialsIn, startMockProvider, type MockProvider, type RecordedRequest } from '../helpers/mock-provider.js';
import { startProxy, type ProxyProcess } from '../helpers/proxy-process.js';

const clientKey = 'client-test-sdk-key-0001';
const wrongKey = 'client-test-sdk-wrong-0001';
const upstreamKeys = {
  openai: 'sk-test-sdk-openai-upstream-01',
  anthropic: 'sk-ant-test-sdk-upstream-0001',
  gemini: 'gm-test-sdk-gemini-upstream-01',
};
const proxyAuthMessage = 'Invalid or missing API key for this proxy route.';
// Each SDK call gets this long; the mocha timeout (20 s) is the backstop, not the plan.
const callMs = 5_000;
// Streams that pace their tokens, so a proxy that buffered the body would show up as one late burst.
const paced = { tokens: 6, delayMs: 60 };

const tokens = (n: number): string[] => Array.from({ length: n }, (_, i) => `tok${i} `);
const mockText = (n: number): string => tokens(n).join('');

type Fetch = typeof globalThis.fetch;

/** fetch from undici with a dispatcher that trusts the test CA: no NODE_TLS_REJECT_UNAUTHORIZED. */
function trustingFetch(dispatcher: Agent): Fetch {
  const trusted = (input: Parameters<Fetch>[0], init?: Parameters<Fetch>[1]) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
  // undici's Request/Response are the classes Node's global fetch is built from; only the
  // declarations differ.
  return trusted as unknown as Fetch;
}

/** Collects a stream's items, noting when each arrived. */
async function collect<T>(stream: AsyncIterable<T>, what: string): Promise<{ item: T; at: number }[]> {
  return deadline(
    (async () => {
      const seen: { item: T; at: number }[] = [];
      for await (const item of stream) seen.push({ item, at: Date.now() });
      return seen;
    })(),
    callMs,
    what,
  );
}

/** The first and last text delta were apart by most of the pacing: the proxy streamed, not buffered. */
function expectSpreadOut(arrivals: number[]): void {
  const first = arrivals[0] as number;
  const last = arrivals.at(-1) as number;
  expect(last - first, 'ms between first and last delta').to.be.at.least(((paced.tokens - 1) * paced.delayMs) / 2);
}

describe('official SDKs through the proxy', function () {
  let mock: MockProvider;
  let proxy: ProxyProcess;
  let agent: Agent;
  let fetch: Fetch;

  before(async function () {
    mock = await startMockProvider();
    const upstream = { endpoint: '127.0.0.1', port: mock.port, tls: false };
    proxy = await startProxy({
      auth_keys: [clientKey],
      providers: [
        { type: 'openai', host: 'localhost/openai', ...upstream, api_key: upstreamKeys.openai },
        { type: 'anthropic', host: 'localhost/anthropic', ...upstream, api_key: upstreamKeys.anthropic },
        { type: 'gemini', host: 'localhost/gemini', ...upstream, api_key: upstreamKeys.gemini },
      ],
    });
    agent = new Agent({ connect: { ca: proxy.caPem } });
    fetch = trustingFetch(agent);
  });

  after(async function () {
    await agent?.close();
    await proxy?.stop();
    await mock?.close();
  });

  function upstreamRequestsSince(before: number): RecordedRequest[] {
    return mock.requests.slice(before);
  }


  /** Exactly one upstream request since `before`, at `pathname` with the prefix gone, carrying only the upstream key. */
  function expectOneUpstreamCall(before: number, pathname: string, credential: [string, string]): RecordedRequest {
    const sent = upstreamRequestsSince(before);
    expect(sent, 'upstream requests').to.have.length(1);
    const recorded = sent[0] as RecordedRequest;
    expect(new URL(recorded.target, 'http://mock.invalid').pathname).to.equal(pathname);
    expect(credentialsIn(recorded)).to.deep.equal([credential]);
    expect(JSON.stringify(recorded.rawHeaders)).not.to.include(clientKey);
    expect(recorded.target).not.to.include(clientKey);
    return recorded;
  }

  describe('openai v6', function () {
    let client: OpenAI;
    const bearer: [string, string] = ['authorization', `Bearer ${upstreamKeys.openai}`];

    before(function () {
      client = new OpenAI({ apiKey: clientKey, baseURL: `${proxy.origin}/openai/v1`, fetch, maxRetries: 0, timeout: callMs });
    });

    it('chat.completions.create returns the mock answer and its usage', async function () {
      const before = mock.requests.length;
      const completion = await deadline(
        client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }),
        callMs,
        'chat completion',
      );
      expect(completion.choices[0]?.message.content).to.equal(mockText(5));
      expect(completion.choices[0]?.finish_reason).to.equal('stop');
      expect(completion.usage).to.include({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
      expectOneUpstreamCall(before, '/v1/chat/completions', bearer);
    });

    it('x-mock-tokens sent as an SDK request header reaches the upstream', async function () {
      const completion = await deadline(
        client.chat.completions.create(
          { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] },
          { headers: { 'x-mock-tokens': '3' } },
        ),
        callMs,
        'chat completion with x-mock-tokens',
      );
      expect(completion.choices[0]?.message.content).to.equal(mockText(3));
      expect(completion.usage?.completion_tokens).to.equal(3);
    });

    it('chat stream yields the deltas in order, as they are produced, and a final usage chunk', async function () {
      const before = mock.requests.length;
      const stream = await deadline(
        client.chat.completions.create(
          { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } },
          { headers: { 'x-mock-tokens': String(paced.tokens), 'x-mock-delay-ms': String(paced.delayMs) } },
        ),
        callMs,
        'chat stream start',
      );
      const chunks = await collect(stream, 'chat stream');
      const deltas = chunks.filter(({ item }) => typeof item.choices[0]?.delta.content === 'string');
      expect(deltas.map(({ item }) => item.choices[0]?.delta.content)).to.deep.equal(tokens(paced.tokens));
      expect(deltas.map(({ item }) => item.choices[0]?.delta.content).join('')).to.equal(mockText(paced.tokens));
      expectSpreadOut(deltas.map(({ at }) => at));
      const last = chunks.at(-1)?.item;
      expect(last?.choices).to.deep.equal([]);
      expect(last?.usage).to.include({ prompt_tokens: 10, completion_tokens: paced.tokens, total_tokens: 10 + paced.tokens });
      expectOneUpstreamCall(before, '/v1/chat/completions', bearer);
    });

    it('responses.create returns the mock answer and its usage', async function () {
      const before = mock.requests.length;
      const response = await deadline(client.responses.create({ model: 'mock-model', input: 'hi' }), callMs, 'response');
      expect(response.output_text).to.equal(mockText(5));
      expect(response.status).to.equal('completed');
      expect(response.usage).to.include({ input_tokens: 10, output_tokens: 5, total_tokens: 15 });
      expectOneUpstreamCall(before, '/v1/responses', bearer);
    });

    it('responses.create with stream: true yields the text deltas in order and the completed response', async function () {
      const before = mock.requests.length;
      const stream = await deadline(
        client.responses.create(
          { model: 'mock-model', input: 'hi', stream: true },
          { headers: { 'x-mock-tokens': String(paced.tokens), 'x-mock-delay-ms': String(paced.delayMs) } },
        ),
        callMs,
        'responses stream start',
      );
      const events = await collect(stream, 'responses stream');
      const deltas = events.flatMap(({ item, at }) => (item.type === 'response.output_text.delta' ? [{ delta: item.delta, at }] : []));
      expect(deltas.map(({ delta }) => delta)).to.deep.equal(tokens(paced.tokens));
      expectSpreadOut(deltas.map(({ at }) => at));
      const last = events.at(-1)?.item;
      expect(last?.type).to.equal('response.completed');
      if (last?.type !== 'response.completed') return;
      // output_text is a convenience the SDK adds to non-streamed responses only; a raw event has the parts.
      const parts = last.response.output.flatMap((item) => (item.type === 'message' ? item.content : []));
      expect(parts.map((part) => (part.type === 'output_text' ? part.text : '')).join('')).to.equal(mockText(paced.tokens));
      expect(last.response.usage).to.include({ input_tokens: 10, output_tokens: paced.tokens });
      expectOneUpstreamCall(before, '/v1/responses', bearer);
    });

    it('the responses.stream helper builds the final response from the streamed events', async function () {
      const stream = client.responses.stream({ model: 'mock-model', input: 'hi' });
      const texts: string[] = [];
      stream.on('response.output_text.delta', (event) => texts.push(event.delta));
      const final = await deadline(stream.finalResponse(), callMs, 'responses.stream final response');
      expect(texts).to.deep.equal(tokens(5));
      expect(final.output_text).to.equal(mockText(5));
    });

    it('a wrong key is OpenAI.AuthenticationError with the proxy message, and the upstream is never contacted', async function () {
      const before = mock.requests.length;
      const wrong = new OpenAI({ apiKey: wrongKey, baseURL: `${proxy.origin}/openai/v1`, fetch, maxRetries: 0, timeout: callMs });
      const failure = await deadline(
        wrong.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] }).then(
          () => undefined,
          (err: unknown) => err,
        ),
        callMs,
        'chat completion with a wrong key',
      );
      expect(failure).to.be.instanceOf(OpenAI.AuthenticationError);
      const error = failure as InstanceType<typeof OpenAI.AuthenticationError>;
      expect(error.status).to.equal(401);
      expect(error.message).to.include(proxyAuthMessage);
      expect(upstreamRequestsSince(before)).to.have.length(0);
    });
  });

  describe('@anthropic-ai/sdk 1.x', function () {
    let client: Anthropic;
    const apiKeyHeader: [string, string] = ['x-api-key', upstreamKeys.anthropic];
    const params = { model: 'mock-model', max_tokens: 64, messages: [{ role: 'user' as const, content: 'hi' }] };

    before(function () {
      client = new Anthropic({ apiKey: clientKey, baseURL: `${proxy.origin}/anthropic`, fetch, maxRetries: 0, timeout: callMs });
    });

    it('messages.create returns the mock answer and its usage', async function () {
      const before = mock.requests.length;
      const message = await deadline(client.messages.create(params), callMs, 'message');
      expect(message.content).to.have.length(1);
      const block = message.content[0];
      expect(block?.type).to.equal('text');
      expect(block?.type === 'text' ? block.text : undefined).to.equal(mockText(5));
      expect(message.stop_reason).to.equal('end_turn');
      expect(message.usage).to.include({ input_tokens: 10, output_tokens: 5 });
      const recorded = expectOneUpstreamCall(before, '/v1/messages', apiKeyHeader);
      expect(recorded.headers['anthropic-version']).to.be.a('string');
    });

    it('x-mock-tokens sent as an SDK request header reaches the upstream', async function () {
      const message = await deadline(client.messages.create(params, { headers: { 'x-mock-tokens': '3' } }), callMs, 'message with x-mock-tokens');
      const block = message.content[0];
      expect(block?.type === 'text' ? block.text : undefined).to.equal(mockText(3));
      expect(message.usage.output_tokens).to.equal(3);
    });

    it('messages.create with stream: true yields the text deltas in order, as they are produced, and the usage', async function () {
      const before = mock.requests.length;
      const stream = await deadline(
        client.messages.create(
          { ...params, stream: true },
          { headers: { 'x-mock-tokens': String(paced.tokens), 'x-mock-delay-ms': String(paced.delayMs) } },
        ),
        callMs,
        'message stream start',
      );
      const events = await collect(stream, 'message stream');
      const deltas = events.flatMap(({ item, at }) =>
        item.type === 'content_block_delta' && item.delta.type === 'text_delta' ? [{ text: item.delta.text, at }] : [],
      );
      expect(deltas.map(({ text }) => text)).to.deep.equal(tokens(paced.tokens));
      expect(deltas.map(({ text }) => text).join('')).to.equal(mockText(paced.tokens));
      expectSpreadOut(deltas.map(({ at }) => at));
      const start = events.find(({ item }) => item.type === 'message_start')?.item;
      expect(start?.type === 'message_start' ? start.message.usage.input_tokens : undefined).to.equal(10);
      const end = events.find(({ item }) => item.type === 'message_delta')?.item;
      expect(end?.type === 'message_delta' ? end.usage.output_tokens : undefined).to.equal(paced.tokens);
      expect(events.at(-1)?.item.type).to.equal('message_stop');
      expectOneUpstreamCall(before, '/v1/messages', apiKeyHeader);
    });

    it('the messages.stream helper assembles the final message from the streamed events', async function () {
      const stream = client.messages.stream(params);
      const texts: string[] = [];
      stream.on('text', (delta) => texts.push(delta));
      const final = await deadline(stream.finalMessage(), callMs, 'messages.stream final message');
      expect(texts).to.deep.equal(tokens(5));
      const block = final.content[0];
      expect(block?.type === 'text' ? block.text : undefined).to.equal(mockText(5));
      expect(final.usage).to.include({ input_tokens: 10, output_tokens: 5 });
    });

    it('a wrong key is Anthropic.AuthenticationError with the proxy message, and the upstream is never contacted', async function () {
      const before = mock.requests.length;
      const wrong = new Anthropic({ apiKey: wrongKey, baseURL: `${proxy.origin}/anthropic`, fetch, maxRetries: 0, timeout: callMs });
      const failure = await deadline(
        wrong.messages.create(params).then(
          () => undefined,
          (err: unknown) => err,
        ),
        callMs,
        'message with a wrong key',
      );
      expect(failure).to.be.instanceOf(Anthropic.AuthenticationError);
      const error = failure as InstanceType<typeof Anthropic.AuthenticationError>;
      expect(error.status).to.equal(401);
      expect(error.message).to.include(proxyAuthMessage);
      expect(upstreamRequestsSince(before)).to.have.length(0);
    });
  });

  describe('@google/genai 2.x', function () {
    let client: GoogleGenAI;
    const apiKeyHeader: [string, string] = ['x-goog-api-key', upstreamKeys.gemini];

    // No retryOptions: @google/genai then makes exactly one attempt.
    const gemini = (apiKey: string): GoogleGenAI => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: `${proxy.origin}/gemini`, fetch, timeout: callMs } });

    before(function () {
      client = gemini(clientKey);
    });

    it('models.generateContent returns the mock answer and its usage', async function () {
      const before = mock.requests.length;
      const response = await deadline(client.models.generateContent({ model: 'mock-model', contents: 'hi' }), callMs, 'generateContent');
      expect(response.text).to.equal(mockText(5));
      expect(response.candidates?.[0]?.finishReason).to.equal('STOP');
      expect(response.usageMetadata).to.include({ promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 });
      expectOneUpstreamCall(before, '/v1beta/models/mock-model:generateContent', apiKeyHeader);
    });

    it('x-mock-tokens sent as an SDK request header reaches the upstream', async function () {
      const response = await deadline(
        client.models.generateContent({ model: 'mock-model', contents: 'hi', config: { httpOptions: { headers: { 'x-mock-tokens': '3' } } } }),
        callMs,
        'generateContent with x-mock-tokens',
      );
      expect(response.text).to.equal(mockText(3));
      expect(response.usageMetadata?.candidatesTokenCount).to.equal(3);
    });

    it('models.generateContentStream yields the chunks in order, as they are produced, with the running usage', async function () {
      const before = mock.requests.length;
      const headers = { 'x-mock-tokens': String(paced.tokens), 'x-mock-delay-ms': String(paced.delayMs) };
      const stream = await deadline(
        client.models.generateContentStream({ model: 'mock-model', contents: 'hi', config: { httpOptions: { headers } } }),
        callMs,
        'generateContentStream start',
      );
      const chunks = await collect(stream, 'generateContentStream');
      expect(chunks.map(({ item }) => item.text)).to.deep.equal(tokens(paced.tokens));
      expect(chunks.map(({ item }) => item.text).join('')).to.equal(mockText(paced.tokens));
      expectSpreadOut(chunks.map(({ at }) => at));
      const last = chunks.at(-1)?.item;
      expect(last?.candidates?.[0]?.finishReason).to.equal('STOP');
      expect(last?.usageMetadata).to.include({ promptTokenCount: 10, candidatesTokenCount: paced.tokens });
      const recorded = expectOneUpstreamCall(before, '/v1beta/models/mock-model:streamGenerateContent', apiKeyHeader);
      expect(new URL(recorded.target, 'http://mock.invalid').searchParams.get('alt')).to.equal('sse');
    });

    it('a wrong key is an ApiError with status 401 and the proxy message, and the upstream is never contacted', async function () {
      const before = mock.requests.length;
      const failure = await deadline(
        gemini(wrongKey).models.generateContent({ model: 'mock-model', contents: 'hi' }).then(
          () => undefined,
          (err: unknown) => err,
        ),
        callMs,
        'generateContent with a wrong key',
      );
      expect(failure).to.be.instanceOf(ApiError);
      const error = failure as ApiError;
      expect(error.status).to.equal(401);
      expect(error.message).to.include(proxyAuthMessage);
      expect(upstreamRequestsSince(before)).to.have.length(0);
    });
  });
});
