// The request path of DESIGN section 4: route, authenticate, pick an instance, forward, fail over,
// stream back. Everything per-route was computed when the snapshot was compiled; this code only
// reads it.
import type { Dispatcher } from 'undici';
import { defaultErrorTable } from '../shared/providers/registry.js';
import { proxyErrors, type ProxyErrorCode } from '../shared/errors.js';
import type { ProviderTable } from '../shared/providers/table.js';
import type { Logger } from '../shared/log.js';
import type { Downstream, OutgoingHeaders } from './downstream.js';
import { contentDecoder } from './content-decoders.js';
import { respondWithError } from './error-response.js';
import { buildResponseHeaders, buildUpstreamHeaders, headerListSize } from './headers.js';
import type { UpstreamErrorReason, WorkerMetrics } from './metrics.js';
import type { OutcomeReporter } from './outcome-reporter.js';
import type { ClientKeySpec } from '../shared/snapshot.js';
import { totalTokens, type TokenUsage } from '../shared/usage/token-usage.js';
import { readQueryParam, replaceQueryParam } from './query-key.js';
import { isForwardableTarget } from './request-target.js';
import type { Admission, LimitReason, WorkerRateLimits } from './rate-limits.js';
import { retryAfterMs } from './retry-after.js';
import { retryAfterSeconds, type CompiledInstance, type CompiledRoute, type RouteMatch, type RouteTable } from './route-table.js';
import { classifyUpstreamError, isSafeToRetry, upstreamErrorKind, upstreamErrorReason } from './upstream-errors.js';
import { createUsageTap, type UsageTap } from './usage-tap.js';
import type { WorkerHealth } from './worker-health.js';

export interface ExchangeContext {
  readonly routeTable: RouteTable;
  readonly log: Logger;
  readonly outcomes: OutcomeReporter;
  readonly health: WorkerHealth;
  readonly metrics: WorkerMetrics;
  readonly limits: WorkerRateLimits;
  nextRequestId(): string;
}

type UpstreamHeaders = Record<string, string | string[] | undefined>;

class ClientGoneError extends Error {
  readonly code = 'LLM_PROXY_CLIENT_GONE';
  constructor() {
    super('client went away');
  }
}

/** The client stopped reading: its response could not be written for `timeouts.idle`. */
class ClientStalledError extends Error {
  readonly code = 'LLM_PROXY_CLIENT_STALLED';
  constructor() {
    super('client stopped reading the response');
  }
}

class HeldTooLongError extends Error {
  readonly code = 'LLM_PROXY_HELD_TOO_LONG';
  constructor() {
    super('upstream error body too long to hold for a retry');
  }
}

// An upstream error body is a few hundred bytes; one this large is not worth keeping for a retry.
const holdLimitBytes = 64 * 1024;

/** What the access log line reports about one exchange. */
class ExchangeRecord {
  readonly startedAt = performance.now();
  route: CompiledRoute | undefined;
  /** Request target as sent upstream (route prefix removed); '' until routed. */
  upstreamTarget = '';
  body: Buffer | null = null;
  instance: CompiledInstance | undefined;
  attempts = 0;
  usage: TokenUsage | undefined;
  /** The client key that authenticated the request (undefined on an open route). */
  clientKey: ClientKeySpec | undefined;
  admission: Admission | undefined;
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

/** The proxy answers by itself (in the route's provider format) and logs the exchange. */
function answerWithProxyError(ctx: ExchangeContext, record: ExchangeRecord, table: ProviderTable, code: ProxyErrorCode, extraHeaders?: OutgoingHeaders): void {
  record.status = proxyErrors[code].status;
  record.flag = proxyErrors[code].flag;
  const limitHeaders = record.admission?.headers;
  respondWithError(record.down, table, code, limitHeaders === undefined ? extraHeaders : { ...limitHeaders, ...extraHeaders });
  writeAccessLog(ctx, record);
}

const limitErrors: Record<LimitReason, ProxyErrorCode> = {
  requests: 'key_requests_limited',
  tokens: 'key_tokens_limited',
  concurrent: 'key_concurrency_limited',
};

export function handleExchange(down: Downstream, ctx: ExchangeContext): void {
  const record = new ExchangeRecord(ctx.nextRequestId(), down);
  const fail = (table: ProviderTable, code: ProxyErrorCode) => answerWithProxyError(ctx, record, table, code);

  const target = down.target;
  if (!isForwardableTarget(target) || down.authority === '' || down.conflictingHost) return fail(defaultErrorTable, 'bad_request');
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
    if (limit !== undefined) {
      return ctx.limits.admit(limit, (result) => {
        if (!result.ok) {
          ctx.metrics.rateLimited(route.metrics, result.reason, clientKey.label);
          return answerWithProxyError(ctx, record, table, limitErrors[result.reason], { ...result.headers, 'retry-after': String(result.retryAfterS) });
        }
        record.admission = result.admission;
        forward(down, ctx, routeTable, record, match);
      });
    }
  }
  forward(down, ctx, routeTable, record, match);
}

/** An authorised (and admitted) request: checks its head, reads its body and makes the first attempt. */
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

  down.readBody(snapshot.limits.maxBodyBytes, snapshot.timeouts.idleMs, (body) => {
    if (body === 'too_large') return fail('body_too_large');
    if (body === 'timeout') return fail('request_timeout');
    if (body instanceof Error) {
      record.flag = 'DC';
      record.reason = 'client closed during the request body';
      down.abort();
      return writeAccessLog(ctx, record);
    }
    record.body = body;
    const start = (instance: CompiledInstance, trial: boolean) =>
      new Exchange(down, ctx, routeTable, record, route, match.upstreamTarget, body).attempt(instance, trial);
    const trial = route.trial;
    if (trial !== undefined) {
      route.trial = undefined;
      if (ctx.health.takeTrial(trial.spec.id)) return start(trial, true);
    }
    const selection = route.selection;
    if (selection.picker === undefined) {
      const code = selection.rateLimited ? 'upstream_rate_limited' : 'no_healthy_upstream';
      if (selection.rateLimited) ctx.metrics.rateLimited(route.metrics, 'upstream', record.clientKey?.label ?? '');
      return answerWithProxyError(ctx, record, table, code, { 'retry-after': String(retryAfterSeconds(selection)) });
    }
    start(selection.picker.pick(), false);
  });
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

/** An upstream answer set aside for a retry; relayed after all if no later attempt gets an answer. */
interface HeldAnswer {
  status: number;
  headers: UpstreamHeaders;
  chunks: Buffer[];
  size: number;
  /** The instance that answered: its upstream key is scrubbed from the body before it is relayed. */
  from: CompiledInstance;
  /** Held only to be scrubbed, not to fail over: relayed as soon as it is whole. */
  final: boolean;
}

/**
 * One client request across its attempts. Nothing reaches the client until an attempt's answer is
 * chosen to be relayed, which is what makes failover invisible to it.
 */
class Exchange {
  #attemptsLeft: number;
  #current: Attempt | undefined;
  #held: HeldAnswer | undefined;
  #clientGone = false;
  #finished = false;
  #streaming = false;
  #tap: UsageTap | undefined;

  constructor(
    readonly down: Downstream,
    readonly ctx: ExchangeContext,
    readonly routeTable: RouteTable,
    readonly record: ExchangeRecord,
    readonly route: CompiledRoute,
    readonly upstreamTarget: string,
    readonly body: Buffer | null,
  ) {
    this.#attemptsLeft = routeTable.snapshot.retries.attempts;
    down.onClientGone(() => {
      if (this.#finished) return;
      this.#clientGone = true;
      this.#current?.abort(new ClientGoneError());
    });
  }

  get clientGone(): boolean {
    return this.#clientGone;
  }

  attempt(instance: CompiledInstance, trial: boolean): void {
    const { record, route, down } = this;
    const table = route.table;
    record.instance = instance;
    record.attempts += 1;
    const attempt = new Attempt(this, instance, trial);
    this.#current = attempt;
    const timeouts = this.routeTable.snapshot.timeouts;
    const path =
      table.keyQueryParam !== undefined && instance.encodedQueryKey !== undefined
        ? replaceQueryParam(this.upstreamTarget, table.keyQueryParam, instance.encodedQueryKey)
        : this.upstreamTarget;
    instance.pool.dispatch(
      {
        path,
        method: down.method,
        headers: buildUpstreamHeaders(down.rawHeaders, route, instance),
        body: this.body,
        headersTimeout: timeouts.firstByteMs,
        bodyTimeout: timeouts.idleMs,
      },
      attempt,
    );
  }

  /** Decides at the response head: hold it and fail over, or relay it. */
  onResponseHead(attempt: Attempt, status: number, headers: UpstreamHeaders): void {
    const instance = attempt.instance;
    // A 401/403 to a key of ours means that key is revoked or lacks access: the instance is broken,
    // not the client (whose credentials never reach the upstream). Pass-through instances excepted.
    const keyRefused = (status === 401 || status === 403) && instance.spec.upstreamKey !== undefined;
    this.report(attempt, status < 500 && !keyRefused, 'status');
    // A pass-through instance carries the client's own key: its 429 is that client's business.
    if (status === 429 && instance.spec.upstreamKey !== undefined) {
      const waitMs = retryAfterMs(headers);
      if (waitMs > 0 && this.ctx.outcomes.cool(instance.spec.id, waitMs)) {
        this.ctx.health.coolLocally(instance.spec.id, Date.now() + waitMs);
        this.ctx.routeTable.applyHealth(this.ctx.health);
      }
    }
    if (this.#attemptsLeft > 0 && this.routeTable.retryStatuses.has(status)) {
      const next = this.route.selection.picker?.pick(instance);
      if (next !== undefined && next !== instance) {
        attempt.hold({ status, headers, chunks: [], size: 0, from: instance, final: false });
        return;
      }
    }
    // An error body may quote the key it was sent with ("Incorrect API key provided: sk-..."): it is
    // read whole (error bodies are small) so that the key can be taken out before the client sees it.
    if (status >= 400 && instance.scrubbedFromBodies.length > 0 && !isEventStream(headers)) {
      attempt.hold({ status, headers, chunks: [], size: 0, from: instance, final: true });
      return;
    }
    this.relayHead(attempt, status, headers);
  }

  /** A held answer was read to its end: relay it, or keep it as the fallback and try the next instance. */
  onHeldComplete(attempt: Attempt, held: HeldAnswer): void {
    if (held.final) return this.#relayHeld(held);
    this.#held = held;
    this.#retryFrom(attempt.instance);
  }

  onAttemptError(attempt: Attempt, err: Error): void {
    const { record, down } = this;
    if (this.#clientGone || err instanceof ClientGoneError || err instanceof ClientStalledError) {
      this.#finished = true;
      // A trial cut short by its client says nothing about the instance; the grant goes back so
      // another request can try it (otherwise the instance would stay half-open for good).
      if (attempt.trial && !attempt.reported) {
        attempt.reported = true;
        this.ctx.health.releaseTrial(attempt.instance.spec.id);
        this.ctx.outcomes.trial(attempt.instance.spec.id, 'declined');
      }
      // DT: the client stopped reading (downstream timeout); DC: it went away.
      record.flag = err instanceof ClientStalledError ? 'DT' : 'DC';
      this.#streamEnded();
      down.abort();
      return this.#account();
    }
    if (attempt.mode === 'relay') return this.#failMidStream(attempt, err);
    if (attempt.mode === 'hold') {
      // An answer held only to be scrubbed is final: the upstream did answer (an error the client
      // caused, maybe), so it is not sent elsewhere; it just cannot be relayed.
      if (attempt.holdsFinal) return this.#answerWith(Object.assign(new Error('unusable upstream error answer'), { code: 'UND_ERR_INFO' }));
      // The held answer could not be read whole; what counts is that another instance is tried.
      return this.#retryFrom(attempt.instance, err);
    }
    this.report(attempt, false, upstreamErrorKind(err));
    record.reason = upstreamErrorReason(err);
    // A POST the upstream may already be working on is not sent again (it would generate and bill
    // twice), except after the first-byte timeout, which the failover contract names.
    if (isSafeToRetry(err)) this.#retryFrom(attempt.instance, err);
    else this.#answerWith(err);
  }

  /**
   * Starts the next attempt if one is left, else answers with what there is. Failover goes to another
   * instance only: the one that just failed would most likely fail again.
   */
  #retryFrom(previous: CompiledInstance, err?: Error): void {
    if (this.#attemptsLeft > 0 && !this.#clientGone) {
      const next = this.route.selection.picker?.pick(previous);
      if (next !== undefined && next !== previous) {
        this.#attemptsLeft -= 1;
        this.ctx.metrics.retry(this.route.metrics);
        return this.attempt(next, false);
      }
    }
    this.#answerWith(err);
  }

  /** No attempt left: the held upstream answer if there is one, else the proxy's own error. */
  #answerWith(err?: Error): void {
    const held = this.#held;
    if (held !== undefined) return this.#relayHeld(held);
    this.#finished = true;
    answerWithProxyError(this.ctx, this.record, this.route.table, err === undefined ? 'upstream_unreachable' : classifyUpstreamError(err));
  }

  relayHead(attempt: Attempt, status: number, headers: UpstreamHeaders): void {
    const { record, down } = this;
    record.status = status;
    record.ttfbMs = performance.now() - record.startedAt;
    const eventStream = isEventStream(headers);
    // Only a success reports usage; an error body never carries any.
    const tap = status >= 200 && status < 300 ? createUsageTap(this.route.table.usage, headers, eventStream) : undefined;
    this.#tap = tap;
    attempt.relay(eventStream, tap);
    if (eventStream) {
      this.#streaming = true;
      this.ctx.metrics.streamOpened();
    }
    try {
      const responseHeaders = buildResponseHeaders(headers, eventStream);
      // A limited key learns where it stands on every answer, as OpenAI's own headers tell it.
      if (record.admission !== undefined) Object.assign(responseHeaders, record.admission.headers);
      down.respond(status, responseHeaders, eventStream);
    } catch {
      // Node refuses header values HTTP cannot carry; the upstream answer is unusable as sent.
      record.reason = 'invalid upstream response headers';
      attempt.abort(Object.assign(new Error('invalid upstream response headers'), { code: 'UND_ERR_INFO' }));
    }
  }

  #relayHeld(held: HeldAnswer): void {
    const { record, down } = this;
    this.#finished = true;
    record.status = held.status;
    record.ttfbMs = performance.now() - record.startedAt;
    try {
      const headers = buildResponseHeaders(held.headers, false);
      if (record.admission !== undefined) Object.assign(headers, record.admission.headers);
      const body = scrubKeys(decodedForScrubbing(Buffer.concat(held.chunks, held.size), headers), held.from);
      // Read whole, so the length is known whatever framing the upstream used.
      headers['content-length'] = String(body.length);
      down.respond(held.status, headers);
      down.end(body);
    } catch {
      down.abort();
    }
    writeAccessLog(this.ctx, record);
  }

  #streamEnded(): void {
    if (!this.#streaming) return;
    this.#streaming = false;
    this.ctx.metrics.streamClosed();
  }

  onEnd(): void {
    this.#finished = true;
    this.#streamEnded();
    this.down.end();
    this.#account();
  }

  /** The access line and the metrics wait for the tap (a compressed body decodes a little later). */
  #account(): void {
    const tap = this.#tap;
    if (tap === undefined) return writeAccessLog(this.ctx, this.record);
    this.#tap = undefined;
    tap.finish((usage) => {
      this.record.usage = usage;
      writeAccessLog(this.ctx, this.record);
    });
  }

  #failMidStream(attempt: Attempt, err: Error): void {
    const { record, down } = this;
    this.#finished = true;
    if (!attempt.trial) this.ctx.outcomes.failure(attempt.instance.outcomes);
    this.ctx.metrics.upstreamError('cut');
    this.#streamEnded();
    record.reason = record.reason ?? upstreamErrorReason(err);
    // respond() threw: nothing was sent, so the client still gets a proper error (and nothing was
    // counted: the tap, with its decoder if it had one, is closed unread).
    if (!down.headersSent) {
      this.#tap?.finish(() => undefined);
      this.#tap = undefined;
      return answerWithProxyError(this.ctx, record, this.route.table, classifyUpstreamError(err));
    }
    // Mid-stream failure: never a clean end after a 200 (the client would take a cut answer as whole).
    record.flag = 'UC';
    const event = this.route.table.streamErrorEvent;
    if (event !== undefined && attempt.eventStream) {
      try {
        down.write(Buffer.from(event('upstream stream interrupted')));
      } catch {
        // the stream is being cut anyway
      }
    }
    down.abort();
    this.#account();
  }

  /** Passive health: one result per attempt, or the trial's verdict for a half-open instance. */
  report(attempt: Attempt, ok: boolean, reason: UpstreamErrorReason): void {
    if (attempt.reported) return;
    attempt.reported = true;
    if (!ok) this.ctx.metrics.upstreamError(reason);
    if (attempt.trial) this.ctx.outcomes.trial(attempt.instance.spec.id, ok ? 'ok' : 'failed');
    else if (ok) this.ctx.outcomes.success(attempt.instance.outcomes);
    else this.ctx.outcomes.failure(attempt.instance.outcomes);
  }
}

function isEventStream(headers: UpstreamHeaders): boolean {
  const type = headers['content-type'];
  return typeof type === 'string' && type.includes('text/event-stream');
}

/**
 * A compressed error body would hide the key from scrubKeys: it is relayed decoded instead (it is
 * small), and its content-encoding header dropped. One that does not decode is relayed as it came.
 */
function decodedForScrubbing(body: Buffer, headers: OutgoingHeaders): Buffer {
  const decoder = contentDecoder(headers['content-encoding']);
  if (decoder === undefined) return body;
  try {
    const decoded = decoder.whole(body, holdLimitBytes * 16);
    delete headers['content-encoding'];
    return decoded;
  } catch {
    return body;
  }
}

/** The body with every occurrence of the instance's upstream key replaced by its masked form. */
function scrubKeys(body: Buffer, instance: CompiledInstance): Buffer {
  let result = body;
  for (const secret of instance.scrubbedFromBodies) {
    if (result.indexOf(secret) === -1) continue;
    const parts: Buffer[] = [];
    let from = 0;
    for (let at = result.indexOf(secret); at !== -1; at = result.indexOf(secret, from)) {
      parts.push(result.subarray(from, at), instance.maskedKey);
      from = at + secret.length;
    }
    parts.push(result.subarray(from));
    result = Buffer.concat(parts);
  }
  return result;
}

/** The undici handler of one attempt: holds an answer for a retry or relays it to the client. */
class Attempt implements Dispatcher.DispatchHandler {
  mode: 'waiting' | 'hold' | 'relay' = 'waiting';
  reported = false;
  eventStream = false;
  #controller: Dispatcher.DispatchController | undefined;
  #held: HeldAnswer | undefined;
  #tap: UsageTap | undefined;

  constructor(
    readonly exchange: Exchange,
    readonly instance: CompiledInstance,
    readonly trial: boolean,
  ) {}

  hold(held: HeldAnswer): void {
    this.mode = 'hold';
    this.#held = held;
  }

  get holdsFinal(): boolean {
    return this.#held?.final === true;
  }

  relay(eventStream: boolean, tap: UsageTap | undefined): void {
    this.mode = 'relay';
    this.eventStream = eventStream;
    this.#tap = tap;
  }

  abort(err: Error): void {
    this.#controller?.abort(err);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.exchange.clientGone) controller.abort(new ClientGoneError());
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders): void {
    if (statusCode < 200) return;
    this.exchange.onResponseHead(this, statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const held = this.#held;
    if (held !== undefined) {
      held.size += chunk.length;
      if (held.size > holdLimitBytes) controller.abort(new HeldTooLongError());
      else held.chunks.push(chunk);
      return;
    }
    const down = this.exchange.down;
    if (!down.write(chunk)) {
      controller.pause();
      // undici's body timeout sleeps while paused, so a client that never reads would hold the
      // upstream (and its memory) forever: it gets the idle timeout, as a slow upstream does.
      const stalled = setTimeout(() => controller.abort(new ClientStalledError()), this.exchange.routeTable.snapshot.timeouts.idleMs);
      stalled.unref();
      down.onceDrain(() => {
        clearTimeout(stalled);
        controller.resume();
      });
    }
    // After the write: the client never waits for the tap.
    this.#tap?.push(chunk);
  }

  onResponseEnd(): void {
    const held = this.#held;
    if (held !== undefined) this.exchange.onHeldComplete(this, held);
    else this.exchange.onEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.exchange.onAttemptError(this, err);
  }
}

function writeAccessLog(ctx: ExchangeContext, record: ExchangeRecord): void {
  if (record.logged) return;
  record.logged = true;
  const down = record.down;
  const durationMs = performance.now() - record.startedAt;
  const route = record.route;
  ctx.metrics.exchange(route?.metrics ?? ctx.metrics.unrouted, record.status, durationMs, record.ttfbMs);
  // Read now, after the exchange: the scan of the request body never delayed the forward.
  const model = route === undefined ? undefined : route.table.usage.model(record.upstreamTarget, record.body);
  const usage = record.usage;
  if (route !== undefined && usage !== undefined) ctx.metrics.tokens(route.metrics, model ?? '', usage);
  // Frees the key's concurrency slot and charges its tokens-per-minute budget with what was used.
  record.admission?.release(usage === undefined ? 0 : totalTokens(usage));
  const q = down.target.indexOf('?');
  ctx.log.info(
    {
      reqId: record.reqId,
      method: down.method,
      // Never the query: a Gemini client may carry its key there.
      path: q === -1 ? down.target : down.target.slice(0, q),
      protocol: down.protocol,
      route: route?.spec.label,
      provider: route?.spec.type,
      clientKey: record.clientKey?.label,
      model: model === undefined ? undefined : model.slice(0, maxLoggedModelLength),
      instance: record.instance?.spec.name,
      attempts: record.attempts > 0 ? record.attempts : undefined,
      status: record.status,
      code: record.flag,
      reason: record.reason,
      bytesIn: down.bytesIn,
      bytesOut: down.bytesOut,
      ttfbMs: record.ttfbMs < 0 ? undefined : round(record.ttfbMs),
      durationMs: round(durationMs),
      inputTokens: usage?.input,
      outputTokens: usage?.output,
      cacheReadTokens: usage?.cacheRead,
      cacheWriteTokens: usage?.cacheWrite,
    },
    'request',
  );
}

// A model name comes from the client: long enough for any real one, short enough to keep lines atomic.
const maxLoggedModelLength = 200;

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
