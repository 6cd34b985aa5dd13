// Rules that a schema cannot express: they look across fields and providers. Rules about one field
// alone (endpoint, host and listen formats) live in schema.ts, so they are reported together with the
// type errors.
import { parseRouteHost } from './address.js';
import type { ClientKeyEntry, ProviderConfig } from './schema.js';
import { providerTables } from '../providers/registry.js';

export interface SemanticIssue {
  path: (string | number)[];
  message: string;
}

export interface SemanticInput {
  /** By index in the file; `undefined` where a provider failed the schema, so the others are still checked. */
  providers: readonly (ProviderConfig | undefined)[];
  /** The global keys, when they parsed. */
  auth_keys?: readonly ClientKeyEntry[];
}

/** Same values, whatever the order they were written in. */
function sameLimit(a: ClientKeyEntry, b: ClientKeyEntry): boolean {
  const limitOf = (entry: ClientKeyEntry) => (typeof entry === 'string' ? undefined : entry.rate_limit);
  const x = limitOf(a);
  const y = limitOf(b);
  return x?.requests_per_minute === y?.requests_per_minute && x?.tokens_per_minute === y?.tokens_per_minute && x?.concurrent === y?.concurrent;
}

/**
 * A key's limits hold for the key across every route, so a key listed in several places may carry
 * its rate_limit in one of them, or the same one in each; two different ones would be ambiguous.
 */
function checkKeyLimits(config: SemanticInput, issues: SemanticIssue[]): void {
  const firstLimited = new Map<string, { entry: ClientKeyEntry; where: string }>();
  const visit = (entry: ClientKeyEntry, path: (string | number)[]) => {
    if (typeof entry === 'string' || entry.rate_limit === undefined) return;
    const where = path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${part}`)).join('').slice(1);
    const seen = firstLimited.get(entry.key);
    if (seen === undefined) firstLimited.set(entry.key, { entry, where });
    else if (!sameLimit(seen.entry, entry)) {
      issues.push({ path: [...path, 'rate_limit'], message: `this key already has a different rate_limit at ${seen.where}; a key's limits apply on every route, so give it one` });
    }
  };
  config.auth_keys?.forEach((entry, i) => visit(entry, ['auth_keys', i]));
  config.providers.forEach((provider, index) => provider?.auth_keys?.forEach((entry, i) => visit(entry, ['providers', index, 'auth_keys', i])));
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
  checkKeyLimits(config, issues);
  return issues;
}

export interface SemanticWarning extends SemanticIssue {
  /** The field the warning is shown at. */
  at: (string | number)[];
}

/**
 * Allowed but likely not what was meant. `api_key` and `api_keys` on one provider are both used, as
 * the original does (`api_keys` first, then the `api_key` strings with the provider weight): a config
 * that ran under the original must still start, so this is said, not refused.
 */
export function checkSemanticWarnings(config: SemanticInput, lineOf: (path: (string | number)[]) => number | undefined): SemanticWarning[] {
  const warnings: SemanticWarning[] = [];
  config.providers.forEach((provider, index) => {
    if (provider?.api_key === undefined || provider.api_keys === undefined) return;
    const line = (field: string) => {
      const at = lineOf(['providers', index, field]);
      return at === undefined ? field : `${field} (line ${at})`;
    };
    warnings.push({
      path: ['providers', index],
      at: ['providers', index, 'api_key'],
      message: `${line('api_key')} and ${line('api_keys')} both set; the keys of both are used (api_keys first, then api_key with the provider weight); use api_keys alone for several keys`,
    });
  });
  return warnings;
}
