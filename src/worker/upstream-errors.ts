// Which proxy error an undici failure before the response headers becomes. Timeouts are 504 as in
// nginx; refusals, resolution and TLS failures 502 "unreachable"; a broken answer 502 "protocol".
import type { ProxyErrorCode } from '../shared/errors.js';

const timeouts = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const protocol = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_INFO', 'UND_ERR_RESPONSE_STATUS_CODE']);

export function classifyUpstreamError(err: Error): ProxyErrorCode {
  const code = (err as { code?: string }).code ?? '';
  if (timeouts.has(code)) return 'upstream_timeout';
  if (protocol.has(code) || code.startsWith('HPE_')) return 'upstream_protocol';
  return 'upstream_unreachable';
}

/** A short reason for logs, never containing a URL (a Gemini target carries the key in its query). */
export function upstreamErrorReason(err: Error): string {
  return (err as { code?: string }).code ?? err.name;
}

const connectionLoss = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/**
 * The connection died under the request, typically a pooled keep-alive socket the upstream had just
 * closed: worth one more try even on the same instance, unlike a refusal or a timeout.
 */
export function isConnectionLoss(err: Error): boolean {
  return connectionLoss.has((err as { code?: string }).code ?? '');
}
