import type { ErrorKind } from '../errors.js';
import type { ProviderTable } from './table.js';

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

export const geminiTable: ProviderTable = {
  type: 'gemini',
  requiresUpstreamKey: true,
  clientKeyHeaders: ['x-goog-api-key'],
  keyQueryParam: 'key',
  readClientKey: (_header, value) => value.trim(),
  upstreamKeyHeaders: (key) => [['x-goog-api-key', key]],
  errorBody: (status, kind, _code, message) => JSON.stringify({ error: { code: status, message, status: statusNames[kind] } }),
  streamErrorEvent: undefined,
};
