// The five scenarios of the bench. Each run() measures one target once; the runner interleaves the
// targets and repeats the rounds. A run also charges the target's own processes for the CPU time
// they used, which is the cost figure the shared cores cannot blur.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runH2load } from './h2load.js';
import type { LoadResult } from './load-result.js';
import type { MockProcess } from './mock-process.js';
import { cpuMillis, sampleResidentPeak } from './proc.js';
import { runWrk } from './wrk.js';
import type { SseReport, SseRun } from '../sse-client.js';

export type TargetName = 'direct' | 'nginx' | 'llm-proxy';
export const targetNames: readonly TargetName[] = ['direct', 'nginx', 'llm-proxy'];

export interface Target {
  readonly name: TargetName;
  readonly port: number;
  /** The processes that are this target (the mock's own for direct). */
  readonly pids: readonly number[];
}

export interface LoadPlan {
  rounds: number;
  /** Length of a throughput run (S1, S2, S5). */
  seconds: number;
  /** Length of an open-loop latency run (S3). */
  latencySeconds: number;
  warmUpSeconds: number;
  sse: { streams: number; tokens: number; intervalMs: number; rampMs: number };
}

export interface BenchContext {
  readonly dir: string;
  readonly caFile: string;
  readonly clientKey: string;
  readonly mock: MockProcess;
  readonly smallBodyFile: string;
  readonly smallBody: string;
  readonly largeBodyFile: string;
  readonly largeBodyBytes: number;
  readonly largeBodyCrc: number;
  readonly plan: LoadPlan;
}

export type Measure = Record<string, number>;

export interface Scenario {
  readonly id: string;
  readonly title: string;
  run(target: Target, ctx: BenchContext, warmUp: boolean): Promise<Measure>;
}

const path = '/v1/chat/completions';
const sseClient = fileURLToPath(new URL('../sse-client.ts', import.meta.url));

function url(target: Target): string {
  return `https://127.0.0.1:${target.port}${path}`;
}

function headers(ctx: BenchContext): string[] {
  return ['content-type: application/json', `authorization: Bearer ${ctx.clientKey}`];
}

/** Runs the load and charges the target's processes for the CPU they used meanwhile. */
async function withCpu(target: Target, load: () => Promise<LoadResult>): Promise<Measure> {
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

function runSseClient(run: SseRun): Promise<SseReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', sseClient, JSON.stringify(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`sse-client exited with ${code}: ${err.trim().split('\n').slice(-5).join('\n')}`));
      resolve(JSON.parse(out) as SseReport);
    });
  });
}

const s4: Scenario = {
  id: 'S4',
  title: 'streaming: concurrent SSE streams, HTTP/1.1 (Node client timing every event)',
  async run(target, ctx, warmUp) {
    const sse = warmUp ? { ...ctx.plan.sse, streams: Math.min(100, ctx.plan.sse.streams), tokens: 10 } : ctx.plan.sse;
    const sampler = sampleResidentPeak(target.pids);
    const cpuBefore = await cpuMillis(target.pids);
    const mockBefore = await ctx.mock.stats();
    let report: SseReport;
    let peak = { rss: 0, pss: 0 };
    try {
      report = await runSseClient({
        origin: `https://127.0.0.1:${target.port}`,
        path,
        caFile: ctx.caFile,
        servername: 'localhost',
        ...sse,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.clientKey}` },
        body: ctx.smallBody,
      });
    } finally {
      peak = await sampler.stop();
    }
    const cpuUsed = (await cpuMillis(target.pids)) - cpuBefore;
    const mockAfter = await ctx.mock.stats();
    return {
      streams: report.streams,
      ttftP50Ms: report.ttftP50Ms,
      ttftP99Ms: report.ttftP99Ms,
      gapP50Ms: report.gapP50Ms,
      gapP99Ms: report.gapP99Ms,
      gapMaxMs: report.gapMaxMs,
      events: report.events,
      expectedEvents: report.expectedEvents,
      mockEvents: mockAfter.eventsSent - mockBefore.eventsSent,
      failed: report.failed,
      peakRssMB: peak.rss / (1024 * 1024),
      peakPssMB: peak.pss / (1024 * 1024),
      cpuMsPer1kEvents: report.events > 0 ? (cpuUsed / report.events) * 1000 : Number.NaN,
    };
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

export const scenarios: readonly Scenario[] = [s1, s2, s3, s4, s5];
