// YAML text -> validated, frozen Config. Every problem names the field path and its line:column,
// because "invalid config" without a position costs an operator minutes per typo.
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { checkSemantics } from './semantics.js';

export type ConfigPath = readonly (string | number)[];

export interface ConfigIssue {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly file: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(issues.map((issue) => formatIssue(file, issue)).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface ParsedConfig {
  config: Config;
  warnings: readonly string[];
  /** Where a field sits in the file, for errors found after parsing (unreadable certificate files). */
  locate: (path: ConfigPath) => { line: number; column: number } | undefined;
}

export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out === '' ? '(top level)' : out;
}

export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.column ?? 1}`;
  return `${issue.path}: ${issue.message} (${where})`;
}

/** Locates a config path in the YAML source; the nearest existing ancestor when the field is missing. */
export function createLocator(doc: Document, lines: LineCounter) {
  return (path: ConfigPath, key?: string): { line: number; column: number } | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      if (!isNode(node) || !node.range) continue;
      let offset = node.range[0];
      if (key !== undefined && depth === path.length && isMap(node)) {
        const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === key);
        if (pair && isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
      }
      const pos = lines.linePos(offset);
      return { line: pos.line, column: pos.col };
    }
    return undefined;
  };
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) {
    const received = (issue as { input?: unknown }).input === undefined ? 'missing' : `got ${describe((issue as { input?: unknown }).input)}`;
    return received === 'missing' ? 'is required' : `must be a ${issue.expected} (${received})`;
  }
  return issue.message;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return typeof value;
}

function deleteAt(root: unknown, path: ConfigPath, key: string): void {
  let node = root;
  for (const part of path) node = (node as Record<string | number, unknown>)[part];
  if (node && typeof node === 'object') delete (node as Record<string, unknown>)[key];
}

export function parseConfigText(text: string, file: string): ParsedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((err) => {
        const pos = err.linePos?.[0];
        return { path: '(yaml)', message: err.message.split('\n')[0] ?? err.message, ...(pos ? { line: pos.line, column: pos.col } : {}) };
      }),
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const locate = createLocator(doc, lines);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '(top level)', message: 'the config must be a YAML map', ...locate([]) }]);
  }

  const warnings: string[] = [];
  let result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const unknown = result.error.issues.filter((issue) => issue.code === 'unrecognized_keys');
    const real = result.error.issues.filter((issue) => issue.code !== 'unrecognized_keys');
    for (const issue of unknown) {
      for (const key of issue.keys) {
        const pos = locate(issue.path as ConfigPath, key);
        warnings.push(formatIssue(file, { path: formatPath([...(issue.path as ConfigPath), key]), message: 'unknown field, ignored', ...pos }));
        deleteAt(raw, issue.path as ConfigPath, key);
      }
    }
    if (real.length > 0) {
      throw new ConfigError(
        file,
        real.map((issue) => ({ path: formatPath(issue.path as ConfigPath), message: issueMessage(issue), ...locate(issue.path as ConfigPath) })),
      );
    }
    result = configSchema.safeParse(raw, { reportInput: true });
    if (!result.success) throw new ConfigError(file, result.error.issues.map((issue) => ({ path: formatPath(issue.path as ConfigPath), message: issueMessage(issue) })));
  }

  const semanticIssues = checkSemantics(result.data).map(({ path, message }) => ({ path: formatPath(path), message, ...locate(path) }));
  if (semanticIssues.length > 0) throw new ConfigError(file, semanticIssues);
  return { config: deepFreeze(result.data), warnings, locate: (path) => locate(path) };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
