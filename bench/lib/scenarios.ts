// The seven scenarios of the bench. Each run() measures one target once; the runner interleaves the
// targets and repeats the rounds. A run also charges the target's own processes for the CPU time
// they used, which is the cost figure the shared cores cannot blur.
import { join } from 'node:path';
import { runH2load } from './h2load.js';
import type { LoadResult } from './load-result.js';
import { runLatencyClient } from './latency.js';
import { cpuMillis } from './proc.js';
import type { LatencyReport } from '../latency-client.js';
import { s4, s7 } from './stream-scenarios.js';
import { apiPath, origin, type BenchContext, type Measure, type Scenario, type Target } from './target.js';
import { churnScript, runWrk } from './wrk.js';

export { targetNames, type BenchContext, type LoadPlan, type Measure, type Scenario, type Target, type TargetName } from './target.js';

function url(target: Target): string {
  return `${origin(target)}${apiPath}`;
}

function headers(ctx: BenchContext): string[] {
  return ['content-type: application/json', `authorization: Bearer ${ctx.clientKey}`];
}

/** Runs the load and charges the target's processes for the CPU they used meanwhile. */
async function withCpu(target: Target, load: () => Promise<LoadResult & { keptAlive?: number }>): Promise<Measure> {
  const before = await cpuMillis(target.pids);
  const result = await load();
  const used = (await cpuMillis(target.pids)) - before;
  return {
    rps: result.rps,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    requests: result.requests,
    errors: result.errors,
    cpuMsPer1k: result.requests > 0 ? (used / result.requests) * 1000 : Number.NaN,
    ...(result.keptAlive === undefined ? {} : { keptAlive: result.keptAlive }),
  };
}

const s1: Scenario = {
  id: 'S1',
  title: 'throughput, small JSON, HTTP/1.1 keep-alive, 64 connections (wrk)',
  run: (target, ctx, warmUp) =>
    withCpu(target, () =>
      runWrk({
        url: url(target),
        connections: 64,
        threads: 2,
        seconds: warmUp ? ctx.plan.warmUpSeconds : ctx.plan.seconds,
        headers: headers(ctx),
        bodyFile: ctx.smallBodyFile,
      }),
    ),
};

const s2: Scenario = {
  id: 'S2',
  title: 'throughput, small JSON, HTTP/2, 16 connections x 10 streams (h2load)',
  run: (target, ctx, warmUp) =>
    withCpu(target, () =>
      runH2load({
        url: url(target),
        clients: 16,
        streams: 10,
        threads: 2,
        seconds: warmUp ? ctx.plan.warmUpSeconds : ctx.plan.seconds,
        warmUpSeconds: 0,
        headers: headers(ctx),
        bodyFile: ctx.smallBodyFile,
        logFile: join(ctx.dir, 'h2load.log'),
      }),
    ),
};

// S3 was h2load --rps: its per-client timers fire no faster than every 10 ms and all at once, so the
// 10 connections sent in bursts of 6 to 10, and it timed each request from its actual send, hiding the
// queueing behind a burst (coordinated omission). That put 1.5 ms on llm-proxy's p50 that even
// spacing does not show. Now requests are due at an even 500 per second and timed from when they
// were due (bench/latency-client.ts); the client's own cost is the same for every target and cancels
// in the added figures.
const s3: Scenario = {
  id: 'S3',
  title: 'latency at a constant 500 req/s, open loop timed from each due time, HTTP/1.1, 10 connections (bench/latency-client.ts)',
  async run(target, ctx, warmUp) {
    let report: LatencyReport | undefined;
    const measure = await withCpu(target, async () => {
      const seconds = warmUp ? ctx.plan.warmUpSeconds : ctx.plan.latencySeconds;
      report = await runLatencyClient({
        origin: origin(target),
        path: apiPath,
        caFile: ctx.caFile,
        servername: 'localhost',
        connections: 10,
        rate: 500,
        seconds,
        warmUpSeconds: warmUp ? 0 : 1,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.clientKey}` },
        body: ctx.smallBody,
      });
      return { requests: report.requests, seconds, rps: report.achievedRps, p50Ms: report.p50Ms, p99Ms: report.p99Ms, errors: report.errors };
    });
    const sent = (report as LatencyReport).fromSend;
    return { ...measure, sentP50Ms: sent.p50Ms, sentP99Ms: sent.p99Ms };
  },
};

const s5: Scenario = {
  id: 'S5',
  title: 'request body of 1 MiB, HTTP/1.1, 16 connections (wrk), CRC-32 checked upstream',
  async run(target, ctx, warmUp) {
    const before = await ctx.mock.stats();
    const measure = await withCpu(target, () =>
      runWrk({
        url: url(target),
        connections: 16,
        threads: 2,
        seconds: warmUp ? ctx.plan.warmUpSeconds : ctx.plan.seconds,
        headers: [...headers(ctx), `x-body-crc32: ${ctx.largeBodyCrc}`],
        bodyFile: ctx.largeBodyFile,
      }),
    );
    const after = await ctx.mock.stats();
    return {
      ...measure,
      mbPerSec: (measure.rps as number) * (ctx.largeBodyBytes / (1024 * 1024)),
      bodiesChecked: after.bodiesChecked - before.bodiesChecked,
      bodyMismatches: after.bodyMismatches - before.bodyMismatches,
    };
  },
};

// wrk reconnects after every response that says `Connection: close`, with a new TLS handshake (about
// half of them resume the previous session where the target allows it). Its latency runs from the
// request's first byte, after the handshake, so the handshakes' cost shows in req/s and CPU.
const s6: Scenario = {
  id: 'S6',
  title: 'connection churn: a new TLS connection per request (Connection: close), small JSON, HTTP/1.1, 16 connections (wrk)',
  run: (target, ctx, warmUp) =>
    withCpu(target, () =>
      runWrk({
        url: url(target),
        connections: 16,
        threads: 2,
        seconds: warmUp ? ctx.plan.warmUpSeconds : ctx.plan.seconds,
        headers: [...headers(ctx), 'Connection: close'],
        bodyFile: ctx.smallBodyFile,
        script: churnScript,
      }),
    ),
};

export const scenarios: readonly Scenario[] = [s1, s2, s3, s4, s5, s6, s7];
