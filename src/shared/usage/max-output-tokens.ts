// The most a request lets the model generate, as it declares it (OpenAI `max_tokens`, Anthropic
// `max_tokens`, Gemini `generationConfig.maxOutputTokens`, ...), read without parsing the body: the
// walk of json-members visits the top-level keys only, and the one nested object a path names.
import { forEachMember, isObjectAt, keyIs, topLevelObject } from './json-members.js';

/** Where a provider's requests declare their output cap: a top-level key, or a key of a top-level object. */
export type KeyPath = readonly [string] | readonly [string, string];

interface EncodedPath {
  readonly outer: Buffer;
  readonly inner: Buffer | undefined;
}

const encode = (key: string): Buffer => Buffer.from(JSON.stringify(key));

/** A non-negative number as the request wrote it, else undefined (null, a string, a cut body). */
function numberAt(body: Buffer, start: number, end: number): number | undefined {
  const text = body.toString('latin1', start, end).trim();
  if (text === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? Math.ceil(value) : undefined;
}

function innerNumber(body: Buffer, open: number, inner: Buffer): number | undefined {
  let found: number | undefined;
  forEachMember(body, open, (keyStart, keyEnd, valueStart, valueEnd) => {
    if (!keyIs(body, keyStart, keyEnd, inner)) return false;
    found = numberAt(body, valueStart, valueEnd);
    return true;
  });
  return found;
}

/**
 * A reader of the declared output cap at any of `paths`, built once per provider table. Where a body
 * declares it twice (OpenAI's deprecated `max_tokens` beside `max_completion_tokens`), the larger counts.
 */
export function createMaxOutputReader(paths: readonly KeyPath[]): (body: Buffer | null) => number | undefined {
  const encoded: EncodedPath[] = paths.map((path) => ({ outer: encode(path[0]), inner: path[1] === undefined ? undefined : encode(path[1]) }));
  return (body) => {
    if (body === null) return undefined;
    const open = topLevelObject(body);
    if (open === -1) return undefined;
    let largest: number | undefined;
    forEachMember(body, open, (keyStart, keyEnd, valueStart, valueEnd) => {
      for (const path of encoded) {
        if (!keyIs(body, keyStart, keyEnd, path.outer)) continue;
        let value: number | undefined;
        if (path.inner === undefined) value = numberAt(body, valueStart, valueEnd);
        else if (isObjectAt(body, valueStart)) value = innerNumber(body, valueStart, path.inner);
        if (value !== undefined && (largest === undefined || value > largest)) largest = value;
      }
      return false;
    });
    return largest;
  };
}
