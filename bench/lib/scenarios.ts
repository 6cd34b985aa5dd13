// The seven scenarios of the bench. Each run() measures one target once; the runner interleaves the
// targets and repeats the rounds. A run also charges the target's own processes for the CPU time
// they used, which is the cost figure the shared cores cannot blur.
import { join } from 'node:path';
import { runH2load } from './h2load.js';
import type { LoadResult } from './load-result.js';
import { cpuMillis } from './proc.js';
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

const s3: Scenario = {
  id: 'S3',
  title: 'latency at a fixed 500 req/s, open loop, HTTP/1.1, 10 connections (h2load --rps)',
  run: (target, ctx, warmUp) =>
    withCpu(target, () =>
      runH2load({
        url: url(target),
        clients: 10,
        streams: 1,
        threads: 1,
        seconds: warmUp ? ctx.plan.warmUpSeconds : ctx.plan.latencySeconds,
        warmUpSeconds: 0,
        headers: headers(ctx),
        bodyFile: ctx.smallBodyFile,
        logFile: join(ctx.dir, 'h2load.log'),
        http1: true,
        rpsPerClient: 50,
      }),
    ),
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
