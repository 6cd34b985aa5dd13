// The per-snapshot routing structures: built once when a snapshot arrives, then only read.
import type { Pool } from 'undici';
import { providerTables } from '../shared/providers/registry.js';
import type { ProviderTable } from '../shared/providers/table.js';
import type { InstanceSpec, RouteSpec, Snapshot } from '../shared/snapshot.js';
import { maskKey } from '../shared/log.js';
import { upstreamHostHeader } from '../shared/upstream-origin.js';
import { createClientKeyMatcher, indexClientKeys, type ClientKeyIndex, type ClientKeyMatcher } from './client-keys.js';
import { createWeightedPicker, type WeightedPicker } from './instance-picker.js';
import type { RouteSeries, WorkerMetrics } from './metrics.js';
import type { OutcomeCounter, OutcomeReporter } from './outcome-reporter.js';
import type { UpstreamPools } from './upstream-pools.js';
import type { WorkerHealth } from './worker-health.js';

export interface CompiledInstance {
  readonly spec: InstanceSpec;
  readonly pool: Pool;
  /** `Host` sent upstream: the endpoint, with the port only when it is not the scheme's default. */
  readonly hostHeader: string;
  /** Flat [name, value, ...] credential headers injected for this instance's upstream key. */
  readonly keyHeaders: readonly string[];
  /** The upstream key, URL-encoded, for providers that also carry it in the query. */
  readonly encodedQueryKey: string | undefined;
  /** Client credentials are removed unless this is a keyless pass-through on an open route. */
  readonly stripClientCredentials: boolean;
  /** Where this worker counts the instance's outcomes for passive health. */
  readonly outcomes: OutcomeCounter;
  /** The upstream key as it may appear in an error body (as is and URL-encoded); none for pass-through. */
  readonly scrubbedFromBodies: readonly Buffer[];
  /** What replaces it there (`sk-...wxyz`). */
  readonly maskedKey: Buffer;
  /** The access line's `instance` member, serialised once (with its leading comma). */
  readonly logField: string;
}

/** The instances a request may go to now; replaced whenever health changes. */
export interface RouteSelection {
  /** undefined: no instance is available (503). */
  readonly picker: WeightedPicker<CompiledInstance> | undefined;
  /** Epoch ms the first instance with a known end may be back (Infinity: none has one). */
  readonly backAt: number;
  /** Set when some instance waits for a probe to recover: a client may look again after this long. */
  readonly probeWaitMs: number | undefined;
  /**
   * When none is available only because every one was rate limited upstream, the client gets a 429
   * as the provider would have given, not a 503.
   */
  readonly rateLimited: boolean;
}

export interface CompiledRoute {
  readonly spec: RouteSpec;
  readonly table: ProviderTable;
  readonly keyMatcher: ClientKeyMatcher;
  readonly instances: readonly CompiledInstance[];
  selection: RouteSelection;
  /** A half-open instance whose single trial request this worker holds: the next request takes it. */
  trial: CompiledInstance | undefined;
  /** Lower-case header names never forwarded on this route: hop-by-hop plus client credentials. */
  readonly credentialHeaders: ReadonlySet<string>;
  readonly metrics: RouteSeries;
  /** The access line's `route` and `provider` members, serialised once (with a leading comma). */
  readonly logFields: string;
}

export interface RouteMatch {
  route: CompiledRoute;
  /** Request target to send upstream: the route prefix removed, query kept. */
  upstreamTarget: string;
}

export interface RouteTable {
  readonly snapshot: Snapshot;
  /** Upstream statuses that make a request fail over (retries.on). */
  readonly retryStatuses: ReadonlySet<number>;
  /** `authority` as sent (any case, maybe with a port); `target` the origin-form request target. */
  lookup(authority: string, target: string): RouteMatch | undefined;
  /** Rebuilds every route's selection from the worker's health view. */
  applyHealth(health: WorkerHealth): void;
}

export interface RouteTableDeps {
  pools: UpstreamPools;
  outcomes: OutcomeReporter;
  metrics: WorkerMetrics;
}

export function compileRouteTable(snapshot: Snapshot, deps: RouteTableDeps, health: WorkerHealth): RouteTable {
  const byHost = new Map<string, CompiledRoute[]>();
  const all: CompiledRoute[] = [];
  // Hashed once for all routes: 10,000 global keys would otherwise be hashed again for every route.
  const globalKeys = indexClientKeys(snapshot.globalClientKeys);
  for (const spec of snapshot.routes) {
    const route = compileRoute(spec, globalKeys, deps);
    all.push(route);
    const list = byHost.get(spec.hostname) ?? [];
    list.push(route);
    byHost.set(spec.hostname, list);
  }
  // Longest prefix first, so the first match is the most specific (the original had no precedence).
  for (const list of byHost.values()) list.sort((a, b) => b.spec.prefix.length - a.spec.prefix.length);

  // Only a failed probe leaves an instance down with no known end: the next round may bring it back.
  const unknownWaitMs = snapshot.healthCheckIntervalMs;
  const table: RouteTable = {
    snapshot,
    retryStatuses: new Set(snapshot.retries.on),
    applyHealth(view) {
      for (const route of all) {
        route.selection = selectAvailable(route.instances, view, unknownWaitMs);
        route.trial = route.instances.find((instance) => view.isOffered(instance.spec.id));
      }
    },
    lookup(authority, target) {
      const routes = byHost.get(normaliseHost(authority));
      if (routes === undefined) return undefined;
      for (const route of routes) {
        const prefix = route.spec.prefix;
        if (prefix === '') return { route, upstreamTarget: target };
        if (!target.startsWith(prefix)) continue;
        const next = target.charCodeAt(prefix.length);
        // Segment boundary: end, '/', or the query ('/openai2' must not match '/openai').
        if (Number.isNaN(next)) return { route, upstreamTarget: '/' };
        if (next === 0x2f) return { route, upstreamTarget: target.slice(prefix.length) };
        if (next === 0x3f) return { route, upstreamTarget: `/${target.slice(prefix.length)}` };
      }
      return undefined;
    },
  };
  table.applyHealth(health);
  return table;
}

function selectAvailable(instances: readonly CompiledInstance[], health: WorkerHealth, unknownWaitMs: number): RouteSelection {
  const up: CompiledInstance[] = [];
  let backAt = Infinity;
  let probeWaitMs: number | undefined;
  let rateLimited = true;
  for (const instance of instances) {
    const until = health.downUntil(instance.spec.id);
    if (until === undefined) {
      up.push(instance);
      continue;
    }
    if (until === 0) probeWaitMs = unknownWaitMs;
    else backAt = Math.min(backAt, until);
    rateLimited &&= health.isCoolingOnly(instance.spec.id);
  }
  if (up.length === 0) return { picker: undefined, backAt, probeWaitMs, rateLimited };
  return { picker: createWeightedPicker(up, (instance) => instance.spec.weight), backAt: Infinity, probeWaitMs: undefined, rateLimited: false };
}

/** Retry-After for a route with nothing available, computed when the answer is sent (at least 1 s). */
export function retryAfterSeconds(selection: RouteSelection, now = Date.now()): number {
  const waitMs = Math.min(selection.backAt - now, selection.probeWaitMs ?? Infinity);
  return Number.isFinite(waitMs) ? Math.max(1, Math.ceil(waitMs / 1000)) : 1;
}

function compileRoute(spec: RouteSpec, globalKeys: ClientKeyIndex, deps: RouteTableDeps): CompiledRoute {
  const table = providerTables[spec.type];
  const instances = spec.instances.map((instance) => compileInstance(instance, spec, table, deps));
  return {
    spec,
    table,
    keyMatcher: createClientKeyMatcher(globalKeys, indexClientKeys(spec.clientKeys)),
    instances,
    selection: { picker: createWeightedPicker(instances, (instance) => instance.spec.weight), backAt: Infinity, probeWaitMs: undefined, rateLimited: false },
    trial: undefined,
    credentialHeaders: new Set(table.clientKeyHeaders),
    metrics: deps.metrics.routeSeries(spec.label, spec.type),
    logFields: `,"route":${JSON.stringify(spec.label)},"provider":${JSON.stringify(spec.type)}`,
  };
}

function compileInstance(spec: InstanceSpec, route: RouteSpec, table: ProviderTable, deps: RouteTableDeps): CompiledInstance {
  const keyHeaders = spec.upstreamKey === undefined ? [] : table.upstreamKeyHeaders(spec.upstreamKey).flat();
  return {
    spec,
    pool: deps.pools.poolFor(spec),
    hostHeader: upstreamHostHeader(spec),
    keyHeaders,
    encodedQueryKey: table.keyQueryParam !== undefined && spec.upstreamKey !== undefined ? encodeURIComponent(spec.upstreamKey) : undefined,
    stripClientCredentials: route.authRequired || spec.upstreamKey !== undefined,
    outcomes: deps.outcomes.counterFor(spec.id),
    scrubbedFromBodies: spec.upstreamKey === undefined ? [] : [...new Set([spec.upstreamKey, encodeURIComponent(spec.upstreamKey)])].map((form) => Buffer.from(form)),
    maskedKey: Buffer.from(spec.upstreamKey === undefined ? '' : maskKey(spec.upstreamKey)),
    logField: `,"instance":${JSON.stringify(spec.name)}`,
  };
}

/** `API.Example.com:443` -> `api.example.com`; `[::1]:8443` -> `::1`. */
export function normaliseHost(authority: string): string {
  let end = authority.length;
  if (authority.charCodeAt(0) === 0x5b) {
    const close = authority.indexOf(']');
    return (close === -1 ? authority : authority.slice(1, close)).toLowerCase();
  }
  const colon = authority.lastIndexOf(':');
  if (colon !== -1) end = colon;
  if (end > 0 && authority.charCodeAt(end - 1) === 0x2e) end -= 1; // a trailing dot names the same host
  return (end === authority.length ? authority : authority.slice(0, end)).toLowerCase();
}
