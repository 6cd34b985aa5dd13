// One pino factory for every process. JSON lines on stdout by default; `pretty` formats in-process
// (no transport thread) because it is meant for a person at a terminal, not for throughput.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  level: string;
  format: 'json' | 'pretty';
  base: Record<string, unknown>;
}

export function createLogger(options: LogOptions): Logger {
  const settings = { level: options.level, base: { pid: process.pid, ...options.base }, timestamp: pino.stdTimeFunctions.isoTime };
  if (options.format === 'pretty') return pino(settings, pretty({ colorize: process.stdout.isTTY, sync: true }));
  // Batched: one write per 4 KiB of lines or per 200 ms, not one per access-log line (a profile of
  // the worker showed the per-line write calls as its second-largest cost). pino flushes what is
  // left synchronously when the process exits.
  return pino(settings, pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 200 }));
}

/** `sk-...wxyz` for keys long enough that 7 shown characters leave the rest secret; otherwise stars. */
export function maskKey(key: string): string {
  return key.length >= 16 ? `${key.slice(0, 3)}...${key.slice(-4)}` : '****';
}
