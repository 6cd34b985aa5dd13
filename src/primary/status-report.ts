// The JSON behind the admin /status page: what runs, on which config, and how every instance is
// doing. Built from the primary's own state when asked; names, masked upstream keys and client-key
// fingerprints only, never a key.
import type { Snapshot } from '../shared/snapshot.js';
import type { InstanceHealthReport } from './health-registry.js';
import type { KeyLimitState, StoreStatus } from './rate-limit/store.js';
import type { WorkerInfo } from './supervisor.js';

export interface StatusSources {
  version: string;
  startedAt: number;
  healthChecks: boolean;
  snapshot(): Snapshot;
  reloads(): { ok: number; failed: number; lastError: string | undefined };
  workers(): WorkerInfo[];
  restarts(): number;
  health(): InstanceHealthReport[];
  /** What each limited client key has left (the primary's buckets; workers may hold a little more). */
  rateLimits: KeyLimitState[];
  /** Where the limits live: memory, or Redis with its state (never its password). */
  sharedStore: StoreStatus;
}

export function buildStatus(sources: StatusSources, now = Date.now()): unknown {
  const snapshot = sources.snapshot();
  const health = new Map(sources.health().map((report) => [report.id, report]));
  return {
    version: sources.version,
    uptimeSeconds: Math.round((now - sources.startedAt) / 1000),
    config: {
      version: snapshot.version,
      loadedAt: new Date(snapshot.loadedAt).toISOString(),
      reloads: sources.reloads(),
    },
    workers: {
      wanted: snapshot.workers,
      // Who accepts new connections: each worker on its own socket, or the primary (accept-mode.ts).
      accept: snapshot.listen.reusePort ? 'workers' : 'primary',
      restarts: sources.restarts(),
      list: sources.workers().map((worker) => ({
        id: worker.id,
        pid: worker.pid,
        uptimeSeconds: Math.round((now - worker.startedAt) / 1000),
        listening: worker.listening,
        retiring: worker.retiring,
        configVersion: worker.snapshotVersion,
      })),
    },
    healthChecks: sources.healthChecks ? { intervalSeconds: snapshot.healthCheckIntervalMs / 1000 } : false,
    sharedStore: sources.sharedStore,
    rateLimits: sources.rateLimits.map((state) => ({
      clientKey: state.label,
      requestsPerMinute: state.requests && { limit: state.requests.limit, remaining: state.requests.remaining, resetSeconds: Math.ceil(state.requests.resetMs / 1000) },
      tokensPerMinute: state.tokens && { limit: state.tokens.limit, remaining: state.tokens.remaining, resetSeconds: Math.ceil(state.tokens.resetMs / 1000) },
      concurrent: state.concurrent,
    })),
    routes: snapshot.routes.map((route) => ({
      route: route.label,
      type: route.type,
      auth: route.authRequired,
      clientKeys: [...snapshot.globalClientKeys, ...route.clientKeys].map((key) => key.label),
      instances: route.instances.map((instance) => {
        const state = health.get(instance.id);
        return {
          name: instance.name,
          upstream: `${instance.tls ? 'https' : 'http'}://${instance.endpoint}:${instance.port}`,
          weight: instance.weight,
          available: state?.available ?? true,
          // Without --enable-health-check nothing probes: 'up' would claim a check that never ran.
          // `available`, `breaker` and the rest still show passive health.
          probe: sources.healthChecks ? (state?.probe ?? 'up') : 'not_probed',
          lastProbeError: state?.lastProbeError,
          breaker: state?.breaker ?? 'closed',
          consecutiveFailures: state?.consecutiveFailures ?? 0,
          coolingForMs: state?.coolingForMs ?? 0,
        };
      }),
    })),
  };
}
