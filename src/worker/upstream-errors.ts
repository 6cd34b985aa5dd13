// Which proxy error an undici failure before the response headers becomes. Timeouts are 504 as in
// nginx; refusals, resolution and TLS failures 502 "unreachable"; a broken answer 502 "protocol".
import type { ProxyErrorCode } from '../shared/errors.js';
import type { UpstreamErrorReason } from './metrics.js';

const timeouts = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const protocol = new Set(['UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_INFO', 'UND_ERR_RESPONSE_STATUS_CODE']);

export function classifyUpstreamError(err: Error): ProxyErrorCode {
  const code = (err as { code?: string }).code ?? '';
  if (timeouts.has(code)) return 'upstream_timeout';
  // undici's HTTPParserError carries its llhttp code only sometimes; its name always.
  if (protocol.has(code) || code.startsWith('HPE_') || err.name === 'HTTPParserError') return 'upstream_protocol';
  return 'upstream_unreachable';
}

/** The metric reason of a failure before the response head. */
export function upstreamErrorKind(err: Error): UpstreamErrorReason {
  const code = classifyUpstreamError(err);
  return code === 'upstream_timeout' ? 'timeout' : code === 'upstream_protocol' ? 'protocol' : 'unreachable';
}

/** A short reason for logs, never containing a URL (a Gemini target carries the key in its query). */
export function upstreamErrorReason(err: Error): string {
  return (err as { code?: string }).code ?? err.name;
}

// Failures that happen before the request can have reached the upstream: nothing was sent, so a
// second instance may safely get it.
const beforeSending = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
  // The pool of a removed upstream, closed by a reload while this request was on the old table.
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);
// TLS verification failures (expired, untrusted, wrong name) also stop the connection before a byte of the request.
const tlsFailure = /CERT|SIGNATURE|ERR_TLS|ERR_SSL|UNABLE_TO_(GET|VERIFY)/;

/**
 * Whether a failure before the response head may go to another instance: connect-phase failures, and
 * the first-byte timeout (issue 4 names it; the first upstream may still be generating, which is the
 * price of not waiting longer). A reset or a broken answer after the request went out is not retried.
 */
export function isSafeToRetry(err: Error): boolean {
  const code = (err as { code?: string }).code ?? '';
  return beforeSending.has(code) || code === 'UND_ERR_HEADERS_TIMEOUT' || tlsFailure.test(code);
}
