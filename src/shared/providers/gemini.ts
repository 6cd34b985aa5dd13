import type { ErrorKind } from '../errors.js';
import type { ProviderTable } from './table.js';
import { createMaxOutputReader } from '../usage/max-output-tokens.js';
import { count, isRecord, type UsageFormat } from '../usage/token-usage.js';

// google.rpc.Code names, which @google/genai shows with the message.
const statusNames: Record<ErrorKind, string> = {
  invalid_request: 'INVALID_ARGUMENT',
  authentication: 'UNAUTHENTICATED',
  not_found: 'NOT_FOUND',
  too_large: 'INVALID_ARGUMENT',
  upstream: 'UNAVAILABLE',
  unavailable: 'UNAVAILABLE',
  rate_limited: 'RESOURCE_EXHAUSTED',
  timeout: 'DEADLINE_EXCEEDED',
};

// The model is part of the path (/v1beta/models/gemini-2.5-flash:generateContent), never the body.
const modelInPath = /\/(?:models|tunedModels)\/([^/:?]+)/;

function modelFromPath(path: string): string | undefined {
  const found = modelInPath.exec(path)?.[1];
  if (found === undefined) return undefined;
  try {
    return decodeURIComponent(found);
  } catch {
    return found;
  }
}

// usageMetadata is a running total that every stream chunk repeats, so the last one wins. The
// prompt count includes the cached part; thinking tokens are billed as output but reported apart,
// and so are the tokens of tool-use prompts on the input side.
const usage: UsageFormat = {
  key: 'usageMetadata',
  lastWins: true,
  read(document, into) {
    return isRecord(document) && usage.readUsage(document['usageMetadata'], into);
  },
  readUsage(reported, into) {
    if (!isRecord(reported)) return false;
    const prompt = count(reported['promptTokenCount']) + count(reported['toolUsePromptTokenCount']);
    into.cacheRead = Math.min(count(reported['cachedContentTokenCount']), prompt);
    into.input = prompt - into.cacheRead;
    into.output = count(reported['candidatesTokenCount']) + count(reported['thoughtsTokenCount']);
    into.cacheWrite = 0;
    return true;
  },
  model: (path) => modelFromPath(path),
  // The REST API takes proto field names in either spelling.
  maxOutputTokens: createMaxOutputReader([
    ['generationConfig', 'maxOutputTokens'],
    ['generation_config', 'max_output_tokens'],
  ]),
  // Every part's text, thoughts included (billed as output).
  textKeys: ['text'],
};

export const geminiTable: ProviderTable = {
  type: 'gemini',
  requiresUpstreamKey: true,
  clientKeyHeaders: ['x-goog-api-key'],
  keyQueryParam: 'key',
  readClientKey: (_header, value) => value.trim(),
  upstreamKeyHeaders: (key) => [['x-goog-api-key', key]],
  errorBody: (status, kind, _code, message) => JSON.stringify({ error: { code: status, message, status: statusNames[kind] } }),
  streamErrorEvent: undefined,
  usage,
};
