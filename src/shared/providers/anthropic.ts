import type { ErrorKind } from '../errors.js';
import { stripBearer, type ProviderTable } from './table.js';

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
};
