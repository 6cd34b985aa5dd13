import type { ErrorKind } from '../errors.js';
import { stripBearer, type ProviderTable } from './table.js';

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
};
