import { gunzipSync } from 'node:zlib';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { expect } from 'chai';
import OpenAI from 'openai';
import { Agent, request } from 'undici';
import { createCertificates } from '../helpers/certs.js';
import { startMockProvider, type MockProvider } from '../helpers/mock-provider.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function parseSse(text: string, separator = '\n\n'): { event: string | undefined; data: string }[] {
  return text
    .split(separator)
    .filter((block) => block.length > 0)
    .map((block) => {
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      return { event, data: data.join('\n') };
    });
}

function jsonOf(data: string): Record<string, unknown> {
  return JSON.parse(data) as Record<string, unknown>;
}

describe('test helper: mock provider', () => {
  let mock: MockProvider;
  let dispatcher: Agent;

  async function send(
    path: string,
    opts: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: unknown } = {},
  ): Promise<Reply> {
    const res = await request(mock.url + path, {
      dispatcher,
      method: opts.method ?? 'POST',
      headers: { 'content-type': 'application/json', ...opts.headers },
      body: opts.body === undefined ? null : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
  }

  beforeEach(async () => {
    mock = await startMockProvider();
    dispatcher = new Agent();
  });

  afterEach(async () => {
    await dispatcher.close();
    await mock.close();
  });

  describe('control headers', () => {
    it('echoes method, target, raw headers and body', async () => {
      const res = await send('/any/path?x=1&y=%20', { headers: { 'X-Mixed-Case': 'Kept', 'x-mock-echo': '1' }, body: 'héllo' });
      expect(res.status).to.equal(200);
      const echo = jsonOf(res.body.toString());
      expect(echo['method']).to.equal('POST');
      expect(echo['target']).to.equal('/any/path?x=1&y=%20');
      const rawHeaders = echo['rawHeaders'] as string[];
      expect(rawHeaders[rawHeaders.indexOf('X-Mixed-Case') + 1]).to.equal('Kept');
      expect(echo['body']).to.equal('héllo');
      expect(Buffer.from(echo['bodyBase64'] as string, 'base64').toString()).to.equal('héllo');

      expect(mock.requests).to.have.length(1);
      expect(mock.requests[0]?.body.toString()).to.equal('héllo');
      expect(mock.requests[0]?.aborted).to.equal(false);
    });

    it('answers x-mock-status with an error body and adds x-mock-headers', async () => {
      const res = await send('/v1/chat/completions', {
        headers: { 'x-mock-status': '429', 'x-mock-headers': '{"retry-after":"7","x-custom":"a"}' },
        body: { model: 'm', messages: [] },
      });
      expect(res.status).to.equal(429);
      expect(res.headers['retry-after']).to.equal('7');
      expect(res.headers['x-custom']).to.equal('a');
      expect(res.headers['content-type']).to.equal('application/json');
      expect(jsonOf(res.body.toString())).to.deep.equal({ error: { message: 'mock error 429', type: 'mock_error' } });
    });

    it('rejects malformed control headers with 400', async () => {
      const res = await send('/v1/messages', { headers: { 'x-mock-tokens': 'many' } });
      expect(res.status).to.equal(400);
      expect(res.body.toString()).to.include('x-mock-tokens');
    });

    it('answers 404 for unknown endpoints and tolerates an invalid JSON body', async () => {
      expect((await send('/v2/nothing', { body: '{' })).status).to.equal(404);
      const res = await send('/v1/chat/completions', { body: 'not json', headers: { 'x-mock-tokens': '2' } });
      expect(res.status).to.equal(200);
      expect(jsonOf(res.body.toString())['model']).to.equal('mock-model');
    });

    it('waits x-mock-first-byte-delay-ms before the headers', async () => {
      const started = Date.now();
      const res = await send('/v1/messages', { headers: { 'x-mock-first-byte-delay-ms': '150' }, body: {} });
      expect(res.status).to.equal(200);
      expect(Date.now() - started).to.be.at.least(140);
    });

    it('destroys the socket on x-mock-close without counting it as a client abort', async () => {
      let error: unknown;
      try {
        await send('/v1/messages', { headers: { 'x-mock-close': '1' }, body: {} });
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(Error);
      expect(mock.requests).to.have.length(1);
      expect(mock.requests[0]?.aborted).to.equal(false);
    });

    it('gzips a byte-chunked stream with a flush per event', async () => {
      const res = await send('/v1/messages', {
        headers: { 'x-mock-gzip': '1', 'x-mock-chunking': 'byte', 'x-mock-tokens': '3' },
        body: { stream: true },
      });
      expect(res.headers['content-encoding']).to.equal('gzip');
      const events = parseSse(gunzipSync(res.body).toString());
      expect(events.map((e) => e.event)).to.include('message_stop');
    });

    it('gzips a JSON body', async () => {
      const res = await send('/v1/chat/completions', { headers: { 'x-mock-gzip': '1' }, body: { model: 'g' } });
      expect(res.headers['content-encoding']).to.equal('gzip');
      expect(Number(res.headers['content-length'])).to.equal(res.body.length);
      expect(jsonOf(gunzipSync(res.body).toString())['model']).to.equal('g');
    });

    it('records an aborted stream and hands it to waitForAbort', async () => {
      const controller = new AbortController();
      const res = await request(`${mock.url}/v1/chat/completions`, {
        dispatcher,
        method: 'POST',
        headers: { 'x-mock-tokens': '1000', 'x-mock-delay-ms': '20' },
        body: JSON.stringify({ stream: true }),
        signal: controller.signal,
      });
      const reader = res.body[Symbol.asyncIterator]();
      await reader.next();
      controller.abort();
      res.body.on('error', () => {});

      const aborted = await mock.waitForAbort(2000);
      expect(aborted.aborted).to.equal(true);
      expect(aborted.abortedAt).to.be.a('number');
      expect(aborted.target).to.equal('/v1/chat/completions');
      expect(await mock.waitForAbort(10)).to.equal(aborted);
    });

    it('records a client abort of a hanging request', async () => {
      const controller = new AbortController();
      const pending = request(`${mock.url}/v1/messages`, {
        dispatcher,
        method: 'POST',
        headers: { 'x-mock-hang': '1' },
        body: '{}',
        signal: controller.signal,
      }).catch((err: unknown) => err);
      const waiting = mock.waitForAbort(2000);
      setTimeout(() => controller.abort(), 50);
      const aborted = await waiting;
      expect(aborted.method).to.equal('POST');
      expect(await pending).to.be.instanceOf(Error);
    });

    it('rejects waitForAbort after its timeout', async () => {
      let error: unknown;
      try {
        await mock.waitForAbort(20);
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(Error);
    });

    it('closes with a request still hanging', async () => {
      const pending = request(`${mock.url}/v1/messages`, {
        dispatcher,
        method: 'POST',
        headers: { 'x-mock-hang': '1' },
        body: '{}',
      }).catch((err: unknown) => err);
      const deadline = Date.now() + 2000;
      while (mock.requests.length === 0) {
        if (Date.now() > deadline) throw new Error('the hanging request never arrived');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await mock.close();
      expect(await pending).to.be.instanceOf(Error);
      expect(mock.requests[0]?.aborted).to.equal(false);
    });
  });

  describe('provider formats', () => {
    it('streams OpenAI chat chunks, then usage, then [DONE]', async () => {
      const res = await send('/prefix/v1/chat/completions', {
        headers: { 'x-mock-tokens': '3', 'x-mock-input-tokens': '7', 'x-mock-cache-read-tokens': '2' },
        body: { model: 'gpt-x', stream: true, stream_options: { include_usage: true } },
      });
      expect(res.headers['content-type']).to.equal('text/event-stream');
      const events = parseSse(res.body.toString());
      expect(events.at(-1)?.data).to.equal('[DONE]');
      const chunks = events.slice(0, -1).map((e) => jsonOf(e.data));
      const usageChunk = chunks.at(-1);
      expect(usageChunk?.['choices']).to.deep.equal([]);
      expect(usageChunk?.['usage']).to.deep.equal({
        prompt_tokens: 7,
        completion_tokens: 3,
        total_tokens: 10,
        prompt_tokens_details: { cached_tokens: 2 },
      });
      type Choice = { delta: { role?: string; content?: string }; finish_reason: string | null };
      const choices = chunks.slice(0, -1).map((c) => (c['choices'] as Choice[])[0]);
      expect(choices[0]?.delta.role).to.equal('assistant');
      expect(choices.map((c) => c?.delta.content ?? '').join('')).to.equal('tok0 tok1 tok2 ');
      expect(choices.at(-1)?.finish_reason).to.equal('stop');
      expect(chunks[0]?.['model']).to.equal('gpt-x');
    });

    it('leaves usage out of an OpenAI stream that did not ask for it', async () => {
      const res = await send('/v1/chat/completions', { body: { stream: true } });
      const events = parseSse(res.body.toString());
      expect(events.at(-1)?.data).to.equal('[DONE]');
      for (const e of events.slice(0, -1)) expect(jsonOf(e.data)).not.to.have.property('usage');
    });

    it('streams OpenAI Responses events ending with response.completed', async () => {
      const res = await send('/v1/responses', { headers: { 'x-mock-tokens': '2' }, body: { model: 'r', stream: true } });
      const events = parseSse(res.body.toString());
      for (const e of events) expect(jsonOf(e.data)['type']).to.equal(e.event);
      expect(events[0]?.event).to.equal('response.created');
      expect(events.filter((e) => e.event === 'response.output_text.delta')).to.have.length(2);
      const completed = jsonOf(events.at(-1)?.data ?? '{}');
      expect(completed['type']).to.equal('response.completed');
      const response = completed['response'] as { usage: Record<string, unknown> };
      expect(response.usage['output_tokens']).to.equal(2);
    });

    it('streams Anthropic events in protocol order', async () => {
      const res = await send('/v1/messages', {
        headers: { 'x-mock-tokens': '2', 'x-mock-cache-write-tokens': '4' },
        body: { model: 'claude-x', stream: true },
      });
      const events = parseSse(res.body.toString());
      expect(events.map((e) => e.event)).to.deep.equal([
        'message_start',
        'content_block_start',
        'ping',
        'content_block_delta',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ]);
      const start = jsonOf(events[0]?.data ?? '{}')['message'] as { usage: Record<string, number> };
      expect(start.usage).to.include({ input_tokens: 10, output_tokens: 1, cache_creation_input_tokens: 4 });
      expect(jsonOf(events[6]?.data ?? '{}')['usage']).to.deep.include({ input_tokens: 10, cache_creation_input_tokens: 4, output_tokens: 2 });
    });

    it('streams Gemini SSE with cumulative usage on every chunk', async () => {
      const res = await send('/v1beta/models/gemini-x:streamGenerateContent?alt=sse', {
        headers: { 'x-mock-tokens': '3' },
        body: {},
      });
      const text = res.body.toString();
      expect(text.endsWith('\r\n\r\n')).to.equal(true);
      const chunks = parseSse(text, '\r\n\r\n').map((e) => jsonOf(e.data));
      expect(chunks).to.have.length(3);
      const usage = chunks.map((c) => (c['usageMetadata'] as Record<string, number>)['candidatesTokenCount']);
      expect(usage).to.deep.equal([1, 2, 3]);
      expect(chunks[2]?.['modelVersion']).to.equal('gemini-x');
    });

    it('streams Gemini as a JSON array without alt=sse', async () => {
      const res = await send('/v1beta/models/gemini-x:streamGenerateContent', {
        headers: { 'x-mock-tokens': '2' },
        body: {},
      });
      const text = res.body.toString();
      expect(text.startsWith('[{')).to.equal(true);
      expect(text.endsWith('\n]')).to.equal(true);
      const chunks = JSON.parse(text) as unknown[];
      expect(chunks).to.have.length(2);
    });

    it('lists models for health checks', async () => {
      const openai = jsonOf((await send('/v1/models', { method: 'GET' })).body.toString());
      expect(openai['object']).to.equal('list');
      const gemini = jsonOf((await send('/v1beta/models', { method: 'GET' })).body.toString());
      expect(gemini['models']).to.be.an('array').that.is.not.empty;
    });
  });

  describe('over TLS', () => {
    it('serves HTTPS that a client trusting the test CA accepts', async () => {
      const certs = await createCertificates();
      const tlsMock = await startMockProvider({ tls: certs.server });
      const tlsDispatcher = new Agent({ connect: { ca: certs.ca.cert, servername: 'localhost' } });
      try {
        expect(tlsMock.url).to.equal(`https://127.0.0.1:${tlsMock.port}`);
        const res = await request(`${tlsMock.url}/v1/models`, { dispatcher: tlsDispatcher, headersTimeout: 5000 });
        expect(res.statusCode).to.equal(200);
        expect(((await res.body.json()) as Record<string, unknown>)['object']).to.equal('list');
      } finally {
        await tlsDispatcher.close();
        await tlsMock.close();
      }
    });
  });

  describe('official SDKs over plain HTTP', () => {
    it('openai: chat completion, stream and responses', async () => {
      const client = new OpenAI({ apiKey: 'x', baseURL: `${mock.url}/v1`, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: 'gpt-x', messages: [{ role: 'user', content: 'hi' }] });
      expect(completion.choices[0]?.message.content).to.equal('tok0 tok1 tok2 tok3 tok4 ');
      expect(completion.usage?.completion_tokens).to.equal(5);

      const stream = await client.chat.completions.create({
        model: 'gpt-x',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let totalTokens: number | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) totalTokens = chunk.usage.total_tokens;
      }
      expect(text).to.equal('tok0 tok1 tok2 tok3 tok4 ');
      expect(totalTokens).to.equal(15);

      const response = await client.responses.create({ model: 'gpt-x', input: 'hi' });
      expect(response.output_text).to.equal('tok0 tok1 tok2 tok3 tok4 ');
      const responseStream = client.responses.stream({ model: 'gpt-x', input: 'hi' });
      const final = await responseStream.finalResponse();
      expect(final.output_text).to.equal('tok0 tok1 tok2 tok3 tok4 ');
      expect(final.usage?.output_tokens).to.equal(5);
    });

    it('anthropic: message and stream', async () => {
      const client = new Anthropic({ apiKey: 'x', baseURL: mock.url, maxRetries: 0 });
      const params = { model: 'claude-x', max_tokens: 100, messages: [{ role: 'user' as const, content: 'hi' }] };
      const message = await client.messages.create(params);
      expect(message.content[0]?.type === 'text' && message.content[0].text).to.equal('tok0 tok1 tok2 tok3 tok4 ');

      const stream = client.messages.stream(params);
      let text = '';
      stream.on('text', (delta) => {
        text += delta;
      });
      const final = await stream.finalMessage();
      expect(text).to.equal('tok0 tok1 tok2 tok3 tok4 ');
      expect(final.usage.output_tokens).to.equal(5);
      expect(final.stop_reason).to.equal('end_turn');

      const raw = await client.messages.create({ ...params, stream: true });
      const types: string[] = [];
      for await (const event of raw) types.push(event.type);
      expect(types.at(-1)).to.equal('message_stop');
    });

    it('google genai: generateContent and generateContentStream', async () => {
      const ai = new GoogleGenAI({ apiKey: 'x', httpOptions: { baseUrl: mock.url } });
      const result = await ai.models.generateContent({ model: 'gemini-x', contents: 'hi' });
      expect(result.text).to.equal('tok0 tok1 tok2 tok3 tok4 ');
      expect(result.usageMetadata?.candidatesTokenCount).to.equal(5);

      const stream = await ai.models.generateContentStream({ model: 'gemini-x', contents: 'hi' });
      let text = '';
      let lastUsage: number | undefined;
      for await (const chunk of stream) {
        text += chunk.text ?? '';
        lastUsage = chunk.usageMetadata?.candidatesTokenCount;
      }
      expect(text).to.equal('tok0 tok1 tok2 tok3 tok4 ');
      expect(lastUsage).to.equal(5);
      expect(mock.requests.map((r) => r.target)).to.deep.equal([
        '/v1beta/models/gemini-x:generateContent',
        '/v1beta/models/gemini-x:streamGenerateContent?alt=sse',
      ]);
    });
  });
});
