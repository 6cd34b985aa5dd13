// The worker's share of the Prometheus metrics. Each worker counts what it serves; the primary asks
// all of them over prom-client's cluster channel when /metrics is scraped and sums the answers, so
// the totals hold whichever worker took a connection. Label values come from the config (route,
// provider type) or from a small fixed set, never from a client.
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// From a 5 ms cached answer to a 5 minute generation.
export const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Why an attempt at an upstream failed; a closed set, so the series count is fixed. */
export type UpstreamErrorReason = 'unreachable' | 'timeout' | 'protocol' | 'status' | 'cut';

/** One route's series, resolved when the route table is compiled, so a request never hashes labels. */
export interface RouteSeries {
  readonly duration: Histogram.Internal<string>;
  readonly ttfb: Histogram.Internal<string>;
  readonly byStatus: Map<number, Counter.Internal>;
  readonly retries: Counter.Internal;
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
  upstreamError(reason: UpstreamErrorReason): void;
  streamOpened(): void;
  streamClosed(): void;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  // prom-client answers the primary's scrape requests only once a cluster registry exists here.
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({ name: 'llm_proxy_requests_total', help: 'Requests answered, by route, provider type and status.', labelNames: ['route', 'provider', 'status'], registers: [registry] });
  const duration = new Histogram({ name: 'llm_proxy_request_duration_seconds', help: 'Time from request to the end of the response.', labelNames: ['route', 'provider'], buckets: latencyBuckets, registers: [registry] });
  const ttfb = new Histogram({ name: 'llm_proxy_time_to_first_byte_seconds', help: 'Time from request to the response head (the upstream first byte).', labelNames: ['route', 'provider'], buckets: latencyBuckets, registers: [registry] });
  const retries = new Counter({ name: 'llm_proxy_retries_total', help: 'Further attempts on another instance (failover).', labelNames: ['route'], registers: [registry] });
  const upstreamErrors = new Counter({ name: 'llm_proxy_upstream_errors_total', help: 'Failed upstream attempts, by reason.', labelNames: ['reason'], registers: [registry] });
  const activeStreams = new Gauge({ name: 'llm_proxy_active_streams', help: 'Event streams being relayed now.', registers: [registry] });

  const series = new Map<string, RouteSeries>();
  const routeSeries = (route: string, provider: string): RouteSeries => {
    const key = `${route}\u0000${provider}`;
    let found = series.get(key);
    if (found === undefined) {
      found = { duration: duration.labels(route, provider), ttfb: ttfb.labels(route, provider), byStatus: new Map(), retries: retries.labels(route), route, provider };
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
        counter = requests.labels(s.route, s.provider, String(status));
        s.byStatus.set(status, counter);
      }
      counter.inc();
      s.duration.observe(durationMs / 1000);
      if (ttfbMs >= 0) s.ttfb.observe(ttfbMs / 1000);
    },
    retry: (s) => s.retries.inc(),
    upstreamError: (reason) => upstreamErrors.inc({ reason }),
    streamOpened: () => activeStreams.inc(),
    streamClosed: () => activeStreams.dec(),
  };
}
