// One client request across its attempts (DESIGN section 4): failover, holding or relaying each
// answer, cutting a stream that fails mid-way, and passive health. proxy-exchange.ts admits the
// request and makes the first attempt.
import type { Logger } from '../shared/log.js';
import type { Downstream } from './downstream.js';
import { writeAccessLog, type ExchangeRecord } from './access-log.js';
import { answerWithProxyError } from './error-response.js';
import { ClientGoneError, ClientStalledError } from './exchange-errors.js';
import { buildResponseHeaders, buildUpstreamHeaders } from './headers.js';
import { relayHeldAnswer, type HeldAnswer, type UpstreamHeaders } from './held-answer.js';
import type { UpstreamErrorReason, WorkerMetrics } from './metrics.js';
import type { OutcomeReporter } from './outcome-reporter.js';
import { replaceQueryParam } from './query-key.js';
import type { WorkerRateLimits } from './rate-limits.js';
import { retryAfterMs } from './retry-after.js';
import type { CompiledInstance, CompiledRoute, RouteTable } from './route-table.js';
import { Attempt, type AttemptOwner } from './upstream-attempt.js';
import { classifyUpstreamError, isSafeToRetry, upstreamErrorKind, upstreamErrorReason } from './upstream-errors.js';
import { createUsageTap, type UsageTap } from './usage-tap.js';
import type { BodyBudget } from './body-budget.js';
import type { WorkerHealth } from './worker-health.js';

export interface ExchangeContext {
  readonly routeTable: RouteTable;
  readonly log: Logger;
  readonly outcomes: OutcomeReporter;
  readonly health: WorkerHealth;
  readonly metrics: WorkerMetrics;
  readonly limits: WorkerRateLimits;
  /** The worker's budget over buffered request bodies (limits.max_buffered_bytes). */
  readonly bodyBudget: BodyBudget;
  nextRequestId(): string;
}

/**
 * One client request across its attempts. Nothing reaches the client until an attempt's answer is
 * chosen to be relayed, which is what makes failover invisible to it.
 */
export class Exchange implements AttemptOwner {
  #attemptsLeft: number;
  #current: Attempt | undefined;
  #held: HeldAnswer | undefined;
  #clientGone = false;
  #finished = false;
  #streaming = false;
  #tap: UsageTap | undefined;
  /** Held for a retry until a response head decides that no attempt follows. */
  #body: Buffer | null;

  constructor(
    readonly down: Downstream,
    readonly ctx: ExchangeContext,
    readonly routeTable: RouteTable,
    readonly record: ExchangeRecord,
    readonly route: CompiledRoute,
    readonly upstreamTarget: string,
    body: Buffer | null,
  ) {
    this.#body = body;
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
        body: this.#body,
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
      this.#letGoOfBody();
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

  /** No attempt follows: the request body is not needed again (undici keeps its own reference while it sends it). */
  #letGoOfBody(): void {
    this.#body = null;
    this.record.releaseBody();
  }

  relayHead(attempt: Attempt, status: number, headers: UpstreamHeaders): void {
    const { record, down } = this;
    this.#letGoOfBody();
    record.status = status;
    record.ttfbMs = performance.now() - record.startedAt;
    const eventStream = isEventStream(headers);
    // Only a success reports usage; an error body never carries any. The text it relays is counted
    // only where a tokens-per-minute budget may be charged by it.
    const tap = status >= 200 && status < 300 ? createUsageTap(this.route.table.usage, headers, eventStream, record.requestTokens !== undefined) : undefined;
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
    const record = this.record;
    this.#finished = true;
    record.status = held.status;
    record.ttfbMs = performance.now() - record.startedAt;
    relayHeldAnswer(this.down, held, record.admission?.headers);
    writeAccessLog(this.ctx, record);
  }

  #streamEnded(): void {
    if (!this.#streaming) return;
    this.#streaming = false;
    this.ctx.metrics.streamClosed();
  }

  onEnd(): void {
    this.#finished = true;
    this.record.complete = true;
    this.#streamEnded();
    this.down.end();
    this.#account();
  }

  /** The access line and the metrics wait for the tap (a compressed body decodes a little later). */
  #account(): void {
    const tap = this.#tap;
    if (tap === undefined) return writeAccessLog(this.ctx, this.record);
    this.#tap = undefined;
    tap.finish((usage, textBytes) => {
      this.record.usage = usage;
      this.record.textBytes = textBytes;
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
