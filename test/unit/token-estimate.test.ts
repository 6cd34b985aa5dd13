// The tokens-per-minute rules of estimate.ts (what a request reserves, what a response that reports
// no usage is charged), and the byte-level readers they rest on: each provider table's declared output
// cap in a request body, and the generated text a response relays, counted by the usage tap. The
// provider parts are one contract suite run for openai, anthropic and gemini.
import { expect } from 'chai';
import type { ProviderType } from '../../src/shared/config/schema.js';
import { providerTables } from '../../src/shared/providers/registry.js';
import { chargedTokens, requestTokens, reservedTokens, tokensOfBytes, type RequestTokens, type ResponseSeen } from '../../src/shared/usage/estimate.js';
import { stringValueBytes } from '../../src/shared/usage/json-key.js';
import { createUsageTap } from '../../src/worker/usage-tap.js';

const usage = (input: number, output: number) => ({ input, output, cacheRead: 0, cacheWrite: 0 });
const seen = (values: Partial<ResponseSeen>): ResponseSeen => ({ answered: true, complete: true, usage: undefined, textBytes: 0, ...values });
const request = (prompt: number, maxOutput?: number): RequestTokens => ({ prompt, maxOutput });

describe('token estimate: reservation', function () {
  it('a prompt is its body bytes / 4, rounded up; no body is 0', function () {
    expect(tokensOfBytes(0)).to.equal(0);
    expect(tokensOfBytes(1)).to.equal(1);
    expect(tokensOfBytes(400)).to.equal(100);
    expect(requestTokens(Buffer.alloc(401), 50)).to.deep.equal({ prompt: 101, maxOutput: 50 });
    expect(requestTokens(null, undefined)).to.deep.equal({ prompt: 0, maxOutput: undefined });
  });

  it('reserves prompt + declared output, whatever the key has been costing', function () {
    expect(reservedTokens(request(20, 100), 900, 1000)).to.equal(120);
    expect(reservedTokens(request(20, 100), 0, 1000)).to.equal(120);
  });

  it('a request declaring more than the limit reserves the whole limit (admitted once the bucket is full)', function () {
    expect(reservedTokens(request(25, 5000), 0, 1000)).to.equal(1000);
  });

  it('without a declared output: the larger of the prompt and the key’s average', function () {
    expect(reservedTokens(request(20), 300, 1000)).to.equal(300);
    expect(reservedTokens(request(600), 300, 1000)).to.equal(600);
    expect(reservedTokens(request(5000), 300, 1000)).to.equal(1000);
  });

  it('nothing known: the average, at least 1', function () {
    expect(reservedTokens(undefined, 0, 1000)).to.equal(1);
    expect(reservedTokens(request(0), 0, 1000)).to.equal(1);
    expect(reservedTokens(undefined, 250, 1000)).to.equal(250);
  });
});

describe('token estimate: charge', function () {
  it('a whole response that reports usage is charged as reported', function () {
    expect(chargedTokens(request(500, 4000), seen({ usage: usage(10, 20), textBytes: 9999 }), 1000)).to.equal(30);
  });

  it('a whole response without usage: prompt + relayed text / 4, never zero', function () {
    expect(chargedTokens(request(25), seen({ textBytes: 2000 }), 1000)).to.equal(525);
    expect(chargedTokens(request(0), seen({ textBytes: 0 }), 1000)).to.equal(1);
  });

  it('a whole response without usage that declared its output is charged at least that (capped at the limit)', function () {
    expect(chargedTokens(request(25, 100), seen({ textBytes: 40 }), 1000)).to.equal(125);
    expect(chargedTokens(request(25, 5000), seen({ textBytes: 40 }), 1000)).to.equal(1000);
    // More relayed than the limit: what was relayed, which the cap does not hide.
    expect(chargedTokens(request(25, 5000), seen({ textBytes: 8000 }), 1000)).to.equal(2025);
  });

  it('the relayed estimate is no more than the output the request declared', function () {
    expect(chargedTokens(request(25, 100), seen({ complete: false, textBytes: 4000 }), 1000)).to.equal(125);
  });

  it('a cut stream is charged what it relayed, or what it reported before the cut if that is more', function () {
    expect(chargedTokens(request(25, 5000), seen({ complete: false, textBytes: 400 }), 1000)).to.equal(125);
    expect(chargedTokens(request(25), seen({ complete: false, usage: usage(300, 1), textBytes: 400 }), 1000)).to.equal(301);
    expect(chargedTokens(request(25), seen({ complete: false, usage: usage(20, 1), textBytes: 4000 }), 1000)).to.equal(1025);
    expect(chargedTokens(request(0), seen({ complete: false }), 1000)).to.equal(1);
  });

  it('an error answer (or none) costs nothing: its reservation goes back', function () {
    expect(chargedTokens(request(25, 5000), seen({ answered: false, complete: false }), 1000)).to.equal(0);
  });
});

describe('token estimate: text bytes of a key’s string values', function () {
  const content = Buffer.from('"content"');
  it('counts every string value of the key, escapes as encoded, and nothing else', function () {
    const text = Buffer.from('{"choices":[{"delta":{"content":"Hello"}},{"delta":{"content" : "a\\"b\\\\"}}],"content":{"x":"not a string"},"other":"content"}');
    expect(stringValueBytes(text, content)).to.equal(5 + 6);
  });

  it('a key quoted inside a text value is not taken for one', function () {
    expect(stringValueBytes(Buffer.from('{"content":"say \\"content\\": \\"x\\""}'), content)).to.equal(22);
  });

  it('a value cut off by the end counts to the end', function () {
    expect(stringValueBytes(Buffer.from('{"content":"abc'), content)).to.equal(3);
  });
});

interface ProviderCase {
  /** Request bodies and the output cap each declares. */
  maxOutput: [unknown, number | undefined][];
  /** A streamed response (SSE) and the generated text in it. */
  stream: string;
  text: string;
}

const sse = (events: unknown[]) => events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join('');
const generated = 'Hello, world! {"tool": 1}';

const cases: Record<ProviderType, ProviderCase> = {
  openai: {
    maxOutput: [
      [{ model: 'gpt-4o', max_tokens: 300, messages: [] }, 300],
      [{ model: 'o3', max_completion_tokens: 2000 }, 2000],
      [{ model: 'o3', max_tokens: 100, max_completion_tokens: 2000 }, 2000],
      [{ model: 'gpt-4.1', input: 'hi', max_output_tokens: 64 }, 64],
      [{ model: 'gpt-4o', messages: [{ role: 'user', content: '"max_tokens": 9' }], tools: [{ max_tokens: 7 }], metadata: { max_tokens: 8 } }, undefined],
      [{ model: 'gpt-4o', max_tokens: null }, undefined],
      [{ model: 'gpt-4o', max_tokens: '300' }, undefined],
    ],
    stream:
      sse([
        { object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello, ' } }] },
        { object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'world! ' } }] },
        { object: 'chat.completion.chunk', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'f', arguments: '{"tool": 1}' } }] } }] },
        { object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      ]) + 'data: [DONE]\n\n',
    text: generated,
  },
  anthropic: {
    maxOutput: [
      [{ model: 'claude-sonnet-4', max_tokens: 1024, messages: [] }, 1024],
      [{ model: 'claude-sonnet-4', messages: [{ role: 'user', content: [{ type: 'text', text: 'x', max_tokens: 5 }] }] }, undefined],
    ],
    stream: [
      `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { content: [], usage: { input_tokens: 5, output_tokens: 1 } } })}\n\n`,
      `event: content_block_start\ndata: ${JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } })}\n\n`,
      `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Hello, ' } })}\n\n`,
      `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'world! ' } })}\n\n`,
      `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"tool": 1}' } })}\n\n`,
    ].join(''),
    text: generated,
  },
  gemini: {
    maxOutput: [
      [{ contents: [], generationConfig: { temperature: 0.2, maxOutputTokens: 512 } }, 512],
      [{ contents: [], generation_config: { max_output_tokens: 256 } }, 256],
      [{ contents: [{ parts: [{ text: 'x' }] }], maxOutputTokens: 5, systemInstruction: { generationConfig: { maxOutputTokens: 6 } } }, undefined],
    ],
    stream: sse([
      { candidates: [{ content: { role: 'model', parts: [{ text: 'Hello, ', thought: true }] } }], usageMetadata: { promptTokenCount: 3 } },
      { candidates: [{ content: { role: 'model', parts: [{ text: 'world! ' }, { text: '{"tool": 1}' }] } }] },
    ]),
    text: generated,
  },
};

/** What the usage tap finds in a body: the generated-text bytes, fed at once and one byte at a time. */
function tappedTextBytes(type: ProviderType, body: string, byteAtATime: boolean, countText = true): number {
  const tap = createUsageTap(providerTables[type].usage, { 'content-type': 'text/event-stream' }, true, countText);
  if (tap === undefined) throw new Error('no tap');
  const bytes = Buffer.from(body);
  if (byteAtATime) for (const byte of bytes) tap.push(Buffer.from([byte]));
  else tap.push(bytes);
  let counted = -1;
  tap.finish((_usage, textBytes) => (counted = textBytes));
  return counted;
}

for (const [type, providerCase] of Object.entries(cases) as [ProviderType, ProviderCase][]) {
  describe(`token estimate contract: ${type}`, function () {
    const usageFormat = providerTables[type].usage;

    it('reads the output cap a request declares, and nothing nested or quoted that looks like it', function () {
      for (const [body, expected] of providerCase.maxOutput) {
        expect(usageFormat.maxOutputTokens(Buffer.from(JSON.stringify(body))), JSON.stringify(body)).to.equal(expected);
      }
      expect(usageFormat.maxOutputTokens(null)).to.equal(undefined);
      expect(usageFormat.maxOutputTokens(Buffer.from('not json'))).to.equal(undefined);
    });

    it('the usage tap counts the generated text a stream relays, split anywhere', function () {
      // JSON-encoded: the quotes inside the tool input count with their escapes.
      const encodedBytes = JSON.stringify(providerCase.text).length - 2;
      expect(tappedTextBytes(type, providerCase.stream, false)).to.equal(encodedBytes);
      expect(tappedTextBytes(type, providerCase.stream, true)).to.equal(encodedBytes);
      // Not asked to (a key without tokens_per_minute): the tap does not pay for the count.
      expect(tappedTextBytes(type, providerCase.stream, false, false)).to.equal(0);
    });
  });
}

describe('token estimate: OpenAI Responses streams', function () {
  it('count each delta once, not the text that the *.done events restate', function () {
    const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
    const body = [
      { type: 'response.output_text.delta', ...at, delta: 'Hello, ' },
      { type: 'response.output_text.delta', ...at, delta: 'world!' },
      { type: 'response.output_text.done', ...at, text: 'Hello, world!' },
      { type: 'response.content_part.done', ...at, part: { type: 'output_text', text: 'Hello, world!' } },
      { type: 'response.output_item.done', output_index: 0, item: { type: 'message', content: [{ type: 'output_text', text: 'Hello, world!' }] } },
    ]
      .map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
      .join('');
    expect(tappedTextBytes('openai', body, false)).to.equal('Hello, world!'.length);
  });
});
