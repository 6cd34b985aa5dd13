// Load with h2load: HTTP/2 over TLS, or HTTP/1.1 (--h1) for the open-loop latency scenario.
// Percentiles come from its per-request log, since its summary only gives mean and deviation.
import { readFile, rm } from 'node:fs/promises';
import type { LoadResult } from './load-result.js';
import { runTool, toolFailure } from './run-tool.js';
import { percentileOfSorted } from './stats.js';

export interface H2loadRun {
  url: string;
  clients: number;
  /** Concurrent streams per client (HTTP/2). */
  streams: number;
  threads: number;
  seconds: number;
  warmUpSeconds: number;
  headers: readonly string[];
  bodyFile: string;
  logFile: string;
  http1?: boolean;
  /** Open loop: requests per second per client. */
  rpsPerClient?: number;
}

function count(text: string, pattern: RegExp): number {
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

export async function runH2load(run: H2loadRun): Promise<LoadResult> {
  const args = [
    '-c', String(run.clients), '-m', String(run.streams), '-t', String(Math.min(run.threads, run.clients)),
    '-D', String(run.seconds), '--warm-up-time', String(run.warmUpSeconds),
    '-d', run.bodyFile, '--log-file', run.logFile,
  ];
  if (run.http1 === true) args.push('--h1');
  if (run.rpsPerClient !== undefined) args.push('--rps', String(run.rpsPerClient));
  for (const header of run.headers) args.push('-H', header);
  args.push(run.url);
  const output = await runTool('h2load', args, (run.seconds + run.warmUpSeconds + 30) * 1000);
  const text = output.stdout;
  if (output.code !== 0 || !text.includes('status codes:')) throw toolFailure('h2load', output);

  const ok = count(text, /status codes: (\d+) 2xx/);
  const failed = count(text, /(\d+) failed/) + count(text, /(\d+) errored/) + count(text, /(\d+) timeout/);
  const otherStatus = count(text, /(\d+) 3xx/) + count(text, /(\d+) 4xx/) + count(text, /(\d+) 5xx/);
  // Each log line: start time (µs since the epoch), status, duration (µs).
  const durations: number[] = [];
  for (const line of (await readFile(run.logFile, 'utf8')).split('\n')) {
    const tab = line.lastIndexOf('\t');
    if (tab > 0) durations.push(Number(line.slice(tab + 1)));
  }
  await rm(run.logFile, { force: true });
  const sorted = Float64Array.from(durations).sort();
  return {
    requests: ok,
    seconds: run.seconds,
    rps: ok / run.seconds,
    p50Ms: percentileOfSorted(sorted, 50) / 1000,
    p99Ms: percentileOfSorted(sorted, 99) / 1000,
    errors: failed + otherStatus,
  };
}
