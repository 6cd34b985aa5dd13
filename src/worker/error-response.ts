// Answers an exchange with one of the proxy's own errors, in the route's provider format.
import { proxyErrorHeader, proxyErrors, type ProxyErrorCode } from '../shared/errors.js';
import type { ProviderTable } from '../shared/providers/table.js';
import { writeAccessLog, type AccessLogContext, type ExchangeRecord } from './access-log.js';
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

/** The proxy answers by itself (in the route's provider format) and logs the exchange. */
export function answerWithProxyError(ctx: AccessLogContext, record: ExchangeRecord, table: ProviderTable, code: ProxyErrorCode, extraHeaders?: OutgoingHeaders): void {
  record.status = proxyErrors[code].status;
  record.flag = proxyErrors[code].flag;
  const limitHeaders = record.admission?.headers;
  respondWithError(record.down, table, code, limitHeaders === undefined ? extraHeaders : { ...limitHeaders, ...extraHeaders });
  writeAccessLog(ctx, record);
}
