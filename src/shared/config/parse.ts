// YAML text -> validated, frozen Config. Every problem names the field path and its line:column,
// because "invalid config" without a position costs an operator minutes per typo.
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, visit, type Alias, type Document } from 'yaml';
import type { z } from 'zod';
import { formatPath, type ConfigPath } from './path.js';
import { configSchema, type Config, type ProviderConfig } from './schema.js';
import { checkSemantics, checkSemanticWarnings } from './semantics.js';
import { knownKeysAt, misplacedLevel, nearestName, requiredHint, requiredTogether, type Misplaced } from './suggest.js';
import { excerpt, pathAtOffset, treeIssue, yamlErrorIssues, yamlPath } from './yaml-errors.js';

export { formatPath, type ConfigPath };

export interface ConfigIssue {
  /** The field, as `providers[0].host`; `(yaml)` for a syntax error, which the broken tree cannot place. */
  path: string;
  message: string;
  line?: number;
  column?: number;
  /** The source line and a caret under the column, printed under the message. */
  excerpt?: string;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly file: string,
    readonly issues: readonly ConfigIssue[],
    /** Unknown-field warnings found before the errors, so `check` can still show them. */
    readonly warnings: readonly string[] = [],
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

export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.column ?? 1}`;
  const head = issue.path === yamlPath ? `${issue.message} (${where})` : `${issue.path}: ${issue.message} (${where})`;
  return issue.excerpt === undefined ? head : `${head}\n${issue.excerpt}`;
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

const expectedNames: Readonly<Record<string, string>> = {
  int: 'a whole number',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map',
};

// zod's own messages ("Too small: expected number to be >=1") are written for developers; ours name
// the rule in config terms. Messages set in schema.ts pass through unchanged.
function issueMessage(issue: z.core.$ZodIssue): string {
  // reportInput: a field YAML could not have left undefined is one the file does not have.
  if ((issue as { input?: unknown }).input === undefined && issue.code !== 'unrecognized_keys') return 'is required';
  if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) {
    return `must be ${expectedNames[issue.expected] ?? `a ${issue.expected}`} (got ${describe((issue as { input?: unknown }).input)})`;
  }
  if (issue.code === 'too_small' && issue.message.startsWith('Too small')) return `must be ${issue.inclusive === false ? '>' : '≥'} ${String(issue.minimum)}`;
  if (issue.code === 'too_big' && issue.message.startsWith('Too big')) return `must be ${issue.inclusive === false ? '<' : '≤'} ${String(issue.maximum)}`;
  return issue.message;
}

function describe(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'number' && !Number.isInteger(value)) return `${value}`;
  return typeof value;
}

function deleteAt(root: unknown, path: ConfigPath, key: string): void {
  let node = root;
  for (const part of path) node = (node as Record<string | number, unknown>)[part];
  if (node && typeof node === 'object') delete (node as Record<string, unknown>)[key];
}

/**
 * Aliases fail only when resolved: an unknown anchor, or so many aliases that resolving them would
 * blow up memory (the "billion laughs" document). Either is the file's fault, so a ConfigError at the
 * alias rather than a stack trace.
 */
function toPlainValue(text: string, doc: Document, lines: LineCounter, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    let culprit: Alias | undefined;
    visit(doc, {
      Alias(_key, alias) {
        culprit ??= alias;
        if (alias.resolve(doc) !== undefined) return undefined;
        culprit = alias;
        return visit.BREAK;
      },
    });
    const message = (err as Error).message;
    if (!culprit?.range) throw new ConfigError(file, [{ path: yamlPath, message: `invalid YAML: ${message}` }]);
    throw new ConfigError(file, [treeIssue(text, lines, doc, { code: 'BAD_ALIAS', message, pos: [culprit.range[0], culprit.range[1]] })]);
  }
}

/**
 * YAML allows a list, a map or tagged bytes as a key (`? [a, b]: 1`); a config never needs one, and
 * turned into an object it would silently become a string ("a,b"), with a runtime warning instead
 * of an error.
 */
function rejectCollectionKeys(text: string, doc: Document, lines: LineCounter, file: string): void {
  let bad: { range?: [number, number, number] | null } | undefined;
  visit(doc, {
    Pair(_key, pair) {
      const key = pair.key;
      // A scalar key is fine unless a tag made it something else (`!!binary` gives bytes).
      if (key === null || !isNode(key) || (isScalar(key) && (typeof key.value !== 'object' || key.value === null))) return undefined;
      bad = key as { range?: [number, number, number] | null };
      return visit.BREAK;
    },
  });
  if (bad === undefined) return;
  const at = bad.range ? lines.linePos(bad.range[0]) : undefined;
  const where = at ? { line: at.line, column: at.col, excerpt: excerpt(text, lines, at.line, at.col) } : {};
  throw new ConfigError(file, [{ path: yamlPath, message: 'invalid YAML: a key must be a plain value, not a list or a map', ...where }]);
}

function byPosition(a: { line?: number; column?: number }, b: { line?: number; column?: number }): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0);
}

/** The providers that pass the schema on their own, so cross-provider rules still run when another field is wrong. */
function validProviders(raw: unknown): (ProviderConfig | undefined)[] {
  const providers = (raw as { providers?: unknown }).providers;
  if (!Array.isArray(providers)) return [];
  return providers.map((item: unknown) => {
    const result = configSchema.shape.providers.element.safeParse(item);
    return result.success ? result.data : undefined;
  });
}

export function parseConfigText(text: string, file: string): ParsedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  // Nothing is validated in a document that did not parse: its tree is not the one the file meant.
  if (doc.errors.length > 0) throw new ConfigError(file, yamlErrorIssues(text, lines, doc, doc.errors));
  rejectCollectionKeys(text, doc, lines, file);
  const raw = toPlainValue(text, doc, lines, file);
  const locate = createLocator(doc, lines);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '(top level)', message: 'the config must be a YAML map', ...(locate([]) ?? { line: 1, column: 1 }) }]);
  }

  const warnings: ConfigIssue[] = doc.warnings.map((warning) => {
    const pos = lines.linePos(warning.pos[0]);
    return { path: formatPath(pathAtOffset(doc.contents, warning.pos[0])), message: `YAML: ${warning.message.split('\n')[0] ?? warning.message}`, line: pos.line, column: pos.col };
  });
  const misplaced: Misplaced[] = [];
  let result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const unknown = result.error.issues.filter((issue) => issue.code === 'unrecognized_keys');
    const real = result.error.issues.filter((issue) => issue.code !== 'unrecognized_keys');
    for (const issue of unknown) {
      const known = knownKeysAt(configSchema, issue.path as ConfigPath);
      for (const key of issue.keys) {
        const elsewhere = misplacedLevel(configSchema, issue.path as ConfigPath, key);
        if (elsewhere !== undefined) misplaced.push({ name: key, level: elsewhere, line: locate(issue.path as ConfigPath, key)?.line });
        const nearest = nearestName(key, known);
        const message =
          elsewhere !== undefined
            ? `unknown field, ignored; ${key} is a field of ${elsewhere}: check this line's indentation`
            : nearest === undefined
              ? 'unknown field, ignored'
              : `unknown field, ignored; did you mean ${nearest}?`;
        warnings.push({ path: formatPath([...(issue.path as ConfigPath), key]), message, ...locate(issue.path as ConfigPath, key) });
        deleteAt(raw, issue.path as ConfigPath, key);
      }
    }
    if (real.length > 0) {
      const issues = requiredTogether(real.map((issue) => ({ path: issue.path as ConfigPath, message: issueMessage(issue) }))).map(({ path, message }) => ({
        path: formatPath(path),
        message: message === 'is required' ? requiredHint(path, misplaced) : message,
        ...locate(path),
      }));
      // Report every problem in one run: cross-field rules over the providers that did parse.
      const reported = new Set(issues.map((issue) => issue.path));
      for (const { path, message } of checkSemantics({ providers: validProviders(raw) })) {
        if (!reported.has(formatPath(path))) issues.push({ path: formatPath(path), message, ...locate(path) });
      }
      throw new ConfigError(file, issues.sort(byPosition), formatWarnings(file, warnings));
    }
    result = configSchema.safeParse(raw, { reportInput: true });
    if (!result.success) throw new ConfigError(file, result.error.issues.map((issue) => ({ path: formatPath(issue.path as ConfigPath), message: issueMessage(issue) })));
  }

  const semanticIssues = checkSemantics(result.data).map(({ path, message }) => ({ path: formatPath(path), message, ...locate(path) }));
  if (semanticIssues.length > 0) throw new ConfigError(file, semanticIssues.sort(byPosition), formatWarnings(file, warnings));
  const keyLine = (path: ConfigPath) => locate(path.slice(0, -1), String(path.at(-1)))?.line;
  for (const { path, message, at } of checkSemanticWarnings(result.data, keyLine)) {
    warnings.push({ path: formatPath(path), message, ...locate(at.slice(0, -1), String(at.at(-1))) });
  }
  return {
    config: deepFreeze(result.data),
    warnings: formatWarnings(file, warnings),
    locate: (path) => locate(path),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function formatWarnings(file: string, warnings: ConfigIssue[]): string[] {
  return warnings.sort(byPosition).map((warning) => formatIssue(file, warning));
}
