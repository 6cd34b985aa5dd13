// Every error the proxy answers by itself, in one table: status, a provider-neutral kind that each
// provider table maps to its own error type, the short access-log flag (Envoy style) and the message.
export type ErrorKind = 'invalid_request' | 'authentication' | 'not_found' | 'too_large' | 'upstream' | 'unavailable' | 'rate_limited' | 'timeout';

export interface ProxyErrorSpec {
  status: number;
  kind: ErrorKind;
  /** Short response flag for the access log, after Envoy's (NR = no route, UF = upstream failure, ...). */
  flag: string;
  message: string;
}

export const proxyErrors = {
  bad_request: { status: 400, kind: 'invalid_request', flag: 'BR', message: 'Malformed request.' },
  unauthorized: { status: 401, kind: 'authentication', flag: 'UA', message: 'Invalid or missing API key for this proxy route.' },
  no_route: { status: 404, kind: 'not_found', flag: 'NR', message: 'No route for this host and path.' },
  request_timeout: { status: 408, kind: 'invalid_request', flag: 'RT', message: 'The request body stopped arriving; send it again.' },
  body_too_large: { status: 413, kind: 'too_large', flag: 'BL', message: 'Request body exceeds the proxy limit.' },
  headers_too_large: { status: 431, kind: 'too_large', flag: 'HL', message: 'Request headers exceed the proxy limit.' },
  unsupported_transfer_coding: {
    status: 501,
    kind: 'invalid_request',
    flag: 'TC',
    message: 'Transfer codings other than chunked are not supported; send the body with Content-Length or chunked alone.',
  },
  upstream_unreachable: { status: 502, kind: 'upstream', flag: 'UF', message: 'Upstream provider unreachable.' },
  upstream_protocol: { status: 502, kind: 'upstream', flag: 'UP', message: 'Upstream provider sent an invalid response.' },
  upstream_timeout: { status: 504, kind: 'timeout', flag: 'UT', message: 'Upstream provider timed out.' },
  key_requests_limited: {
    status: 429,
    kind: 'rate_limited',
    flag: 'RL',
    message: 'This API key is over its requests-per-minute limit on this proxy; retry after the time given.',
  },
  key_tokens_limited: {
    status: 429,
    kind: 'rate_limited',
    flag: 'RL',
    message: 'This API key is over its tokens-per-minute limit on this proxy; retry after the time given.',
  },
  key_concurrency_limited: {
    status: 429,
    kind: 'rate_limited',
    flag: 'RL',
    message: 'This API key has as many requests in flight as this proxy allows it; retry when one has finished.',
  },
  upstream_rate_limited: {
    status: 429,
    kind: 'rate_limited',
    flag: 'UR',
    message: 'Every upstream key of this route is rate limited by the provider; retry after the time given.',
  },
  rate_limit_store_unavailable: {
    status: 503,
    kind: 'unavailable',
    flag: 'SU',
    message: "This API key's limits are kept in a shared store that is out of reach, and the proxy is set to refuse limited keys until it is back; retry later.",
  },
  no_healthy_upstream: { status: 503, kind: 'unavailable', flag: 'UH', message: 'No healthy upstream instance for this route; retry later.' },
  buffer_budget_exhausted: {
    status: 503,
    kind: 'unavailable',
    flag: 'BB',
    message: 'This proxy worker holds as many request bodies as its buffer budget allows; retry shortly.',
  },
} as const satisfies Record<string, ProxyErrorSpec>;

export type ProxyErrorCode = keyof typeof proxyErrors;

/** Header naming the proxy-made error, so clients and tests tell it from a relayed upstream error. */
export const proxyErrorHeader = 'x-llm-proxy-error';
