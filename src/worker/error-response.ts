// Answers an exchange with one of the proxy's own errors, in the route's provider format.
import { proxyErrorHeader, proxyErrors, type ProxyErrorCode } from '../shared/errors.js';
import type { ProviderTable } from '../shared/providers/table.js';
import type { Downstream, OutgoingHeaders } from './downstream.js';

export function respondWithError(down: Downstream, table: ProviderTable, code: ProxyErrorCode, extraHeaders?: OutgoingHeaders): void {
  if (down.headersSent) {
    down.abort();
    return;
  }
  const spec = proxyErrors[code];
  const body = table.errorBody(spec.status, spec.kind, code, spec.message);
  try {
    down.respond(spec.status, {
      ...extraHeaders,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      [proxyErrorHeader]: code,
    });
    down.end(body);
  } catch {
    down.abort();
  }
}
