// The end of every exchange, whichever way it ended: one access log line, the exchange metrics, and
// the release of its key's admission (with the tokens it is charged).
import type { Logger } from '../shared/log.js';
import type { ClientKeySpec } from '../shared/snapshot.js';
import { chargedTokens, type RequestTokens } from '../shared/usage/estimate.js';
import type { TokenUsage } from '../shared/usage/token-usage.js';
import type { BodyHold } from './body-budget.js';
import type { Downstream } from './downstream.js';
import type { WorkerMetrics } from './metrics.js';
import type { Admission } from './rate-limits.js';
import type { CompiledInstance, CompiledRoute } from './route-table.js';

/** What writeAccessLog needs of the exchange's context. */
export interface AccessLogContext {
  readonly log: Logger;
  readonly metrics: WorkerMetrics;
}

/** What the access log line reports about one exchange. */
export class ExchangeRecord {
  readonly startedAt = performance.now();
  route: CompiledRoute | undefined;
  /** Request target as sent upstream (route prefix removed); '' until routed. */
  upstreamTarget = '';
  /** The request's model, read when it was sent (the body itself is not kept for the log line). */
  model: string | undefined;
  /** The buffered body's share of the worker's budget, until the body is let go. */
  bodyHold: BodyHold | undefined;
  instance: CompiledInstance | undefined;
  attempts = 0;
  usage: TokenUsage | undefined;
  /** Bytes of generated text the response relayed (what it is charged by when it reports no usage). */
  textBytes = 0;
  /** The response was relayed to its end. */
  complete = false;
  /** The client key that authenticated the request (undefined on an open route). */
  clientKey: ClientKeySpec | undefined;
  admission: Admission | undefined;
  /** What the request reserved its tokens by (a key with tokens_per_minute only). */
  requestTokens: RequestTokens | undefined;
  ttfbMs = -1;
  status = 0;
  flag: string | undefined;
  reason: string | undefined;
  logged = false;

  constructor(
    readonly reqId: string,
    readonly down: Downstream,
  ) {}

  /** The proxy holds the request body no more: its budget share goes back. */
  releaseBody(): void {
    this.bodyHold?.release();
    this.bodyHold = undefined;
  }
}

export function writeAccessLog(ctx: AccessLogContext, record: ExchangeRecord): void {
  if (record.logged) return;
  record.logged = true;
  const down = record.down;
  const durationMs = performance.now() - record.startedAt;
  const route = record.route;
  ctx.metrics.exchange(route?.metrics ?? ctx.metrics.unrouted, record.status, durationMs, record.ttfbMs);
  record.releaseBody();
  const model = record.model;
  const usage = record.usage;
  if (route !== undefined && usage !== undefined) ctx.metrics.tokens(route.metrics, model ?? '', usage);
  // Frees the key's concurrency slot and charges its tokens-per-minute budget with what was used.
  record.admission?.release(tokensCharged(record));
  const q = down.target.indexOf('?');
  ctx.log.info(
    {
      reqId: record.reqId,
      clientRequestId: clientRequestId(down.rawHeaders),
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

/** What the exchange costs its key's tokens-per-minute budget (estimate.ts has the rule). */
function tokensCharged(record: ExchangeRecord): number {
  const request = record.requestTokens;
  const limit = record.clientKey?.limit?.tokensPerMinute;
  if (request === undefined || limit === undefined) return 0;
  const answered = record.status >= 200 && record.status < 300;
  return chargedTokens(request, { answered, complete: record.complete, usage: record.usage, textBytes: record.textBytes }, limit);
}

/**
 * The client's own x-request-id (forwarded upstream as it came), so its id and ours can be matched.
 * Read here, after the response, not on the way in: it costs the request nothing.
 */
function clientRequestId(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 12 && name.toLowerCase() === 'x-request-id') return (raw[i + 1] as string).slice(0, maxLoggedIdLength);
  }
  return undefined;
}

// A model name comes from the client: long enough for any real one, short enough to keep lines atomic.
const maxLoggedModelLength = 200;
// The same for a client's request id (a UUID is 36 characters).
const maxLoggedIdLength = 128;

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
