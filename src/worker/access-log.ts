// The end of every exchange, whichever way it ended: one access log line, the exchange metrics, and
// the release of its key's admission (with the tokens it is charged).
import { infoLevel, infoLineWriterOf, type Logger } from '../shared/log.js';
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
  const durationMs = performance.now() - record.startedAt;
  const route = record.route;
  ctx.metrics.exchange(route?.metrics ?? ctx.metrics.unrouted, record.status, durationMs, record.ttfbMs);
  record.releaseBody();
  const model = record.model;
  const usage = record.usage;
  if (route !== undefined && usage !== undefined) ctx.metrics.tokens(route.metrics, model ?? '', usage);
  // Frees the key's concurrency slot and charges its tokens-per-minute budget with what was used.
  record.admission?.release(tokensCharged(record));
  // levelVal, not isLevelEnabled('info'): that looked the level up by name, half of this function's time.
  if (ctx.log.levelVal > infoLevel) return;
  const members = accessLineMembers(record, durationMs);
  const write = lineWriterOf(ctx.log);
  if (write !== undefined) write(members, 'request');
  // A pretty logger is for a person at a terminal: the same fields, through pino.
  else ctx.log.info(JSON.parse(`{${members}}`) as object, 'request');
}

/**
 * The access line's fields as JSON object members, in a fixed order, absent ones left out. Built as
 * one string rather than handed to pino as an object: see infoLineWriterOf. Strings that come from a
 * client or an upstream go through JSON.stringify; the request id and protocol are ours and need no escaping.
 */
export function accessLineMembers(record: ExchangeRecord, durationMs: number): string {
  const down = record.down;
  const route = record.route;
  const usage = record.usage;
  const target = down.target;
  const q = target.indexOf('?');
  // Never the query: a Gemini client may carry its key there.
  let line = `"reqId":"${record.reqId}"${text('clientRequestId', clientRequestId(down.rawHeaders))},"method":${JSON.stringify(down.method)},"path":${JSON.stringify(q === -1 ? target : target.slice(0, q))},"protocol":"${down.protocol}"`;
  if (route !== undefined) line += route.logFields;
  const clientKey = record.clientKey;
  if (clientKey !== undefined) line += clientKeyField(clientKey);
  if (record.model !== undefined) line += text('model', record.model.slice(0, maxLoggedModelLength));
  const instance = record.instance;
  if (instance !== undefined) line += instance.logField;
  if (record.attempts > 0) line += `,"attempts":${record.attempts}`;
  line += `,"status":${record.status}${text('code', record.flag)}${text('reason', record.reason)},"bytesIn":${down.bytesIn},"bytesOut":${down.bytesOut}`;
  if (record.ttfbMs >= 0) line += `,"ttfbMs":${round(record.ttfbMs)}`;
  line += `,"durationMs":${round(durationMs)}`;
  if (usage !== undefined) line += `${count('inputTokens', usage.input)}${count('outputTokens', usage.output)}${count('cacheReadTokens', usage.cacheRead)}${count('cacheWriteTokens', usage.cacheWrite)}`;
  return line;
}

// The worker has one logger: its line writer is looked up once, not in a WeakMap per request.
let lastLog: Logger | undefined;
let lastWriter: ReturnType<typeof infoLineWriterOf>;
function lineWriterOf(log: Logger): ReturnType<typeof infoLineWriterOf> {
  if (log !== lastLog) {
    lastLog = log;
    lastWriter = infoLineWriterOf(log);
  }
  return lastWriter;
}

// A key's `clientKey` member, serialised the first time the key is logged. Keyed by the snapshot's
// spec object, so a reload that changes a key's label starts afresh.
const clientKeyFields = new WeakMap<ClientKeySpec, string>();
function clientKeyField(key: ClientKeySpec): string {
  let field = clientKeyFields.get(key);
  if (field === undefined) {
    field = text('clientKey', key.label);
    clientKeyFields.set(key, field);
  }
  return field;
}

function text(name: string, value: string | undefined): string {
  return value === undefined ? '' : `,"${name}":${JSON.stringify(value)}`;
}

/** Token counts come from the upstream's JSON: a number that is not finite is written as null, as JSON has it. */
function count(name: string, value: number | undefined): string {
  if (value === undefined) return '';
  return `,"${name}":${Number.isFinite(value) ? value : 'null'}`;
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
