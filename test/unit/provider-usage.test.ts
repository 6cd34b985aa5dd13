// One contract suite for every provider table's usage format: known documents, as each provider
// sends them, must give exactly the known token counts in the four disjoint kinds.
import { expect } from 'chai';
import { providerTables } from '../../src/shared/providers/registry.js';
import type { ProviderType } from '../../src/shared/config/schema.js';
import { emptyUsage, type TokenUsage } from '../../src/shared/usage/token-usage.js';

interface UsageCase {
  name: string;
  /** Documents in the order a response carries them. */
  documents: unknown[];
  expected: TokenUsage | undefined;
}

interface ModelCase {
  path: string;
  body: string | null;
  expected: string | undefined;
}

const cases: Record<ProviderType, { usage: UsageCase[]; model: ModelCase[] }> = {
  openai: {
    usage: [
      {
        name: 'chat completion body (cached tokens are part of prompt_tokens)',
        documents: [{ object: 'chat.completion', usage: { prompt_tokens: 20, completion_tokens: 7, total_tokens: 27, prompt_tokens_details: { cached_tokens: 4 } } }],
        expected: { input: 16, output: 7, cacheRead: 4, cacheWrite: 0 },
      },
      {
        name: 'chat stream: usage null on each chunk, then the final usage chunk',
        documents: [{ choices: [{ delta: { content: 'a' } }], usage: null }, { choices: [], usage: { prompt_tokens: 9, completion_tokens: 3 } }],
        expected: { input: 9, output: 3, cacheRead: 0, cacheWrite: 0 },
      },
      {
        name: 'Responses API: response.completed carries the response and its usage',
        documents: [
          { type: 'response.created', response: { usage: null } },
          { type: 'response.completed', response: { usage: { input_tokens: 30, input_tokens_details: { cached_tokens: 10 }, output_tokens: 5 } } },
        ],
        expected: { input: 20, output: 5, cacheRead: 10, cacheWrite: 0 },
      },
      { name: 'embeddings: prompt tokens only', documents: [{ object: 'list', usage: { prompt_tokens: 8, total_tokens: 8 } }], expected: { input: 8, output: 0, cacheRead: 0, cacheWrite: 0 } },
      { name: 'no usage', documents: [{ choices: [] }, { usage: null }, 'text', null], expected: undefined },
    ],
    model: [
      { path: '/v1/chat/completions', body: '{"messages":[],"model":"gpt-4o"}', expected: 'gpt-4o' },
      { path: '/v1/models', body: null, expected: undefined },
    ],
  },
  anthropic: {
    usage: [
      {
        name: 'message body',
        documents: [{ type: 'message', usage: { input_tokens: 20, output_tokens: 7, cache_read_input_tokens: 4, cache_creation_input_tokens: 3 } }],
        expected: { input: 20, output: 7, cacheRead: 4, cacheWrite: 3 },
      },
      {
        name: 'stream: message_delta restates the running totals; nothing is counted twice',
        documents: [
          { type: 'message_start', message: { usage: { input_tokens: 20, output_tokens: 1, cache_read_input_tokens: 4, cache_creation_input_tokens: 3 } } },
          { type: 'message_delta', usage: { output_tokens: 7, input_tokens: 20, cache_read_input_tokens: 4, cache_creation_input_tokens: 3 } },
        ],
        expected: { input: 20, output: 7, cacheRead: 4, cacheWrite: 3 },
      },
      {
        name: 'stream of an older API version: message_delta has the output count only',
        documents: [
          { type: 'message_start', message: { usage: { input_tokens: 12, output_tokens: 1, cache_read_input_tokens: 100 } } },
          { type: 'message_delta', usage: { output_tokens: 40 } },
        ],
        expected: { input: 12, output: 40, cacheRead: 100, cacheWrite: 0 },
      },
      {
        name: 'a stream cut after message_start keeps what it saw',
        documents: [{ type: 'message_start', message: { usage: { input_tokens: 5, output_tokens: 1 } } }],
        expected: { input: 5, output: 1, cacheRead: 0, cacheWrite: 0 },
      },
      { name: 'no usage', documents: [{ type: 'ping' }, { type: 'error', error: {} }], expected: undefined },
    ],
    model: [{ path: '/v1/messages', body: '{"model":"claude-sonnet-4-5","max_tokens":10}', expected: 'claude-sonnet-4-5' }],
  },
  gemini: {
    usage: [
      {
        name: 'generateContent body (cached content is part of the prompt count; thoughts are output)',
        documents: [{ candidates: [], usageMetadata: { promptTokenCount: 20, cachedContentTokenCount: 4, candidatesTokenCount: 7, thoughtsTokenCount: 2, totalTokenCount: 29 } }],
        expected: { input: 16, output: 9, cacheRead: 4, cacheWrite: 0 },
      },
      {
        name: 'stream: every chunk repeats the running totals, the last one wins',
        documents: [
          { usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 1 } },
          { usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 2 } },
          { usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 6, toolUsePromptTokenCount: 3 } },
        ],
        expected: { input: 13, output: 6, cacheRead: 0, cacheWrite: 0 },
      },
      { name: 'no usage', documents: [{ candidates: [] }, { error: { code: 400 } }], expected: undefined },
    ],
    model: [
      { path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=secret', body: '{"contents":[]}', expected: 'gemini-2.5-flash' },
      { path: '/v1/tunedModels/my%20tune:generateContent', body: null, expected: 'my tune' },
      { path: '/v1beta/models', body: null, expected: undefined },
    ],
  },
};

/** Folds the documents the way the tap does: each in turn, or only the last when the last wins. */
function fold(type: ProviderType, documents: unknown[]): TokenUsage | undefined {
  const format = providerTables[type].usage;
  const usage = emptyUsage();
  let found = false;
  const withUsage = documents.filter((document) => format.read(document, emptyUsage()));
  const read = format.lastWins ? withUsage.slice(-1) : withUsage;
  for (const document of read) found = format.read(document, usage) || found;
  return found ? usage : undefined;
}

for (const type of Object.keys(cases) as ProviderType[]) {
  describe(`usage format contract: ${type}`, function () {
    for (const { name, documents, expected } of cases[type].usage) {
      it(name, function () {
        expect(fold(type, documents)).to.deep.equal(expected);
        // The document key is what the tap searches for before parsing: every usage document has it.
        for (const document of documents) {
          if (providerTables[type].usage.read(document, emptyUsage())) expect(JSON.stringify(document)).to.include(`"${providerTables[type].usage.key}":{`);
        }
      });
    }
    it("reads a body's usage from the value of its key alone (as the tail yields it) as from the whole document", function () {
      const format = providerTables[type].usage;
      let compared = 0;
      for (const { documents } of cases[type].usage) {
        for (const document of documents) {
          if (typeof document !== 'object' || document === null) continue;
          const value = (document as Record<string, unknown>)[format.key];
          if (typeof value !== 'object' || value === null) continue;
          const fromDocument = emptyUsage();
          const fromValue = emptyUsage();
          expect(format.readUsage(value, fromValue)).to.equal(format.read(document, fromDocument));
          expect(fromValue).to.deep.equal(fromDocument);
          compared += 1;
        }
      }
      expect(compared, 'cases with a top-level usage object').to.be.greaterThan(0);
      expect(format.readUsage(null, emptyUsage())).to.equal(false);
      expect(format.readUsage('12', emptyUsage())).to.equal(false);
    });
    it('reads the model from the path or the body', function () {
      for (const { path, body, expected } of cases[type].model) {
        expect(providerTables[type].usage.model(path, body === null ? null : Buffer.from(body)), path).to.equal(expected);
      }
    });
  });
}
