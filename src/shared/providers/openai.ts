import type { ErrorKind } from '../errors.js';
import { stripBearer, type ProviderTable } from './table.js';
import { createMaxOutputReader } from '../usage/max-output-tokens.js';
import { modelInBody } from '../usage/model-name.js';
import { count, has, isRecord, type UsageFormat } from '../usage/token-usage.js';

const errorTypes: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'invalid_request_error',
  not_found: 'invalid_request_error',
  too_large: 'invalid_request_error',
  upstream: 'server_error',
  unavailable: 'server_error',
  rate_limited: 'rate_limit_error',
  timeout: 'server_error',
};


function cachedTokens(details: unknown): number {
  return isRecord(details) ? count(details['cached_tokens']) : 0;
}

// Chat completions and embeddings report prompt/completion tokens (in the body, or in the one final
// stream chunk when the client set stream_options.include_usage); the Responses API reports
// input/output tokens on its response object, which stream events carry as `response`. Both count
// cached prompt tokens inside the prompt total.
const usage: UsageFormat = {
  key: 'usage',
  lastWins: true,
  read(document, into) {
    if (!isRecord(document)) return false;
    const holder = isRecord(document['response']) ? document['response'] : document;
    return usage.readUsage(holder['usage'], into);
  },
  readUsage(reported, into) {
    if (!isRecord(reported)) return false;
    let prompt: number;
    let cached: number;
    if (has(reported, 'prompt_tokens') || has(reported, 'completion_tokens')) {
      prompt = count(reported['prompt_tokens']);
      cached = cachedTokens(reported['prompt_tokens_details']);
      into.output = count(reported['completion_tokens']);
    } else if (has(reported, 'input_tokens') || has(reported, 'output_tokens')) {
      prompt = count(reported['input_tokens']);
      cached = cachedTokens(reported['input_tokens_details']);
      into.output = count(reported['output_tokens']);
    } else {
      return false;
    }
    into.cacheRead = Math.min(cached, prompt);
    into.input = prompt - into.cacheRead;
    into.cacheWrite = 0;
    return true;
  },
  model: (_path, body) => modelInBody(body),
  // Chat completions: max_completion_tokens, and the max_tokens it replaced; Responses: max_output_tokens.
  maxOutputTokens: createMaxOutputReader([['max_tokens'], ['max_completion_tokens'], ['max_output_tokens']]),
  // Chat stream deltas carry `content` (and `refusal`, tool-call `arguments`); Responses stream events
  // carry `delta`. Not `text`: the Responses API restates the whole text in its *.done events.
  textKeys: ['content', 'refusal', 'arguments', 'delta'],
};

export const openaiTable: ProviderTable = {
  type: 'openai',
  requiresUpstreamKey: false,
  clientKeyHeaders: ['authorization'],
  keyQueryParam: undefined,
  readClientKey: (_header, value) => stripBearer(value),
  upstreamKeyHeaders: (key) => [['authorization', `Bearer ${key}`]],
  // The OpenAI SDKs read error.message / error.type / error.code from this shape.
  errorBody: (_status, kind, code, message) => JSON.stringify({ error: { message, type: errorTypes[kind], param: null, code } }),
  streamErrorEvent: undefined,
  usage,
};
