// The request path of DESIGN section 4: route, authenticate, pick an instance, forward, stream back.
// Everything per-route was computed when the snapshot was compiled; this code only reads it.
import type { Dispatcher } from 'undici';
import { defaultErrorTable } from '../shared/providers/registry.js';
import { proxyErrors, type ProxyErrorCode } from '../shared/errors.js';
import type { ProviderTable } from '../shared/providers/table.js';
import type { Logger } from '../shared/log.js';
import type { Downstream } from './downstream.js';
import { respondWithError } from './error-response.js';
import { buildResponseHeaders, buildUpstreamHeaders, headerListSize } from './headers.js';
import { readQueryParam, replaceQueryParam } from './query-key.js';
import type { CompiledInstance, CompiledRoute, RouteTable } from './route-table.js';
import { classifyUpstreamError, upstreamErrorReason } from './upstream-errors.js';

export interface ExchangeContext {
  readonly routeTable: RouteTable;
  readonly log: Logger;
  nextRequestId(): string;
}

class ClientGoneError extends Error {
  readonly code = 'LLM_PROXY_CLIENT_GONE';
  constructor() {
    super('client went away');
  }
}

/** What the access log line reports about one exchange. */
class ExchangeRecord {
  readonly startedAt = performance.now();
  route: CompiledRoute | undefined;
  instance: CompiledInstance | undefined;
  ttfbMs = -1;
  status = 0;
  flag: string | undefined;
  reason: string | undefined;
  logged = false;

  constructor(
    readonly reqId: string,
    readonly down: Downstream,
  ) {}
}

export function handleExchange(down: Downstream, ctx: ExchangeContext): void {
  const record = new ExchangeRecord(ctx.nextRequestId(), down);
  const fail = (table: ProviderTable, code: ProxyErrorCode) => {
    record.status = proxyErrors[code].status;
    record.flag = proxyErrors[code].flag;
    respondWithError(down, table, code);
    writeAccessLog(ctx.log, record);
  };

  const target = down.target;
  // Only origin-form targets: an absolute URL or `*` must never steer where the request goes.
  if (target.charCodeAt(0) !== 0x2f || down.authority === '') return fail(defaultErrorTable, 'bad_request');
  const match = ctx.routeTable.lookup(down.authority, target);
  if (match === undefined) return fail(defaultErrorTable, 'no_route');
  const route = match.route;
  record.route = route;
  const table = route.table;
  const snapshot = ctx.routeTable.snapshot;

  if (route.spec.authRequired && !isAuthorised(down, route)) return fail(table, 'unauthorized');
  if (down.protocol === 'h2' && headerListSize(down.rawHeaders) > snapshot.limits.maxHeaderBytes) return fail(table, 'headers_too_large');
  if (down.declaredLength > snapshot.limits.maxBodyBytes) return fail(table, 'body_too_large');

  down.readBody(snapshot.limits.maxBodyBytes, (body) => {
    if (body === 'too_large') return fail(table, 'body_too_large');
    if (body instanceof Error) {
      record.flag = 'DC';
      record.reason = 'client closed during the request body';
      down.abort();
      return writeAccessLog(ctx.log, record);
    }
    const instance = route.picker.pick();
    record.instance = instance;
    forward(down, ctx, record, route, instance, match.upstreamTarget, body);
  });
}

function isAuthorised(down: Downstream, route: CompiledRoute): boolean {
  const table = route.table;
  const raw = down.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!route.credentialHeaders.has(name)) continue;
    const key = table.readClientKey(name, raw[i + 1] as string);
    if (key !== '' && route.keyMatcher.match(key) !== undefined) return true;
  }
  if (table.keyQueryParam !== undefined) {
    const key = readQueryParam(down.target, table.keyQueryParam);
    if (key !== undefined && route.keyMatcher.match(key) !== undefined) return true;
  }
  return false;
}

function forward(
  down: Downstream,
  ctx: ExchangeContext,
  record: ExchangeRecord,
  route: CompiledRoute,
  instance: CompiledInstance,
  upstreamTarget: string,
  body: Buffer | null,
): void {
  const table = route.table;
  const timeouts = ctx.routeTable.snapshot.timeouts;
  const path =
    table.keyQueryParam !== undefined && instance.encodedQueryKey !== undefined
      ? replaceQueryParam(upstreamTarget, table.keyQueryParam, instance.encodedQueryKey)
      : upstreamTarget;

  let controller: Dispatcher.DispatchController | undefined;
  let clientGone = false;
  let done = false;
  let eventStream = false;

  down.onClientGone(() => {
    if (done) return;
    clientGone = true;
    controller?.abort(new ClientGoneError());
  });

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(ctl) {
      controller = ctl;
      if (clientGone) ctl.abort(new ClientGoneError());
    },
    onResponseStart(ctl, statusCode, headers) {
      if (statusCode < 200) return;
      record.status = statusCode;
      record.ttfbMs = performance.now() - record.startedAt;
      const type = headers['content-type'];
      eventStream = typeof type === 'string' && type.includes('text/event-stream');
      try {
        down.respond(statusCode, buildResponseHeaders(headers, eventStream), eventStream);
      } catch {
        // Node refuses header values HTTP cannot carry; the upstream answer is unusable as sent.
        record.reason = 'invalid upstream response headers';
        ctl.abort(Object.assign(new Error('invalid upstream response headers'), { code: 'UND_ERR_INFO' }));
      }
    },
    onResponseData(ctl, chunk) {
      if (!down.write(chunk)) {
        ctl.pause();
        down.onceDrain(() => ctl.resume());
      }
    },
    onResponseEnd() {
      done = true;
      down.end();
      writeAccessLog(ctx.log, record);
    },
    onResponseError(_ctl, err) {
      done = true;
      if (clientGone || err instanceof ClientGoneError) {
        record.flag = 'DC';
        down.abort();
        return writeAccessLog(ctx.log, record);
      }
      record.reason = record.reason ?? upstreamErrorReason(err);
      if (!down.headersSent) {
        const code = classifyUpstreamError(err);
        record.status = proxyErrors[code].status;
        record.flag = proxyErrors[code].flag;
        respondWithError(down, table, code);
      } else {
        // Mid-stream failure: never a clean end after a 200 (the client would take a cut answer as whole).
        record.flag = 'UC';
        const event = table.streamErrorEvent;
        if (event !== undefined && eventStream) {
          try {
            down.write(Buffer.from(event('upstream stream interrupted')));
          } catch {
            // the stream is being cut anyway
          }
        }
        down.abort();
      }
      writeAccessLog(ctx.log, record);
    },
  };

  instance.pool.dispatch(
    {
      path,
      method: down.method,
      headers: buildUpstreamHeaders(down.rawHeaders, route, instance),
      body,
      headersTimeout: timeouts.firstByteMs,
      bodyTimeout: timeouts.idleMs,
    },
    handler,
  );
}

function writeAccessLog(log: Logger, record: ExchangeRecord): void {
  if (record.logged) return;
  record.logged = true;
  const down = record.down;
  const q = down.target.indexOf('?');
  log.info(
    {
      reqId: record.reqId,
      method: down.method,
      // Never the query: a Gemini client may carry its key there.
      path: q === -1 ? down.target : down.target.slice(0, q),
      protocol: down.protocol,
      route: record.route?.spec.label,
      provider: record.route?.spec.type,
      instance: record.instance?.spec.name,
      status: record.status,
      code: record.flag,
      reason: record.reason,
      bytesIn: down.bytesIn,
      bytesOut: down.bytesOut,
      ttfbMs: record.ttfbMs < 0 ? undefined : round(record.ttfbMs),
      durationMs: round(performance.now() - record.startedAt),
    },
    'request',
  );
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
