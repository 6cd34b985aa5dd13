// A YAML error as an operator can act on it: the line and column, the source line with a caret under
// the column, and in config terms where yaml's own words ("Implicit keys need to be on a single
// line") point the wrong way. One mis-indented line makes the parser stumble several times after
// it, on lines that are fine, and the tree it leaves behind is not the one the file meant (an extra
// `providers[1]`); so a syntax error is reported alone, named by its position, never by a field path.
import { isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type YAMLError } from 'yaml';
import { formatPath } from './path.js';
import { configSchema } from './schema.js';
import { allFieldNames } from './suggest.js';

export interface YamlIssue {
  path: string;
  message: string;
  line: number;
  column: number;
  excerpt: string;
}

type YamlProblem = Pick<YAMLError, 'code' | 'message' | 'pos'>;

/** Path of a YAML syntax error: the broken tree names no field, so the issue is printed by position alone. */
export const yamlPath = '(yaml)';

// An excerpt is printed by `check` and logged on a failed reload, and must never show a key; the line
// it shows is broken YAML, so which part is a key is guessed from the text. A value is shown only
// after a field name the config knows, and only for fields that hold no secret; anything else (a
// misspelt name, a bare list item) keeps its indentation and YAML punctuation and is masked, which
// is what a syntax error is about anyway.
const secretFields = new Set(['api_key', 'api_keys', 'key', 'auth_keys', 'url', 'headers']);
// Inside a value shown (a flow map on one line): everything after a secret field's colon.
const secretInside = /((?:^|[\s{,"'])(?:api_key|api_keys|key|auth_keys|url|headers)["']?\s*:)(.*)$/;
const fieldLine = /^(\s*(?:-\s+)*)(["']?)([A-Za-z_][\w-]*)\2(\s*:(?=\s|$))?(.*)$/;
const mask = (text: string) => text.replace(/[^\s[\]{},:"'-]/g, '*');
let knownFields: ReadonlySet<string> | undefined;

export function redactLine(line: string): string {
  knownFields ??= allFieldNames(configSchema);
  const field = fieldLine.exec(line);
  if (field === null) {
    const indent = /^\s*(?:-\s+)*/.exec(line)?.[0] ?? '';
    return indent + mask(line.slice(indent.length));
  }
  const [, indent = '', quote = '', name = '', colon, rest = ''] = field;
  if (!knownFields.has(name)) return indent + mask(line.slice(indent.length));
  const head = `${indent}${quote}${name}${quote}${colon ?? ''}`;
  if (secretFields.has(name)) return head + mask(rest);
  const inside = secretInside.exec(rest);
  return inside ? head + rest.slice(0, inside.index) + inside[1] + mask(inside[2] ?? '') : line;
}

/** Text of a 1-based line, without its line break. */
function lineText(text: string, lines: LineCounter, line: number): string {
  const start = lines.lineStarts[line - 1] ?? text.length;
  const end = lines.lineStarts[line] ?? text.length;
  return text.slice(start, end).replace(/\r?\n$/, '');
}

/**
 * `  6 |     host: x` then `    |     ^`. The caret line repeats the tabs of the source so that it lines
 * up in a terminal; a long line (a config written as one line of JSON) is cut around the column.
 */
export function excerpt(text: string, lines: LineCounter, line: number, column: number): string {
  let source = redactLine(lineText(text, lines, line));
  let col = Math.min(Math.max(column, 1), source.length + 1);
  const before = 40;
  const after = 80;
  if (source.length > before + after) {
    const from = Math.max(0, col - 1 - before);
    const to = Math.min(source.length, col - 1 + after);
    source = `${from > 0 ? '…' : ''}${source.slice(from, to)}${to < source.length ? '…' : ''}`;
    col = col - from + (from > 0 ? 1 : 0);
  }
  const gutter = String(line);
  const pad = ' '.repeat(gutter.length);
  const caretIndent = source.slice(0, col - 1).replace(/[^\t]/g, ' ');
  return `  ${gutter} | ${source}\n  ${pad} | ${caretIndent}^`;
}

/** The path of the deepest key or value at a source offset: where a problem sits in config terms. */
export function pathAtOffset(node: unknown, offset: number, path: (string | number)[] = []): (string | number)[] {
  // range[1] is where the value ends; range[2] would also take in the trailing blank lines and
  // comments, and blame a bad indent on the next line on the field above it.
  const within = (range: readonly number[] | null | undefined) => !!range && offset >= (range[0] ?? 0) && offset <= (range[1] ?? -1);
  if (isMap(node)) {
    // A syntax error can leave null or multi-word keys behind; they name nothing in config.yml.
    const pairs = node.items.flatMap((pair) =>
      isScalar(pair.key) && typeof pair.key.value === 'string' && !/\s/.test(pair.key.value) ? [{ key: pair.key, name: pair.key.value, value: pair.value }] : [],
    );
    // Keys first: a block value's range runs up to the next key, so a duplicate key would
    // otherwise be blamed on the value above it.
    const hit = pairs.find((pair) => within(pair.key.range));
    if (hit) return [...path, hit.name];
    const inside = pairs.find((pair) => isNode(pair.value) && within(pair.value.range));
    if (inside) return pathAtOffset(inside.value, offset, [...path, inside.name]);
    // Between a key and its value: a tag (`!foo`) or an anchor.
    const between = pairs.find((pair) => isNode(pair.value) && within([pair.key.range?.[0] ?? 0, pair.value.range?.[0] ?? -1]));
    if (between) return [...path, between.name];
  } else if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      if (isNode(item) && within(item.range)) return pathAtOffset(item, offset, [...path, index]);
    }
  }
  return path;
}

function firstLine(message: string): string {
  // The lexer quotes the source of a token it could not place; that may be part of a key.
  return (message.split('\n')[0] ?? message).replace(/: "(.{9,})"$/, '');
}

interface Position {
  line: number;
  column: number;
}

/** The first line after `line`, up to `lastLine`, with something other than blanks or a comment. */
function nextContentLine(text: string, lines: LineCounter, line: number, lastLine: number): number | undefined {
  for (let n = line + 1; n <= lastLine; n++) if (!/^\s*(#.*)?$/.test(lineText(text, lines, n))) return n;
  return undefined;
}

/**
 * Where the quote or bracket yaml says is not closed was opened: the last quote before the error
 * (an unclosed string runs up to it), or the `[`/`{` that the brackets after it do not balance.
 * Textual, because the tree of such a document is not to be trusted.
 */
function unclosedOpener(text: string, err: YamlProblem): { char: string; offset: number } | undefined {
  const quote = /^Missing closing (["'])quote/.exec(err.message)?.[1];
  if (err.code === 'MISSING_CHAR' && quote !== undefined) {
    for (let i = err.pos[0] - 1; i >= 0; i--) {
      if (text[i] !== quote) continue;
      // Inside the string an escaped quote is \" (double) or '' (single); the opener is neither.
      if (quote === '"' && text[i - 1] === '\\') continue;
      if (quote === "'" && text[i - 1] === "'") {
        i--;
        continue;
      }
      return { char: quote, offset: i };
    }
    return undefined;
  }
  const flow = /^Flow (sequence|map) in block collection/.exec(err.message)?.[1];
  if (err.code !== 'BAD_INDENT' || flow === undefined) return undefined;
  const [open, close] = flow === 'sequence' ? ['[', ']'] : ['{', '}'];
  let depth = 0;
  for (let i = Math.min(err.pos[0], text.length) - 1; i >= 0; i--) {
    if (text[i] === close) depth++;
    else if (text[i] === open && depth-- === 0) return { char: open, offset: i };
  }
  return undefined;
}

/**
 * yaml's words for the common slips, turned into what the operator did. Returns the message and where
 * the caret goes; `undefined` leaves yaml's message and position as they are.
 */
function explain(text: string, lines: LineCounter, err: YamlProblem, all: readonly YamlProblem[], at: Position): { message: string; at: Position } | undefined {
  const source = lineText(text, lines, at.line);
  const indent = /^[ ]*/.exec(source)?.[0].length ?? 0;
  // yaml names a tab only when it starts the line; after spaces it reports the indentation it breaks.
  if (source[indent] === '\t' && (err.code === 'TAB_AS_INDENT' || err.code === 'BAD_INDENT' || err.code === 'MISSING_CHAR')) {
    return { message: 'invalid YAML: Tabs are not allowed as indentation', at: { line: at.line, column: indent + 1 } };
  }
  if (err.code === 'BLOCK_AS_IMPLICIT_KEY' || err.code === 'MULTILINE_IMPLICIT_KEY') {
    const multi = all.find((other) => other.code === 'MULTILINE_IMPLICIT_KEY' && other.pos[0] === err.pos[0]);
    const lastLine = multi ? lines.linePos(multi.pos[1]).line : at.line;
    const before = source.slice(0, at.column - 1);
    const valueOf = /([\w-]+)["']?\s*:\s*$/.exec(before);
    const next = nextContentLine(text, lines, at.line, lastLine);
    if (valueOf && next !== undefined) {
      // `host: x` then a line indented deeper: YAML reads that line as more of x, and x as a key.
      const nextIndent = /^[ ]*/.exec(lineText(text, lines, next))?.[0].length ?? 0;
      return {
        message: `invalid YAML: this line is indented more than line ${at.line}, so it reads as part of the value of ${valueOf[1]} there; keys of one map must start in the same column`,
        at: { line: next, column: nextIndent + 1 },
      };
    }
    if (at.column === indent + 1 && !source.slice(indent).startsWith('-') && !/:(\s|$)/.test(source.slice(at.column - 1))) {
      return { message: 'invalid YAML: no colon after the key on this line (write key: value), so YAML reads it together with the next line', at };
    }
  }
  // An unclosed quote or bracket is found where the document ends; the slip is where it opened.
  const opener = unclosedOpener(text, err);
  if (opener !== undefined) {
    const pos = lines.linePos(opener.offset);
    return { message: `invalid YAML: this ${opener.char} is never closed${opener.char === '"' || opener.char === "'" ? '' : ` (no matching ${opener.char === '[' ? ']' : '}'})`}`, at: { line: pos.line, column: pos.col } };
  }
  // An error at the start of an indented line is about its indentation: the operator's mistake is
  // where the text starts.
  if (at.column === 1 && indent > 0) {
    return { message: `invalid YAML: ${firstLine(err.message)}; check this line's indentation against the lines above it`, at: { line: at.line, column: indent + 1 } };
  }
  if (err.code === 'MULTIPLE_DOCS') return { message: 'invalid YAML: a second document starts here (a --- line); a config is one YAML document', at };
  return undefined;
}

function located(text: string, lines: LineCounter, path: string, message: string, at: Position): YamlIssue {
  return { path, message, line: at.line, column: at.column, excerpt: excerpt(text, lines, at.line, at.column) };
}

/**
 * The issues to report for a document yaml found errors in. A duplicate key leaves a sound tree, so
 * duplicates alone are each reported with their field path; any other error breaks the tree, and then
 * only the first one is reported: what follows it is mostly the parser losing its footing.
 */
export function yamlErrorIssues(text: string, lines: LineCounter, doc: Document, errors: readonly YamlProblem[]): YamlIssue[] {
  // At one offset, a tab says more than the indentation error it causes.
  const sorted = [...errors].sort((a, b) => a.pos[0] - b.pos[0] || Number(b.code === 'TAB_AS_INDENT') - Number(a.code === 'TAB_AS_INDENT'));
  if (sorted.every((err) => err.code === 'DUPLICATE_KEY')) return sorted.map((err) => treeIssue(text, lines, doc, err));
  const first = sorted.find((err) => err.code !== 'DUPLICATE_KEY') ?? (sorted[0] as YamlProblem);
  const pos = lines.linePos(first.pos[0]);
  const at = { line: pos.line, column: pos.col };
  const plain = explain(text, lines, first, sorted, at) ?? { message: `invalid YAML: ${firstLine(first.message)}`, at };
  const issue = located(text, lines, yamlPath, plain.message, plain.at);
  const more = sorted.length - 1;
  if (more > 0) issue.excerpt += `\n  (${more} more YAML ${more === 1 ? 'error' : 'errors'} after this one, most likely caused by it: fix this one and check again)`;
  return [issue];
}

/** A YAML problem in a sound tree (a duplicate key, an unresolved alias): named by its field path too. */
export function treeIssue(text: string, lines: LineCounter, doc: Document, err: YamlProblem): YamlIssue {
  const pos = lines.linePos(err.pos[0]);
  const path = pathAtOffset(doc.contents, err.pos[0]);
  let message = `invalid YAML: ${firstLine(err.message)}`;
  const key = path.at(-1);
  if (err.code === 'DUPLICATE_KEY' && typeof key === 'string') {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    const firstPair = isMap(parent) ? parent.items.find((pair) => isScalar(pair.key) && String(pair.key.value) === key) : undefined;
    const firstAt = firstPair && isScalar(firstPair.key) && firstPair.key.range ? lines.linePos(firstPair.key.range[0]).line : undefined;
    message = `duplicate key${firstAt === undefined ? '' : `, first set on line ${firstAt}`}; YAML keys must be unique`;
  }
  return located(text, lines, path.length > 0 ? formatPath(path) : yamlPath, message, { line: pos.line, column: pos.col });
}
