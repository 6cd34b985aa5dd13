// The worker's share of the Prometheus metrics. Each worker counts what it serves; the primary asks
// all of them over prom-client's cluster channel when /metrics is scraped and sums the answers, so
// the totals hold whichever worker took a connection. Label values come from the config (route,
// provider type) or from a small fixed set, never from a client.
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CountedCounter, CountedHistogram, type CounterSeries, type HistogramSeries } from './counted-metrics.js';
import type { TokenUsage } from '../shared/usage/token-usage.js';
import type { LimitReason } from './rate-limits.js';

// From a 5 ms cached answer to a 5 minute generation.
export const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Why an attempt at an upstream failed; a closed set, so the series count is fixed. */
export type UpstreamErrorReason = 'unreachable' | 'timeout' | 'protocol' | 'status' | 'cut';

/**
 * Why the proxy itself answered 429: a client key over one of its limits, or every upstream key of
 * the route cooling after the provider's own 429s.
 */
export type RateLimitReason = LimitReason | 'upstream';

/**
 * A route may show this many distinct model names (per worker); later ones are counted as `other`,
 * since the name comes from the client and must not be able to grow the series without bound.
 */
export const maxModelsPerRoute = 100;
const maxModelLabelLength = 128;

type TokenSeries = Record<keyof TokenUsage, CounterSeries>;

/** One route's series, resolved when the route table is compiled, so a request never hashes labels. */
export interface RouteSeries {
  readonly duration: HistogramSeries;
  readonly ttfb: HistogramSeries;
  readonly byStatus: Map<number, CounterSeries>;
  readonly retries: CounterSeries;
  readonly tokensByModel: Map<string, TokenSeries>;
  readonly route: string;
  readonly provider: string;
}

export interface WorkerMetrics {
  /** The series of a route (the same object for the same route and provider across snapshots). */
  routeSeries(route: string, provider: string): RouteSeries;
  /** Where requests that matched no route are counted (route and provider ''). */
  readonly unrouted: RouteSeries;
  exchange(series: RouteSeries, status: number, durationMs: number, ttfbMs: number): void;
  retry(series: RouteSeries): void;
  /** `model` as the request named it ('' for none); capped per route. */
  tokens(series: RouteSeries, model: string, usage: TokenUsage): void;
  /** `clientKey`: the key's label (its name or masked form), '' when none was matched. */
  rateLimited(series: RouteSeries, reason: RateLimitReason, clientKey: string): void;
  upstreamError(reason: UpstreamErrorReason): void;
  streamOpened(): void;
  streamClosed(): void;
}

/** `bufferedBytes`: request body bytes the worker holds now (its limits.max_buffered_bytes budget). */
export function createWorkerMetrics(bufferedBytes: () => number = () => 0): WorkerMetrics {
  const registry = new Registry();
  // prom-client answers the primary's scrape requests only once a cluster registry exists here.
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
  // The event-loop-lag sampler's timer woke each worker 100 times a second at its default 10 ms,
  // about 8 ms of CPU a second per idle worker on this project's VM; every 100 ms still catches any
  // stall long enough to matter (a late timer is measured whenever it fires).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

  // What every request updates is counted in plain numbers (counted-metrics.ts); the rest is prom-client's.
  const requests = new CountedCounter('llm_proxy_requests_total', 'Requests answered, by route, provider type and status.', ['route', 'provider', 'status'], registry);
  const duration = new CountedHistogram('llm_proxy_request_duration_seconds', 'Time from request to the end of the response.', ['route', 'provider'], latencyBuckets, registry);
  const ttfb = new CountedHistogram('llm_proxy_time_to_first_byte_seconds', 'Time from request to the response head (the upstream first byte).', ['route', 'provider'], latencyBuckets, registry);
  const retries = new CountedCounter('llm_proxy_retries_total', 'Further attempts on another instance (failover).', ['route'], registry);
  const upstreamErrors = new Counter({ name: 'llm_proxy_upstream_errors_total', help: 'Failed upstream attempts, by reason.', labelNames: ['reason'], registers: [registry] });
  const activeStreams = new Gauge({ name: 'llm_proxy_active_streams', help: 'Event streams being relayed now.', registers: [registry] });
  new Gauge({
    name: 'llm_proxy_buffered_request_bytes',
    help: 'Request body bytes held now, summed over workers (each worker has its own limits.max_buffered_bytes).',
    registers: [registry],
    collect() {
      this.set(bufferedBytes());
    },
  });
  const tokens = new CountedCounter(
    'llm_proxy_tokens_total',
    'Tokens the upstream reported, by kind: input (uncached prompt), output, cache_read, cache_write; the kinds are disjoint.',
    ['route', 'provider', 'model', 'kind'],
    registry,
  );
  const rateLimited = new Counter({
    name: 'llm_proxy_rate_limited_total',
    help: 'Requests the proxy answered with 429: a client key over a limit (requests, tokens, concurrent) or every upstream key cooling (upstream).',
    labelNames: ['route', 'reason', 'client_key'],
    registers: [registry],
  });

  const tokenSeries = (s: RouteSeries, model: string): TokenSeries => {
    let found = s.tokensByModel.get(model);
    if (found !== undefined) return found;
    const label = s.tokensByModel.size >= maxModelsPerRoute || model.length > maxModelLabelLength ? 'other' : model;
    found = s.tokensByModel.get(label);
    if (found === undefined) {
      found = {
        input: tokens.series(s.route, s.provider, label, 'input'),
        output: tokens.series(s.route, s.provider, label, 'output'),
        cacheRead: tokens.series(s.route, s.provider, label, 'cache_read'),
        cacheWrite: tokens.series(s.route, s.provider, label, 'cache_write'),
      };
      s.tokensByModel.set(label, found);
    }
    return found;
  };

  const series = new Map<string, RouteSeries>();
  const routeSeries = (route: string, provider: string): RouteSeries => {
    const key = `${route}\u0000${provider}`;
    let found = series.get(key);
    if (found === undefined) {
      found = { duration: duration.series(route, provider), ttfb: ttfb.series(route, provider), byStatus: new Map(), retries: retries.series(route), tokensByModel: new Map(), route, provider };
      series.set(key, found);
    }
    return found;
  };

  return {
    routeSeries,
    unrouted: routeSeries('', ''),
    exchange(s, status, durationMs, ttfbMs) {
      let counter = s.byStatus.get(status);
      if (counter === undefined) {
        counter = requests.series(s.route, s.provider, String(status));
        s.byStatus.set(status, counter);
      }
      counter.value += 1;
      duration.observe(s.duration, durationMs / 1000);
      if (ttfbMs >= 0) ttfb.observe(s.ttfb, ttfbMs / 1000);
    },
    retry(s) {
      s.retries.value += 1;
    },
    tokens(s, model, usage) {
      const counters = tokenSeries(s, model);
      // Counts from an upstream's JSON: only finite positive numbers count (prom-client threw on others).
      if (usage.input > 0 && Number.isFinite(usage.input)) counters.input.value += usage.input;
      if (usage.output > 0 && Number.isFinite(usage.output)) counters.output.value += usage.output;
      if (usage.cacheRead > 0 && Number.isFinite(usage.cacheRead)) counters.cacheRead.value += usage.cacheRead;
      if (usage.cacheWrite > 0 && Number.isFinite(usage.cacheWrite)) counters.cacheWrite.value += usage.cacheWrite;
    },
    rateLimited: (s, reason, clientKey) => rateLimited.labels(s.route, reason, clientKey).inc(),
    upstreamError: (reason) => upstreamErrors.inc({ reason }),
    streamOpened: () => activeStreams.inc(),
    streamClosed: () => activeStreams.dec(),
  };
}
