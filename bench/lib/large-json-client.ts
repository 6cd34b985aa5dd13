// S7's second client: one large non-streamed JSON response at a fixed pace through a target, read and
// discarded, while the SSE client measures the streams beside it. It runs in the runner's own process,
// which otherwise only waits for the SSE client, on a connection of its own.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

export interface LargeJsonRun {
  origin: string;
  path: string;
  caFile: string;
  servername: string;
  headers: Record<string, string>;
  body: string;
  /** The size the mock is asked for, and what every response must measure. */
  bytes: number;
  /** A fetch starts every everyMs (or, if one takes longer, as soon as it ends). */
  everyMs: number;
}

export interface LargeJsonReport {
  fetched: number;
  /** Errors, other statuses, and bodies of the wrong length. */
  failed: number;
  /** The slowest fetch, request to last byte. */
  maxMs: number;
  errors: string[];
}

export interface LargeJsonClient {
  stop(): Promise<LargeJsonReport>;
}

export async function startLargeJsonClient(run: LargeJsonRun): Promise<LargeJsonClient> {
  const pool = new Pool(run.origin, {
    connections: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    connect: { ca: await readFile(run.caFile, 'utf8'), servername: run.servername },
  });
  const report: LargeJsonReport = { fetched: 0, failed: 0, maxMs: 0, errors: [] };
  const headers = { ...run.headers, 'x-bench-json-bytes': String(run.bytes) };
  let running = true;
  // stop() should not wait out the pause before the next fetch.
  const pause = new AbortController();

  const fetchOne = async () => {
    const started = performance.now();
    try {
      const res = await pool.request({ method: 'POST', path: run.path, headers, body: run.body });
      let length = 0;
      for await (const chunk of res.body) length += (chunk as Buffer).length;
      if (res.statusCode !== 200 || length !== run.bytes) throw new Error(`status ${res.statusCode}, ${length} of ${run.bytes} bytes`);
      report.fetched += 1;
    } catch (err) {
      report.failed += 1;
      if (report.errors.length < 5) report.errors.push((err as Error).message);
    }
    report.maxMs = Math.max(report.maxMs, performance.now() - started);
    return started;
  };

  const loop = (async () => {
    while (running) {
      const started = await fetchOne();
      const wait = started + run.everyMs - performance.now();
      if (wait > 0 && running) await sleep(wait, undefined, { signal: pause.signal }).catch(() => undefined);
    }
  })();

  return {
    async stop() {
      running = false;
      pause.abort();
      await loop;
      await pool.close();
      return report;
    },
  };
}
