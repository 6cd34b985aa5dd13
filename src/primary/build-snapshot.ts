// Compiles a loaded config into the snapshot workers route by: key expansion, weights, route
// grouping and auth rules are decided here, once, not per request.
import { parseListenAddress, parseRouteHost } from '../shared/config/address.js';
import type { ClientKeyEntry, ProviderConfig } from '../shared/config/schema.js';
import { maskKey } from '../shared/log.js';
import type { ClientKeySpec, InstanceSpec, RouteSpec, Snapshot } from '../shared/snapshot.js';
import type { LoadedConfig } from './load-config.js';

export interface SnapshotOverrides {
  listen?: string;
}

export function buildSnapshot(loaded: LoadedConfig, version: number, ticketKeys: string, overrides: SnapshotOverrides = {}): Snapshot {
  const { config } = loaded;
  const listen = parseListenAddress(overrides.listen ?? config.listen);
  if (!listen) throw new Error(`invalid listen address ${overrides.listen ?? config.listen}`);
  const globalClientKeys = config.auth_keys.map(toClientKey);

  const routes = new Map<string, RouteSpec>();
  config.providers.forEach((provider, providerIndex) => {
    const routeHost = parseRouteHost(provider.host);
    if (!routeHost) throw new Error(`providers[${providerIndex}].host was not validated`);
    const routeKey = `${routeHost.hostname}${routeHost.prefix}`;
    let route = routes.get(routeKey);
    if (!route) {
      route = {
        label: provider.host,
        hostname: routeHost.hostname,
        prefix: routeHost.prefix,
        type: provider.type,
        clientKeys: [],
        authRequired: globalClientKeys.length > 0,
        instances: [],
      };
      routes.set(routeKey, route);
    }
    if (provider.auth_keys !== undefined) {
      route.authRequired = true;
      route.clientKeys.push(...provider.auth_keys.map(toClientKey));
    }
    route.instances.push(...expandInstances(provider, providerIndex, loaded.caPems));
  });

  return {
    version,
    loadedAt: Date.now(),
    listen,
    tls: { cert: loaded.certPem, key: loaded.keyPem, ticketKeys },
    timeouts: {
      connectMs: config.timeouts.connect * 1000,
      firstByteMs: config.timeouts.first_byte * 1000,
      idleMs: config.timeouts.idle * 1000,
      requestHeaderMs: config.timeouts.request_header * 1000,
      keepAliveMs: config.timeouts.keep_alive * 1000,
      shutdownMs: config.timeouts.shutdown * 1000,
    },
    limits: { maxBodyBytes: config.limits.max_body_bytes, maxHeaderBytes: config.limits.max_header_bytes },
    log: { level: config.log.level, format: config.log.format },
    globalClientKeys,
    routes: [...routes.values()],
  };
}

function toClientKey(entry: ClientKeyEntry): ClientKeySpec {
  return typeof entry === 'string' ? { key: entry, label: maskKey(entry) } : { key: entry.key, label: entry.name ?? maskKey(entry.key) };
}

/**
 * One instance per upstream key, as the original does: `api_keys` first, then `api_key` strings;
 * each key's weight is its own, else the provider's, else 1. No key at all (OpenAI only) is one
 * keyless instance that passes the client's credentials through.
 */
function expandInstances(provider: ProviderConfig, providerIndex: number, caPems: ReadonlyMap<string, string>): InstanceSpec[] {
  const keys: { key: string | undefined; weight: number | undefined }[] = [
    ...(provider.api_keys ?? []).map((entry) => ({ key: entry.key, weight: entry.weight })),
    ...(provider.api_key === undefined ? [] : typeof provider.api_key === 'string' ? [provider.api_key] : provider.api_key).map((key) => ({
      key,
      weight: undefined,
    })),
  ];
  if (keys.length === 0) keys.push({ key: undefined, weight: undefined });
  const port = provider.port ?? (provider.tls ? 443 : 80);
  return keys.map(({ key, weight }, keyIndex) => ({
    name: keys.length > 1 ? `${provider.endpoint}#${providerIndex}.${keyIndex}` : `${provider.endpoint}#${providerIndex}`,
    endpoint: provider.endpoint,
    port,
    tls: provider.tls,
    http2: provider.http2,
    caPem: provider.ca_file === undefined ? undefined : caPems.get(provider.ca_file),
    upstreamKey: key,
    weight: weight ?? provider.weight ?? 1,
  }));
}
