import type { ErrorKind } from '../errors.js';
import { stripBearer, type ProviderTable } from './table.js';
import { createMaxOutputReader } from '../usage/max-output-tokens.js';
import { modelInBody } from '../usage/model-name.js';
import { count, has, isRecord, type UsageFormat, type TokenUsage } from '../usage/token-usage.js';

const errorTypes: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  upstream: 'api_error',
  unavailable: 'overloaded_error',
  rate_limited: 'rate_limit_error',
  timeout: 'timeout_error',
};

const fields: readonly (readonly [string, keyof TokenUsage])[] = [
  ['input_tokens', 'input'],
  ['output_tokens', 'output'],
  ['cache_read_input_tokens', 'cacheRead'],
  ['cache_creation_input_tokens', 'cacheWrite'],
];

// A stream reports usage twice: message_start (on its message) with the input and cache counts and a
// first output count, then message_delta with the final output count and, in newer API versions, the
// input and cache counts again. Every count is a running total, so a later report replaces a field
// rather than adding to it (adding would count cache reads twice). input_tokens already excludes
// what was read from or written to the cache.
const usage: UsageFormat = {
  key: 'usage',
  lastWins: false,
  read(document, into) {
    if (!isRecord(document)) return false;
    const message = document['message'];
    return fold(isRecord(message) ? message['usage'] : document['usage'], into);
  },
  readUsage: fold,
  model: (_path, body) => modelInBody(body),
  maxOutputTokens: createMaxOutputReader([['max_tokens']]),
  // text_delta, input_json_delta (tool input) and thinking_delta.
  textKeys: ['text', 'partial_json', 'thinking'],
};

function fold(reported: unknown, into: TokenUsage): boolean {
  if (!isRecord(reported)) return false;
  let found = false;
  for (const [field, kind] of fields) {
    if (!has(reported, field)) continue;
    into[kind] = count(reported[field]);
    found = true;
  }
  return found;
}

export const anthropicTable: ProviderTable = {
  type: 'anthropic',
  requiresUpstreamKey: true,
  // @anthropic-ai/sdk 1.x sends `Authorization: Bearer`, 0.x and curl users send x-api-key.
  clientKeyHeaders: ['x-api-key', 'authorization'],
  keyQueryParam: undefined,
  readClientKey: (header, value) => (header === 'authorization' ? stripBearer(value) : value.trim()),
  upstreamKeyHeaders: (key) => [['x-api-key', key]],
  errorBody: (_status, kind, _code, message) => JSON.stringify({ type: 'error', error: { type: errorTypes[kind], message } }),
  // Anthropic's stream format has a terminal error event; SDKs raise it instead of ending quietly.
  streamErrorEvent: (message) => `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`,
  usage,
};
