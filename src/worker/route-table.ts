// The per-snapshot routing structures: built once when a snapshot arrives, then only read.
import type { Pool } from 'undici';
import { providerTables } from '../shared/providers/registry.js';
import type { ProviderTable } from '../shared/providers/table.js';
import type { InstanceSpec, RouteSpec, Snapshot } from '../shared/snapshot.js';
import { createClientKeyMatcher, type ClientKeyMatcher } from './client-keys.js';
import { createWeightedPicker, type WeightedPicker } from './instance-picker.js';
import type { UpstreamPools } from './upstream-pools.js';

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
}

export interface CompiledRoute {
  readonly spec: RouteSpec;
  readonly table: ProviderTable;
  readonly keyMatcher: ClientKeyMatcher;
  readonly picker: WeightedPicker<CompiledInstance>;
  /** Lower-case header names never forwarded on this route: hop-by-hop plus client credentials. */
  readonly credentialHeaders: ReadonlySet<string>;
}

export interface RouteMatch {
  route: CompiledRoute;
  /** Request target to send upstream: the route prefix removed, query kept. */
  upstreamTarget: string;
}

export interface RouteTable {
  readonly snapshot: Snapshot;
  /** `authority` as sent (any case, maybe with a port); `target` the origin-form request target. */
  lookup(authority: string, target: string): RouteMatch | undefined;
}

export function compileRouteTable(snapshot: Snapshot, pools: UpstreamPools): RouteTable {
  const byHost = new Map<string, CompiledRoute[]>();
  for (const spec of snapshot.routes) {
    const route = compileRoute(spec, snapshot, pools);
    const list = byHost.get(spec.hostname) ?? [];
    list.push(route);
    byHost.set(spec.hostname, list);
  }
  // Longest prefix first, so the first match is the most specific (the original had no precedence).
  for (const list of byHost.values()) list.sort((a, b) => b.spec.prefix.length - a.spec.prefix.length);

  return {
    snapshot,
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
}

function compileRoute(spec: RouteSpec, snapshot: Snapshot, pools: UpstreamPools): CompiledRoute {
  const table = providerTables[spec.type];
  const instances = spec.instances.map((instance) => compileInstance(instance, spec, table, pools));
  return {
    spec,
    table,
    keyMatcher: createClientKeyMatcher([...snapshot.globalClientKeys, ...spec.clientKeys]),
    picker: createWeightedPicker(instances, (instance) => instance.spec.weight),
    credentialHeaders: new Set(table.clientKeyHeaders),
  };
}

function compileInstance(spec: InstanceSpec, route: RouteSpec, table: ProviderTable, pools: UpstreamPools): CompiledInstance {
  const defaultPort = spec.tls ? 443 : 80;
  const keyHeaders = spec.upstreamKey === undefined ? [] : table.upstreamKeyHeaders(spec.upstreamKey).flat();
  return {
    spec,
    pool: pools.poolFor(spec),
    hostHeader: spec.port === defaultPort ? spec.endpoint : `${spec.endpoint}:${spec.port}`,
    keyHeaders,
    encodedQueryKey: table.keyQueryParam !== undefined && spec.upstreamKey !== undefined ? encodeURIComponent(spec.upstreamKey) : undefined,
    stripClientCredentials: route.authRequired || spec.upstreamKey !== undefined,
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
