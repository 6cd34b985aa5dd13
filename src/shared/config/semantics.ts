// Rules that a schema cannot express: they look across fields and providers.
import { isHostname, parseListenAddress, parseRouteHost } from './address.js';
import type { Config } from './schema.js';
import { providerTables } from '../providers/registry.js';

export interface SemanticIssue {
  path: (string | number)[];
  message: string;
}

export function checkSemantics(config: Config): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const routeTypes = new Map<string, { type: string; index: number }>();

  if (!parseListenAddress(config.listen)) issues.push({ path: ['listen'], message: 'port must be 0-65535' });
  if (config.admin.listen !== false && !parseListenAddress(config.admin.listen)) {
    issues.push({ path: ['admin', 'listen'], message: 'port must be 0-65535' });
  }

  config.providers.forEach((provider, index) => {
    const at = (...rest: (string | number)[]) => ['providers', index, ...rest];
    const routeHost = parseRouteHost(provider.host);
    if (!routeHost) {
      issues.push({ path: at('host'), message: `"${provider.host}" is not a host name with an optional /path prefix` });
    } else {
      const routeKey = `${routeHost.hostname}${routeHost.prefix}`;
      const seen = routeTypes.get(routeKey);
      if (seen && seen.type !== provider.type) {
        issues.push({
          path: at('type'),
          message: `route "${routeKey}" is already ${seen.type} (providers[${seen.index}]); providers sharing a host must share a type`,
        });
      } else if (!seen) routeTypes.set(routeKey, { type: provider.type, index });
    }
    if (!isHostname(provider.endpoint)) {
      issues.push({
        path: at('endpoint'),
        message: `"${provider.endpoint}" must be a bare host name or IP address (no scheme, port or path; use port: for the port)`,
      });
    }
    const keyCount = (provider.api_keys?.length ?? 0) + (provider.api_key === undefined ? 0 : typeof provider.api_key === 'string' ? 1 : provider.api_key.length);
    if (keyCount === 0 && providerTables[provider.type].requiresUpstreamKey) {
      issues.push({ path: at('api_key'), message: `${provider.type} needs an upstream key (api_key or api_keys)` });
    }
  });
  return issues;
}
