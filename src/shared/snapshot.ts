// The routing state the primary compiles from a validated config and sends to every worker. Plain
// data (it crosses IPC as JSON); workers compile it once into their own lookup structures.
import type { ProviderType } from './config/schema.js';

/** The limits of one client key, held cluster-wide by the primary. */
export interface RateLimitSpec {
  /** Names the key's buckets across processes (a digest of the key; never the key itself). */
  id: string;
  label: string;
  requestsPerMinute: number | undefined;
  tokensPerMinute: number | undefined;
  concurrent: number | undefined;
}

export interface ClientKeySpec {
  key: string;
  /** What logs show for this key: its configured name, or a masked form. */
  label: string;
  limit: RateLimitSpec | undefined;
}

/** The active probe of an instance, resolved from the provider's `health_check`. */
export interface HealthCheckSpec {
  method: string;
  path: string;
  body: string | undefined;
  /** Flat [name, value, ...] as configured; the upstream key is added per instance. */
  headers: string[];
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export interface InstanceSpec {
  /**
   * Identity that survives reloads while the instance is unchanged (route, upstream and a digest of
   * the key): health state is keyed on it. Not secret, but never shown either.
   */
  id: string;
  /** Stable display name (never the key): endpoint plus provider and key position. */
  name: string;
  endpoint: string;
  port: number;
  tls: boolean;
  http2: boolean;
  /** Idle lifetime of its pooled connections (`keep_alive`); the upstream's Keep-Alive hint may shorten it. */
  keepAliveMs: number;
  caPem: string | undefined;
  upstreamKey: string | undefined;
  weight: number;
  /** undefined: probed with a TCP (and TLS) connect. */
  healthCheck: HealthCheckSpec | undefined;
}

export interface RouteSpec {
  /** The provider entries' `host` value as configured: the `route` label of logs and metrics. */
  label: string;
  hostname: string;
  prefix: string;
  type: ProviderType;
  /** Keys accepted on this route besides the global ones. */
  clientKeys: ClientKeySpec[];
  /** The original enforces auth when any global key exists or any provider of the route lists auth_keys. */
  authRequired: boolean;
  instances: InstanceSpec[];
}

export interface Snapshot {
  version: number;
  loadedAt: number;
  /** `reusePort`: each worker binds its own socket (accept-mode.ts); otherwise the primary accepts. */
  listen: { host: string; port: number; reusePort: boolean };
  /** The primary's admin listener; undefined when turned off (`admin.listen: false`). */
  admin: { host: string; port: number } | undefined;
  tls: { cert: string; key: string; ticketKeys: string };
  timeouts: {
    connectMs: number;
    firstByteMs: number;
    idleMs: number;
    requestHeaderMs: number;
    keepAliveMs: number;
    shutdownMs: number;
  };
  /** maxBufferedBytes: request body bytes one worker holds at once, over all its exchanges. */
  limits: { maxBodyBytes: number; maxHeaderBytes: number; maxBufferedBytes: number };
  retries: { attempts: number; on: number[] };
  circuitBreaker: { consecutiveFailures: number; cooldownMs: number };
  /** `stream_keepalive`: upstream silence on an event stream after which `: keep-alive` is sent; undefined = off. */
  streamKeepaliveMs: number | undefined;
  /** Between active probe rounds (when --enable-health-check is given). */
  healthCheckIntervalMs: number;
  /** Worker processes wanted, already resolved from `auto` and the --workers flag. */
  workers: number;
  /** `format` may still be `auto`: each process decides it by its own stdout (log.ts). */
  log: { level: string; format: 'auto' | 'json' | 'pretty' };
  globalClientKeys: ClientKeySpec[];
  routes: RouteSpec[];
}

/** Every limited key of a snapshot, once each (a key may be listed globally and on several routes). */
export function limitsOf(snapshot: Snapshot): RateLimitSpec[] {
  const byId = new Map<string, RateLimitSpec>();
  const keys = [...snapshot.globalClientKeys, ...snapshot.routes.flatMap((route) => route.clientKeys)];
  for (const key of keys) if (key.limit !== undefined) byId.set(key.limit.id, key.limit);
  return [...byId.values()];
}
