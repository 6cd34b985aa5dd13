// Hints for a field in the wrong place: "did you mean health_check_interval?" for an unknown field,
// the level a field belongs to when it was indented into another one, and the required fields it
// left missing. The known names come from the zod schema, so a new field needs no list kept in step.
import type { z } from 'zod';
import { formatPath, type ConfigPath } from './path.js';

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; options?: z.ZodType[]; in?: z.ZodType; out?: z.ZodType };

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The schemas a value at this point may be, wrappers (optional, default, pipe) taken off and unions spread. */
function unwrap(schema: z.ZodType): z.ZodType[] {
  const def = defOf(schema);
  if (def.innerType) return unwrap(def.innerType);
  if (def.type === 'pipe' && def.in) return unwrap(def.in);
  if (def.type === 'union' && def.options) return def.options.flatMap(unwrap);
  return [schema];
}

/** Field names a map at `path` may have, in schema order. */
export function knownKeysAt(root: z.ZodType, path: ConfigPath): string[] {
  let schemas = unwrap(root);
  for (const part of path) {
    schemas = schemas.flatMap((schema) => {
      const def = defOf(schema);
      if (typeof part === 'number') return def.type === 'array' && def.element ? unwrap(def.element) : [];
      const field = def.type === 'object' ? def.shape?.[part] : undefined;
      return field ? unwrap(field) : [];
    });
  }
  return [...new Set(schemas.flatMap((schema) => Object.keys(defOf(schema).shape ?? {})))];
}

/** Every field name the config has, at any level. */
export function allFieldNames(root: z.ZodType): Set<string> {
  const names = new Set<string>();
  const seen = new Set<z.ZodType>();
  const walk = (schema: z.ZodType) => {
    for (const inner of unwrap(schema)) {
      if (seen.has(inner)) continue;
      seen.add(inner);
      const def = defOf(inner);
      if (def.element) walk(def.element);
      for (const [name, field] of Object.entries(def.shape ?? {})) {
        names.add(name);
        walk(field);
      }
    }
  };
  walk(root);
  return names;
}

/** Damerau-Levenshtein distance (optimal string alignment): a swapped pair of letters is one edit. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    const up = rows[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = best;
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The known name closest to `unknown`, if it is close enough to be a typo: two edits for names of five
 * letters or more, one below that (a three-letter name is one edit from many others). Case is not
 * counted, so `API_KEY` suggests api_key.
 */
export function nearestName(unknown: string, known: readonly string[]): string | undefined {
  const wanted = unknown.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(wanted, name);
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  if (best === undefined) return undefined;
  const limit = Math.min(wanted.length, best.name.length) >= 5 ? 2 : 1;
  return best.distance <= limit ? best.name : undefined;
}

/**
 * Where else a field of this exact name belongs, one level up or down: YAML that parses but was
 * indented wrong puts a provider's `endpoint` at the top level, or a health_check `path` beside the
 * provider fields. Returns that level as an operator reads it (`providers[0]`, `providers[].health_check`).
 */
export function misplacedLevel(root: z.ZodType, path: ConfigPath, name: string): string | undefined {
  const level = (parts: ConfigPath) => parts.map((part) => (typeof part === 'number' ? `[${part}]` : part)).join('.').replace(/\.\[/g, '[');
  // Up: the parent map (skipping a list index, which is not a map of its own).
  const parentEnd = typeof path.at(-1) === 'number' ? path.length - 2 : path.length - 1;
  if (parentEnd >= 0) {
    const parent = path.slice(0, parentEnd);
    if (knownKeysAt(root, parent).includes(name)) return parent.length === 0 ? 'the top level' : level(parent);
  }
  // Down: a map, or a list of maps, that this level has.
  for (const child of knownKeysAt(root, path)) {
    if (knownKeysAt(root, [...path, child]).includes(name)) return level([...path, child]);
    if (knownKeysAt(root, [...path, child, 0]).includes(name)) return `${level([...path, child])}[]`;
  }
  return undefined;
}

/** An unknown field whose name is a field of a neighbouring level: most likely indented wrong. */
export interface Misplaced {
  name: string;
  /** The level it belongs to, as misplacedLevel() names it. */
  level: string;
  line: number | undefined;
}

/**
 * Several required fields missing from one map (a stray `-` starting a second provider) are one
 * problem at one line, not one error per field.
 */
export function requiredTogether(issues: { path: ConfigPath; message: string }[]): { path: ConfigPath; message: string }[] {
  const missing = new Map<string, { parent: ConfigPath; names: string[] }>();
  for (const issue of issues) {
    const name = issue.path.at(-1);
    if (issue.message !== 'is required' || typeof name !== 'string') continue;
    const parent = issue.path.slice(0, -1);
    const entry = missing.get(JSON.stringify(parent)) ?? { parent, names: [] };
    entry.names.push(name);
    missing.set(JSON.stringify(parent), entry);
  }
  const out: { path: ConfigPath; message: string }[] = [];
  const done = new Set<string>();
  for (const issue of issues) {
    const key = JSON.stringify(issue.path.slice(0, -1));
    const group = issue.message === 'is required' ? missing.get(key) : undefined;
    if (group === undefined || group.names.length < 2) out.push(issue);
    else if (!done.has(key)) {
      done.add(key);
      out.push({ path: group.parent, message: `${group.names.slice(0, -1).join(', ')} and ${group.names.at(-1)} are required` });
    }
  }
  return out;
}

/** "is required", and where the file has that field at the wrong indentation, that line. */
export function requiredHint(path: ConfigPath, misplaced: readonly Misplaced[]): string {
  const name = path.at(-1);
  const level = formatPath(path.slice(0, -1)).replace(/\[\d+\]/g, '[]');
  const found = misplaced.find((m) => m.name === name && m.line !== undefined && m.level.replace(/\[\d+\]/g, '[]') === level);
  return found === undefined ? 'is required' : `is required; line ${found.line} has ${String(name)} at another indentation`;
}
