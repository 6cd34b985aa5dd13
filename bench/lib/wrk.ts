// HTTP/1.1 keep-alive load over TLS with wrk, summarised by bench/wrk-report.lua.
import { fileURLToPath } from 'node:url';
import type { LoadResult } from './load-result.js';
import { runTool, toolFailure } from './run-tool.js';

const reportScript = fileURLToPath(new URL('../wrk-report.lua', import.meta.url));
/** For a new connection per request: also counts the responses that kept the connection open. */
export const churnScript = fileURLToPath(new URL('../wrk-churn.lua', import.meta.url));

export interface WrkRun {
  url: string;
  connections: number;
  threads: number;
  seconds: number;
  headers: readonly string[];
  bodyFile: string;
  /** A script that prints the same WRK_JSON line (default bench/wrk-report.lua). */
  script?: string;
}

export interface WrkResult extends LoadResult {
  /** Responses after which the connection stayed open (churnScript only). */
  keptAlive?: number;
}

interface WrkReport {
  requests: number;
  durationUs: number;
  errConnect: number;
  errRead: number;
  errWrite: number;
  errStatus: number;
  errTimeout: number;
  p50Us: number;
  p99Us: number;
  keptAlive?: number;
}

export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const args = ['-t', String(run.threads), '-c', String(run.connections), '-d', `${run.seconds}s`, '--timeout', '10s', '-s', run.script ?? reportScript];
  for (const header of run.headers) args.push('-H', header);
  args.push(run.url, '--', run.bodyFile);
  const output = await runTool('wrk', args, (run.seconds + 30) * 1000);
  const line = output.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (output.code !== 0 || line === undefined) throw toolFailure('wrk', output);
  const report = JSON.parse(line.slice('WRK_JSON '.length)) as WrkReport;
  const seconds = report.durationUs / 1e6;
  return {
    requests: report.requests,
    seconds,
    rps: report.requests / seconds,
    p50Ms: report.p50Us / 1000,
    p99Ms: report.p99Us / 1000,
    errors: report.errConnect + report.errRead + report.errWrite + report.errStatus + report.errTimeout,
    ...(report.keptAlive === undefined ? {} : { keptAlive: report.keptAlive }),
  };
}
