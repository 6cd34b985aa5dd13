// An open-loop load client for latency at a fixed rate, wrk2-style: request i is due at start + i/rate
// whatever happened to the others, and its latency runs from that intended time to the response's
// last byte, so a stall delays (and counts against) every request scheduled behind it. h2load --rps
// times from when it actually sent, which hides exactly those waits (coordinated omission).
// Run as its own process (argv[2] is a JSON LatencyRun); prints one JSON LatencyReport line.
import { readFile } from 'node:fs/promises';
import { Agent, request as httpsRequest } from 'node:https';
import { Worker } from 'node:worker_threads';
import { Client } from 'undici';
import { percentile } from './lib/stats.js';

export interface LatencyRun {
  origin: string;
  path: string;
  caFile: string;
  servername: string;
  connections: number;
  /** Requests per second over all connections. */
  rate: number;
  seconds: number;
  /** At the rate, not recorded: JIT, pools and caches of every process on the path warm up. */
  warmUpSeconds: number;
  headers: Record<string, string>;
  body: string;
  /**
   * https (default): node:https, one keep-alive Agent per connection; undici: a Client per connection.
   * Against the bare mock on a 2-CPU VM the two cost the same within noise (p50 0.36 vs 0.39 ms), and
   * undici defers every write on a reused socket to setImmediate, one more loop turn per request.
   */
  client?: 'https' | 'undici';
  /**
   * thread (default): a worker thread sleeps in Atomics.wait to each due time and wakes the main
   * thread, which then sends at most tens of µs late; timer: setTimeout, which libuv rounds to whole
   * milliseconds, so sends lag their schedule by up to 1 ms (counted in the intended-time latency).
   */
  ticker?: 'thread' | 'timer';
}

export interface Percentiles {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LatencyReport extends Percentiles {
  requests: number;
  errors: number;
  achievedRps: number;
  /** From the moment the request was handed to its connection: what h2load reports. */
  fromSend: Percentiles;
  /** How late sends were against their schedule (the ticker's lag plus waiting for a busy connection). */
  sendLag: Percentiles;
  errorSamples: string[];
}

const run = JSON.parse(process.argv[2] ?? '{}') as LatencyRun;
const ca = await readFile(run.caFile, 'utf8');
const body = Buffer.from(run.body);
const headers = { ...run.headers, 'content-length': String(body.length) };

/** One keep-alive connection: send(done) issues a request, done(error?) fires after the last byte. */
type Send = (done: (err?: Error) => void) => void;

function undiciConnection(): Send {
  const client = new Client(run.origin, { pipelining: 1, keepAliveTimeout: 600_000, connect: { ca, servername: run.servername } });
  return (done) => {
    let status = 0;
    // dispatch(), not request(): no Readable, no promise, so the client's own cost stays small.
    client.dispatch(
      { method: 'POST', path: run.path, headers, body },
      {
        onRequestStart() {},
        onResponseStart(_c, code) {
          status = code;
        },
        onResponseData() {},
        onResponseEnd: () => done(status === 200 ? undefined : new Error(`status ${status}`)),
        onResponseError: (_c, err) => done(err),
      },
    );
  };
}

function httpsConnection(): Send {
  const url = new URL(run.path, run.origin);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca, servername: run.servername });
  return (done) => {
    const req = httpsRequest(url, { method: 'POST', agent, headers }, (res) => {
      res.on('data', () => undefined);
      res.once('end', () => done(res.statusCode === 200 ? undefined : new Error(`status ${res.statusCode}`)));
    });
    req.once('error', done);
    req.end(body);
  };
}

interface Slot {
  send: Send;
  busy: boolean;
  /** Due times of requests that came up while this connection was busy. */
  queue: number[];
}

const slots: Slot[] = Array.from({ length: run.connections }, () => ({ send: (run.client === 'undici' ? undiciConnection : httpsConnection)(), busy: false, queue: [] }));

// Every connection opens (TLS handshake) and serves one request before anything is timed.
await Promise.all(slots.map((slot) => new Promise<void>((resolve, reject) => slot.send((err) => (err ? reject(err) : resolve())))));

const total = Math.round(run.rate * (run.warmUpSeconds + run.seconds));
const firstTimed = Math.round(run.rate * run.warmUpSeconds);
const fromDue: number[] = [];
const fromSend: number[] = [];
const lags: number[] = [];
const errorSamples: string[] = [];
let errors = 0;
let finished = 0;
let timedStart = 0;
let timedEnd = 0;
const start = performance.now() + 20;
const dueOf = (i: number) => start + (i * 1000) / run.rate;
let allDone: () => void = () => undefined;
const completion = new Promise<void>((resolve) => (allDone = resolve));

function issue(slot: Slot, index: number): void {
  slot.busy = true;
  const due = dueOf(index);
  const sentAt = performance.now();
  slot.send((err) => {
    const now = performance.now();
    if (index >= firstTimed) {
      if (err !== undefined) {
        errors += 1;
        if (errorSamples.length < 5) errorSamples.push(err.message);
      } else {
        fromDue.push(now - due);
        fromSend.push(now - sentAt);
        lags.push(sentAt - due);
      }
      timedEnd = now;
    }
    slot.busy = false;
    const next = slot.queue.shift();
    if (next !== undefined) issue(slot, next);
    if (++finished === total) allDone();
  });
}

// Round robin, as wrk2 and h2load spread the rate: each connection carries rate/connections, and
// a request whose connection is still busy waits for it (its wait counts, from its due time).
let nextIndex = 0;
function sendDue(): void {
  const now = performance.now();
  while (nextIndex < total && dueOf(nextIndex) <= now) {
    if (nextIndex === firstTimed) timedStart = dueOf(nextIndex);
    const slot = slots[nextIndex % slots.length] as Slot;
    if (slot.busy) slot.queue.push(nextIndex);
    else issue(slot, nextIndex);
    nextIndex += 1;
  }
}

if (run.ticker === 'timer') {
  const tick = () => {
    sendDue();
    if (nextIndex < total) setTimeout(tick, Math.max(0, dueOf(nextIndex) - performance.now()));
  };
  setTimeout(tick, Math.max(0, start - performance.now()));
} else {
  // Times cross threads as epoch milliseconds (each thread's performance.now() has its own origin).
  const ticker = new Worker(
    `const { parentPort, workerData: w } = require('node:worker_threads');
     const cell = new Int32Array(new SharedArrayBuffer(4));
     for (let i = 0; i < w.total; i++) {
       const wait = w.startEpoch + (i * 1000) / w.rate - (performance.timeOrigin + performance.now());
       if (wait > 0) Atomics.wait(cell, 0, 0, wait);
       parentPort.postMessage(i);
     }`,
    { eval: true, workerData: { total, rate: run.rate, startEpoch: performance.timeOrigin + start } },
  );
  ticker.on('message', sendDue);
}

await completion;
const stats = (samples: number[]): Percentiles => ({
  p50Ms: percentile(samples, 50),
  p90Ms: percentile(samples, 90),
  p99Ms: percentile(samples, 99),
  maxMs: samples.reduce((max, v) => Math.max(max, v), 0),
});
const report: LatencyReport = {
  requests: fromDue.length,
  errors,
  achievedRps: timedEnd > timedStart ? ((fromDue.length + errors) * 1000) / (timedEnd - timedStart) : 0,
  ...stats(fromDue),
  fromSend: stats(fromSend),
  sendLag: stats(lags),
  errorSamples,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
