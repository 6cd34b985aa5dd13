// Reads and validates everything a config names (the YAML, certificates, CA files) before anything
// uses it, so a bad file is reported with its field and line and never half-applied.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigError, formatPath, parseConfigText, type ConfigIssue, type ConfigPath, type ParsedConfig } from '../shared/config/parse.js';
import type { Config } from '../shared/config/schema.js';

export interface LoadedConfig {
  file: string;
  config: Config;
  warnings: readonly string[];
  certPem: string;
  keyPem: string;
  /** CA bundles by the path given in ca_file. */
  caPems: ReadonlyMap<string, string>;
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '(file)', message: `cannot read the config file: ${(err as Error).message}` }]);
  }
  const parsed = parseConfigText(text, file);
  const issues: ConfigIssue[] = [];
  const issueAt = (path: ConfigPath, message: string) => issues.push({ path: formatPath(path), message, ...parsed.locate(path) });

  const certPem = await readPem(parsed.config.cert_file, ['cert_file'], issueAt);
  const keyPem = await readPem(parsed.config.private_key_file, ['private_key_file'], issueAt);
  if (certPem !== undefined && keyPem !== undefined) {
    try {
      createSecureContext({ cert: certPem, key: keyPem });
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const message = code.includes('KEY_VALUES_MISMATCH')
        ? 'does not match the certificate in cert_file'
        : `certificate or key cannot be loaded: ${(err as Error).message}`;
      issueAt(code.includes('KEY_VALUES_MISMATCH') ? ['private_key_file'] : ['cert_file'], message);
    }
  }

  const caPems = new Map<string, string>();
  for (const [index, provider] of parsed.config.providers.entries()) {
    if (provider.ca_file === undefined || caPems.has(provider.ca_file)) continue;
    const pem = await readPem(provider.ca_file, ['providers', index, 'ca_file'], issueAt);
    if (pem === undefined) continue;
    try {
      createSecureContext({ ca: pem });
      caPems.set(provider.ca_file, pem);
    } catch (err) {
      issueAt(['providers', index, 'ca_file'], `not a usable PEM CA bundle: ${(err as Error).message}`);
    }
  }
  const storeCa = parsed.config.shared_store?.ca_file;
  if (storeCa !== undefined && !caPems.has(storeCa)) {
    const pem = await readPem(storeCa, ['shared_store', 'ca_file'], issueAt);
    if (pem !== undefined) caPems.set(storeCa, pem);
  }
  if (issues.length > 0) throw new ConfigError(file, issues, parsed.warnings);
  return { file, config: parsed.config, warnings: parsed.warnings, certPem: certPem ?? '', keyPem: keyPem ?? '', caPems };
}

async function readPem(path: string, at: ConfigPath, issueAt: (path: ConfigPath, message: string) => void): Promise<string | undefined> {
  try {
    const pem = await readFile(path, 'utf8');
    if (!pem.includes('-----BEGIN ')) {
      issueAt(at, `${path} is not a PEM file`);
      return undefined;
    }
    return pem;
  } catch (err) {
    const code = (err as { code?: string }).code;
    issueAt(at, code === 'ENOENT' ? `file not found: ${path}` : `cannot read ${path}: ${(err as Error).message}`);
    return undefined;
  }
}

/** TLS session-ticket keys shared by every worker so a resumed session may land on any of them. */
export function createTicketKeys(): string {
  return randomBytes(48).toString('base64');
}

export type { ParsedConfig };
