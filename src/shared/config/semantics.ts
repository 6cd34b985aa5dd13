// Rules that a schema cannot express: they look across fields and providers. Rules about one field
// alone (endpoint, host and listen formats) live in schema.ts, so they are reported together with the
// type errors.
import { parseRouteHost } from './address.js';
import type { ProviderConfig } from './schema.js';
import { providerTables } from '../providers/registry.js';

export interface SemanticIssue {
  path: (string | number)[];
  message: string;
}

export interface SemanticInput {
  /** By index in the file; `undefined` where a provider failed the schema, so the others are still checked. */
  providers: readonly (ProviderConfig | undefined)[];
}

export function checkSemantics(config: SemanticInput): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const routeTypes = new Map<string, { type: string; index: number }>();

  config.providers.forEach((provider, index) => {
    if (provider === undefined) return;
    const at = (...rest: (string | number)[]) => ['providers', index, ...rest];
    const routeHost = parseRouteHost(provider.host);
    if (routeHost) {
      const routeKey = `${routeHost.hostname}${routeHost.prefix}`;
      const seen = routeTypes.get(routeKey);
      if (seen && seen.type !== provider.type) {
        issues.push({
          path: at('type'),
          message: `route "${routeKey}" is already ${seen.type} (providers[${seen.index}]); providers sharing a host must share a type`,
        });
      } else if (!seen) routeTypes.set(routeKey, { type: provider.type, index });
    }
    const keyCount = (provider.api_keys?.length ?? 0) + (provider.api_key === undefined ? 0 : typeof provider.api_key === 'string' ? 1 : provider.api_key.length);
    if (keyCount === 0 && providerTables[provider.type].requiresUpstreamKey) {
      issues.push({ path: at('api_key'), message: `${provider.type} needs an upstream key (api_key or api_keys)` });
    }
  });
  return issues;
}
