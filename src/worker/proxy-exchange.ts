// The request path of DESIGN section 4: route, authenticate, pick an instance, forward, fail over,
// stream back. Everything per-route was computed when the snapshot was compiled; this code only
// reads it. This module admits a request and makes its first attempt; exchange.ts runs the attempts.
import { defaultErrorTable } from '../shared/providers/registry.js';
import type { ProxyErrorCode } from '../shared/errors.js';
import type { ProviderTable } from '../shared/providers/table.js';
import type { ClientKeySpec, RateLimitSpec } from '../shared/snapshot.js';
import { requestTokens, type RequestTokens } from '../shared/usage/estimate.js';
import { ExchangeRecord, writeAccessLog } from './access-log.js';
import { BodyHold } from './body-budget.js';
import type { Downstream } from './downstream.js';
import { answerWithProxyError } from './error-response.js';
import { Exchange, type ExchangeContext } from './exchange.js';
import { headerListSize } from './headers.js';
import { readQueryParam } from './query-key.js';
import type { LimitReason } from './rate-limits.js';
import { isForwardableTarget } from './request-target.js';
import { retryAfterSeconds, type CompiledInstance, type CompiledRoute, type RouteMatch, type RouteTable } from './route-table.js';

export type { ExchangeContext } from './exchange.js';

const limitErrors: Record<LimitReason, ProxyErrorCode> = {
  requests: 'key_requests_limited',
  tokens: 'key_tokens_limited',
  concurrent: 'key_concurrency_limited',
  unavailable: 'rate_limit_store_unavailable',
};

export function handleExchange(down: Downstream, ctx: ExchangeContext): void {
  const record = new ExchangeRecord(ctx.nextRequestId(), down);
  down.reqId = record.reqId;
  const fail = (table: ProviderTable, code: ProxyErrorCode) => answerWithProxyError(ctx, record, table, code);

  const target = down.target;
  if (!isForwardableTarget(target) || down.authority === '' || down.conflictingHost) return fail(defaultErrorTable, 'bad_request');
  if (down.rejection !== undefined) return fail(defaultErrorTable, down.rejection);
  const routeTable = ctx.routeTable;
  const match = routeTable.lookup(down.authority, target);
  if (match === undefined) return fail(defaultErrorTable, 'no_route');
  const route = match.route;
  record.route = route;
  record.upstreamTarget = match.upstreamTarget;
  const table = route.table;

  if (route.spec.authRequired) {
    const clientKey = authorisedKey(down, route);
    if (clientKey === undefined) return fail(table, 'unauthorized');
    record.clientKey = clientKey;
    const limit = clientKey.limit;
    // A key with tokens_per_minute is admitted once its body is in (see forward): its reservation is
    // read from the body. Any other limited key is admitted before its body is read.
    if (limit !== undefined && limit.tokensPerMinute === undefined) {
      return admit(ctx, record, route, limit, undefined, () => forward(down, ctx, routeTable, record, match));
    }
  }
  forward(down, ctx, routeTable, record, match);
}

/** Admits the request under its key's limits and goes on, or answers the refusal. */
function admit(ctx: ExchangeContext, record: ExchangeRecord, route: CompiledRoute, limit: RateLimitSpec, request: RequestTokens | undefined, next: () => void): void {
  ctx.limits.admit(
    limit,
    (result) => {
      if (!result.ok) {
        ctx.metrics.rateLimited(route.metrics, result.reason, record.clientKey?.label ?? '');
        return answerWithProxyError(ctx, record, route.table, limitErrors[result.reason], { ...result.headers, 'retry-after': String(result.retryAfterS) });
      }
      record.admission = result.admission;
      next();
    },
    request,
  );
}

/**
 * An authorised request, admitted already unless its key has tokens_per_minute: checks its head,
 * reads its body, admits it by what the body declares if it was not, and makes the first attempt.
 */
function forward(down: Downstream, ctx: ExchangeContext, routeTable: RouteTable, record: ExchangeRecord, match: RouteMatch): void {
  const route = match.route;
  const table = route.table;
  const snapshot = routeTable.snapshot;
  const fail = (code: ProxyErrorCode) => answerWithProxyError(ctx, record, table, code);
  if (down.gone) {
    // Its stream will send no more events: reading its body would wait forever.
    record.flag = 'DC';
    record.reason = 'client closed while the request waited for admission';
    return writeAccessLog(ctx, record);
  }
  if (down.protocol === 'h2' && headerListSize(down.rawHeaders) > snapshot.limits.maxHeaderBytes) return fail('headers_too_large');
  if (down.declaredLength > snapshot.limits.maxBodyBytes) return fail('body_too_large');
  // Refused before a byte is read when its declared length cannot fit: the client may retry soon
  // (or elsewhere) rather than upload a body that would be dropped.
  const overBudget = () => answerWithProxyError(ctx, record, table, 'buffer_budget_exhausted', { 'retry-after': '1' });
  const budgetBytes = snapshot.limits.maxBufferedBytes;
  if (down.declaredLength > 0 && ctx.bodyBudget.used + down.declaredLength > budgetBytes) return overBudget();

  const limits = { maxBytes: snapshot.limits.maxBodyBytes, idleMs: snapshot.timeouts.idleMs, budget: ctx.bodyBudget, budgetBytes };
  down.readBody(limits, (body) => {
    if (body === 'too_large') return fail('body_too_large');
    if (body === 'timeout') return fail('request_timeout');
    if (body === 'over_budget') return overBudget();
    if (body instanceof Error) {
      record.flag = 'DC';
      record.reason = 'client closed during the request body';
      down.abort();
      return writeAccessLog(ctx, record);
    }
    // Given back by writeAccessLog at the latest, by the exchange as soon as no attempt may follow.
    if (body !== null) record.bodyHold = new BodyHold(ctx.bodyBudget, body.length);
    const limit = record.clientKey?.limit;
    if (limit?.tokensPerMinute === undefined) return dispatch(down, ctx, routeTable, record, match, body);
    // A walk over the body's top-level keys that skips every value (json-members.ts), not a parse.
    const request = requestTokens(body, table.usage.maxOutputTokens(body));
    record.requestTokens = request;
    admit(ctx, record, route, limit, request, () => {
      if (!down.gone) return dispatch(down, ctx, routeTable, record, match, body);
      record.flag = 'DC';
      record.reason = 'client closed while the request waited for admission';
      writeAccessLog(ctx, record);
    });
  });
}

/** The first attempt of a request whose body is in: to the half-open instance on trial, or a picked one. */
function dispatch(down: Downstream, ctx: ExchangeContext, routeTable: RouteTable, record: ExchangeRecord, match: RouteMatch, body: Buffer | null): void {
  const route = match.route;
  // The model is read once the request is handed to undici, so the scan (a walk over the body's
  // top-level keys that skips every value, not a parse) never delays it, and the log line needs no
  // copy of the body.
  const readModel = () => (record.model = route.table.usage.model(match.upstreamTarget, body));
  const start = (instance: CompiledInstance, trial: boolean) => {
    new Exchange(down, ctx, routeTable, record, route, match.upstreamTarget, body).attempt(instance, trial);
    readModel();
  };
  const trial = route.trial;
  if (trial !== undefined) {
    route.trial = undefined;
    if (ctx.health.takeTrial(trial.spec.id)) return start(trial, true);
  }
  const selection = route.selection;
  if (selection.picker === undefined) {
    const code = selection.rateLimited ? 'upstream_rate_limited' : 'no_healthy_upstream';
    if (selection.rateLimited) ctx.metrics.rateLimited(route.metrics, 'upstream', record.clientKey?.label ?? '');
    readModel();
    return answerWithProxyError(ctx, record, route.table, code, { 'retry-after': String(retryAfterSeconds(selection)) });
  }
  start(selection.picker.pick(), false);
}

/** The configured key one of the request's credentials matches, if any. */
function authorisedKey(down: Downstream, route: CompiledRoute): ClientKeySpec | undefined {
  const table = route.table;
  const raw = down.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!route.credentialHeaders.has(name)) continue;
    const key = table.readClientKey(name, raw[i + 1] as string);
    const matched = key === '' ? undefined : route.keyMatcher.match(key);
    if (matched !== undefined) return matched;
  }
  if (table.keyQueryParam !== undefined) {
    const key = readQueryParam(down.target, table.keyQueryParam);
    if (key !== undefined) return route.keyMatcher.match(key);
  }
  return undefined;
}
