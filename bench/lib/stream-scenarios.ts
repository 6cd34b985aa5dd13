// The streaming scenarios: S4, many concurrent SSE streams, and S7, streams beside large
// non-streamed responses. Both use bench/sse-client.ts, run as a process of its own.
import { fileURLToPath } from 'node:url';
import { startLargeJsonClient, type LargeJsonReport } from './large-json-client.js';
import { cpuMillis, sampleResidentPeak } from './proc.js';
import { runNodeClient } from './run-tool.js';
import { apiPath, clientHeaders, origin, type BenchContext, type Scenario, type SsePlan, type Target, type TargetName } from './target.js';
import type { SseReport, SseRun } from '../sse-client.js';

const sseClient = fileURLToPath(new URL('../sse-client.ts', import.meta.url));

function runSseClient(run: SseRun): Promise<SseReport> {
  // Every stream's tokens at their interval, after the ramp, with room for connecting and a slow exit.
  return runNodeClient<SseReport>(sseClient, run, (2 * ((run.tokens * run.intervalMs + run.rampMs) / 1000) + 60) * 1000);
}

function sseRun(target: Target, ctx: BenchContext, sse: SsePlan): SseRun {
  return { origin: origin(target), path: apiPath, caFile: ctx.caFile, servername: 'localhost', ...sse, headers: clientHeaders(ctx), body: ctx.smallBody };
}

export const s4: Scenario = {
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
      report = await runSseClient(sseRun(target, ctx, sse));
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

async function besideLargeResponses(target: Target, ctx: BenchContext, sse: SsePlan, jsonBytes: number, everyMs: number): Promise<[SseReport, LargeJsonReport]> {
  const large = await startLargeJsonClient({
    origin: origin(target),
    path: apiPath,
    caFile: ctx.caFile,
    servername: 'localhost',
    headers: clientHeaders(ctx),
    body: ctx.smallBody,
    bytes: jsonBytes,
    everyMs,
  });
  try {
    const streams = await runSseClient(sseRun(target, ctx, sse));
    return [streams, await large.stop()];
  } catch (err) {
    await large.stop();
    throw err;
  }
}

// Which of the two runs goes first alternates per target from round to round, so that neither
// always has the warmer (or the more loaded) machine.
const runsSoFar = new Map<TargetName, number>();

export const s7: Scenario = {
  id: 'S7',
  title: 'SSE streams beside large JSON responses: the longest gap between events, without and with one 10 MB response a second (HTTP/1.1)',
  async run(target, ctx, warmUp) {
    const { jsonBytes, everyMs, ...planned } = ctx.plan.largeBodies;
    const sse = { ...(warmUp ? { ...planned, streams: Math.min(50, planned.streams), tokens: 10 } : planned), stamped: true };
    const n = runsSoFar.get(target.name) ?? 0;
    runsSoFar.set(target.name, n + 1);
    let alone: SseReport;
    let beside: [SseReport, LargeJsonReport];
    if (n % 2 === 0) {
      alone = await runSseClient(sseRun(target, ctx, sse));
      beside = await besideLargeResponses(target, ctx, sse, jsonBytes, everyMs);
    } else {
      beside = await besideLargeResponses(target, ctx, sse, jsonBytes, everyMs);
      alone = await runSseClient(sseRun(target, ctx, sse));
    }
    const [withLarge, large] = beside;
    return {
      gapMaxMs: alone.gapMaxMs,
      gapP99Ms: alone.gapP99Ms,
      gapMaxLargeMs: withLarge.gapMaxMs,
      gapP99LargeMs: withLarge.gapP99Ms,
      gapMaxAddedMs: withLarge.gapMaxMs - alone.gapMaxMs,
      gapP99AddedMs: withLarge.gapP99Ms - alone.gapP99Ms,
      // The same, of the gaps the path added (the mock's own gaps taken out): the budget's figure.
      pathGapMaxMs: alone.addedGapMaxMs,
      pathGapMaxLargeMs: withLarge.addedGapMaxMs,
      pathGapMaxAddedMs: withLarge.addedGapMaxMs - alone.addedGapMaxMs,
      pathGapP99AddedMs: withLarge.addedGapP99Ms - alone.addedGapP99Ms,
      largeFetched: large.fetched,
      largeFailed: large.failed,
      largeMaxMs: large.maxMs,
      failed: alone.failed + withLarge.failed,
      eventsLost: alone.expectedEvents - alone.events + (withLarge.expectedEvents - withLarge.events),
    };
  },
};
