// The S4 load generator: many concurrent SSE streams over HTTP/1.1 + TLS, timing every event. wrk and
// h2load time whole responses only, and S4 needs the first event and the gaps between events.
// Run as its own process (argv[2] is a JSON SseRun); prints one JSON SseReport line.
import { readFile } from 'node:fs/promises';
import { Pool } from 'undici';
import { stampOf, stampRoom } from './lib/event-stamp.js';
import { percentile } from './lib/stats.js';

export interface SseRun {
  origin: string;
  path: string;
  caFile: string;
  servername: string;
  streams: number;
  tokens: number;
  intervalMs: number;
  /** Stream starts are spread evenly over this time, as real users' streams are not in lockstep. */
  rampMs: number;
  headers: Record<string, string>;
  body: string;
  /**
   * Ask the mock to stamp every event with the time it wrote it, and report the gaps the path added
   * (each gap between two events less the gap between their stamps), which leave out the mock's
   * own timer jitter and stalls.
   */
  stamped?: boolean;
}

export interface SseReport {
  streams: number;
  completed: number;
  failed: number;
  /** Token events received (the closing [DONE] not counted). */
  events: number;
  expectedEvents: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  gapP50Ms: number;
  gapP99Ms: number;
  gapMaxMs: number;
  /** With stamped: the gaps the path added; NaN without. */
  addedGapP99Ms: number;
  addedGapMaxMs: number;
  errors: string[];
}

const run = JSON.parse(process.argv[2] ?? '{}') as SseRun;
const done = Buffer.from('data: [DONE]\n\n');
const pool = new Pool(run.origin, {
  connections: run.streams,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: 30_000,
  bodyTimeout: 30_000,
  connect: { ca: await readFile(run.caFile, 'utf8'), servername: run.servername },
});

// Open every connection first (one plain request each, all at once), so that the timed streams
// measure forwarding, not TLS handshakes.
await Promise.all(
  Array.from({ length: run.streams }, async () => {
    const res = await pool.request({ method: 'POST', path: run.path, headers: run.headers, body: run.body });
    await res.body.dump();
  }),
);

const ttfts: number[] = [];
const gaps: number[] = [];
const addedGaps: number[] = [];
const errors: string[] = [];
let completed = 0;
let events = 0;

/** One stream through dispatch(): per-chunk callbacks, no Readable or async iterator in the way. */
function oneStream(): Promise<void> {
  const started = performance.now();
  const headers: Record<string, string> = { ...run.headers, 'x-bench-tokens': String(run.tokens), 'x-bench-interval-ms': String(run.intervalMs) };
  if (run.stamped === true) headers['x-bench-stamp'] = '1';
  let lastEventAt = -1;
  // The opening bytes of the event being read, for its stamp; the last stamped event's stamp and arrival.
  const head = Buffer.alloc(stampRoom);
  let headLength = 0;
  let lastStamp = Number.NaN;
  let lastStampedAt = 0;
  let previousByte = 0;
  let received = 0;
  let status = 0;
  let tail: Buffer = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    pool.dispatch(
      { origin: run.origin, method: 'POST', path: run.path, headers, body: run.body },
      {
        // undici takes a handler for its v7 API only when it has onRequestStart.
        onRequestStart() {},
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData(_controller, chunk) {
          const now = performance.now();
          // An event ends with a blank line: count the "\n\n" pairs, across chunk boundaries too.
          for (let i = 0; i < chunk.length; i++) {
            const byte = chunk[i] as number;
            if (headLength < stampRoom) head[headLength++] = byte;
            if (byte === 0x0a && previousByte === 0x0a) {
              received += 1;
              if (lastEventAt < 0) ttfts.push(now - started);
              else gaps.push(now - lastEventAt);
              lastEventAt = now;
              const stamp = stampOf(head, headLength);
              if (!Number.isNaN(stamp)) {
                if (!Number.isNaN(lastStamp)) addedGaps.push(now - lastStampedAt - (stamp - lastStamp));
                lastStamp = stamp;
                lastStampedAt = now;
              }
              headLength = 0;
            }
            previousByte = byte;
          }
          tail = chunk.length >= done.length ? chunk.subarray(-done.length) : Buffer.concat([tail, chunk]).subarray(-done.length);
        },
        onResponseEnd() {
          if (status !== 200) return reject(new Error(`status ${status}`));
          // The last event is [DONE]; the others are tokens.
          if (!tail.equals(done)) return reject(new Error(`stream ended without [DONE] after ${received} events`));
          events += received - 1;
          completed += 1;
          resolve();
        },
        onResponseError(_controller, err) {
          reject(err);
        },
      },
    );
  });
}

const streams: Promise<void>[] = [];
for (let i = 0; i < run.streams; i++) {
  streams.push(
    new Promise<void>((resolve) => setTimeout(resolve, (i * run.rampMs) / run.streams)).then(oneStream).catch((err: Error) => {
      if (errors.length < 5) errors.push(err.message);
    }),
  );
}
await Promise.all(streams);
await pool.close();

const report: SseReport = {
  streams: run.streams,
  completed,
  failed: run.streams - completed,
  events,
  expectedEvents: run.streams * run.tokens,
  ttftP50Ms: percentile(ttfts, 50),
  ttftP99Ms: percentile(ttfts, 99),
  gapP50Ms: percentile(gaps, 50),
  gapP99Ms: percentile(gaps, 99),
  gapMaxMs: gaps.reduce((max, gap) => Math.max(max, gap), 0),
  addedGapP99Ms: addedGaps.length > 0 ? percentile(addedGaps, 99) : Number.NaN,
  addedGapMaxMs: addedGaps.length > 0 ? addedGaps.reduce((max, gap) => Math.max(max, gap), -Infinity) : Number.NaN,
  errors,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
