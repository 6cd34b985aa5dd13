// One pino factory for every process. JSON lines on stdout unless a person is reading: `auto` (the
// default) pretty-prints when stdout is a terminal. `pretty` formats in-process (no transport
// thread) because it is meant for a person at a terminal, not for throughput.
import { hash } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type pretty from 'pino-pretty';
import { LineBatcher } from './log-destination.js';

export type { Logger };

// Required only when a process pretty-prints: loading pino-pretty costs every process (the primary
// and each worker) some 70 ms of start-up, and logs that go to a pipe or a file never use it.
const requireHere = createRequire(import.meta.url);
const loadPretty = (): typeof pretty => requireHere('pino-pretty') as typeof pretty;

export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LogOptions {
  level: string;
  format: LogFormat;
  base: Record<string, unknown>;
}

/** `auto` decided for this process: each worker inherits the primary's stdout, so they agree. */
export function resolveLogFormat(format: LogFormat, stdoutIsTTY = process.stdout.isTTY === true): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return stdoutIsTTY ? 'pretty' : 'json';
}

export function createLogger(options: LogOptions): Logger {
  const settings = { level: options.level, base: { pid: process.pid, ...options.base }, timestamp: pino.stdTimeFunctions.isoTime };
  if (resolveLogFormat(options.format) === 'pretty') return pino(settings, loadPretty()(prettyOptions(process.stdout.isTTY === true)));
  // Batched (log-destination.ts): one write per batch of lines or per 200 ms, not one per
  // access-log line (a profile of the worker showed the per-line write calls as its second-largest cost).
  let logger: Logger | undefined;
  const destination = new LineBatcher(1, { onDropped: (count) => logger?.warn({ dropped: count }, 'log lines dropped: stdout did not keep up') });
  flushAtExit(destination);
  logger = pino(settings, destination);
  infoLineWriters.set(logger, infoLineWriter(logger, destination, JSON.stringify(settings.base).slice(1, -1)));
  return logger;
}

/**
 * Writes an info line whose fields the caller serialised itself: `members` is JSON object members
 * (`"a":1,"b":"x"`, no braces), `msg` the message. The line is what pino writes for the same fields
 * (level, time, the base fields, the members, msg), straight to the logger's destination.
 */
export type InfoLineWriter = (members: string, msg: string) => void;

const infoLineWriters = new WeakMap<Logger, InfoLineWriter>();

/**
 * The JSON logger's writer for lines serialised by their caller, undefined for a pretty one. Only
 * the access line, written once per request, is worth it: pino's walk over its 20-odd fields was
 * about a tenth of a worker's CPU per request under S1, several times what the line costs built directly.
 */
export function infoLineWriterOf(log: Logger): InfoLineWriter | undefined {
  return infoLineWriters.get(log);
}

/** pino's number for the info level. */
export const infoLevel = 30;

function infoLineWriter(log: Logger, destination: LineBatcher, bindings: string): InfoLineWriter {
  const head = `{"level":${infoLevel},"time":"`;
  const afterTime = bindings === '' ? '"' : `",${bindings}`;
  // Several lines a millisecond under load: the timestamp is formatted once per millisecond.
  let lastMs = -1;
  let lastTime = '';
  return (members, msg) => {
    if (log.levelVal > infoLevel) return;
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      lastTime = new Date(now).toISOString();
    }
    destination.write(`${head}${lastTime}${afterTime}${members === '' ? '' : ','}${members},"msg":${JSON.stringify(msg)}}\n`);
  };
}

/** Resolves once the lines logged so far are written (or after `timeoutMs`): wait for it before exiting. */
export function flushLog(log: Logger, timeoutMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const flushedAtExit = new Set<LineBatcher>();

/** What is still queued is written synchronously when the process exits (process.exit included). */
function flushAtExit(destination: LineBatcher): void {
  if (flushedAtExit.size === 0) process.once('exit', () => {
    for (const d of flushedAtExit) d.flushSync();
  });
  flushedAtExit.add(destination);
}

// The access-log fields the pretty message spells out itself; left in, pino-pretty would print the
// object again after it. No other log line uses these names.
const accessFields = ['reqId', 'method', 'path', 'protocol', 'status', 'durationMs', 'ttfbMs', 'bytesIn', 'bytesOut', 'clientKey', 'provider'];

/**
 * One line per entry: an access line reads `request 1a2b3c4d5e-1-0 POST /v1/chat/completions 200
 * 412.3ms provider=openai key=team-a ...`, then what else it has (route, instance, model, tokens, code) as
 * compact JSON on the same line. Other lines keep their message and show their fields the same way.
 */
export function prettyOptions(colorize: boolean): pretty.PrettyOptions {
  return {
    colorize,
    sync: true,
    singleLine: true,
    ignore: accessFields.join(','),
    messageFormat: (log, messageKey) => {
      const message = String(log[messageKey] ?? '');
      if (message !== 'request' || log.reqId === undefined) return message;
      const parts: unknown[] = [message, log.reqId, log.method, log.path, log.status, log.durationMs === undefined ? undefined : `${String(log.durationMs)}ms`];
      if (log.ttfbMs !== undefined) parts.push(`ttfb=${String(log.ttfbMs)}ms`);
      if (log.provider !== undefined) parts.push(`provider=${String(log.provider)}`);
      if (log.clientKey !== undefined) parts.push(`key=${String(log.clientKey)}`);
      if (log.protocol !== undefined) parts.push(String(log.protocol));
      parts.push(`in=${String(log.bytesIn ?? 0)}B out=${String(log.bytesOut ?? 0)}B`);
      // A line break inside a value (a key's configured name may hold one) must not split the line.
      return parts.map((part) => String(part ?? '-')).join(' ').replace(/[\0-\x1f\x7f]/g, ' ');
    },
  };
}

/** `sk-...wxyz` for keys long enough that 7 shown characters leave the rest secret; otherwise stars. */
export function maskKey(key: string): string {
  return key.length >= 16 ? `${key.slice(0, 3)}...${key.slice(-4)}` : '****';
}

/**
 * What an unnamed client key is shown as in logs, metrics and /status: `key:` and the first 8 hex
 * digits of its SHA-256. Stable across restarts and workers, distinct for distinct keys however short
 * they are (a mask shows a short key as `****`, so all of them look alike), and never the key.
 * 32 bits, not fewer: among 10,000 keys 6 hex digits would collide more often than not.
 * Computed once per snapshot, never per request.
 */
export function keyFingerprint(key: string): string {
  return `key:${hash('sha256', key, 'hex').slice(0, 8)}`;
}
