// The model a request names, read from the top level of its JSON body without parsing the body: the
// scan walks the top-level keys and jumps over each value, and strings (prompt text, base64 images,
// nearly all of a body's bytes) are skipped with native searches for the closing quote.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function skipSpace(body: Buffer, i: number): number {
  while (isSpace(body[i])) i++;
  return i;
}

/** Index just past the string whose opening quote is at `open`, or -1 when it never closes. */
function stringEnd(body: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = body.indexOf(QUOTE, at + 1);
    if (at === -1) return -1;
    let slashes = 0;
    while (body[at - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return at + 1;
  }
}

/** Index just past the value that starts at `i`, or -1 when the body ends first. */
function valueEnd(body: Buffer, i: number): number {
  const first = body[i];
  if (first === QUOTE) return stringEnd(body, i);
  if (first !== 0x7b && first !== 0x5b) {
    while (i < body.length && body[i] !== 0x2c && body[i] !== 0x7d && body[i] !== 0x5d) i++;
    return i;
  }
  let depth = 0;
  while (i < body.length) {
    const byte = body[i];
    if (byte === QUOTE) {
      i = stringEnd(body, i);
      if (i === -1) return -1;
      continue;
    }
    if (byte === 0x7b || byte === 0x5b) depth++;
    else if ((byte === 0x7d || byte === 0x5d) && --depth === 0) return i + 1;
    i++;
  }
  return -1;
}

/**
 * A reader of one top-level key's string value from a JSON object body (undefined when absent or not
 * a string). The quoted key is encoded once, not on every request.
 */
export function createTopLevelStringReader(key: string): (body: Buffer) => string | undefined {
  const wanted = Buffer.from(JSON.stringify(key));
  return (body) => readTopLevelString(body, wanted);
}

/** The `model` of an OpenAI or Anthropic request body; null (no body) names none. */
const readModel = createTopLevelStringReader('model');
export const modelInBody = (body: Buffer | null): string | undefined => (body === null ? undefined : readModel(body));

function readTopLevelString(body: Buffer, wanted: Buffer): string | undefined {
  let i = skipSpace(body, 0);
  if (body[i] === 0xef) i = skipSpace(body, i + 3); // UTF-8 byte-order mark
  if (body[i] !== 0x7b) return undefined;
  i = skipSpace(body, i + 1);
  while (body[i] === QUOTE) {
    const keyEnd = stringEnd(body, i);
    if (keyEnd === -1) return undefined;
    const matches = keyEnd - i === wanted.length && body.compare(wanted, 0, wanted.length, i, keyEnd) === 0;
    i = skipSpace(body, keyEnd);
    if (body[i] !== 0x3a) return undefined;
    i = skipSpace(body, i + 1);
    const end = valueEnd(body, i);
    if (end === -1) return undefined;
    if (matches) {
      if (body[i] !== QUOTE) return undefined;
      try {
        return JSON.parse(body.toString('utf8', i, end)) as string;
      } catch {
        return undefined;
      }
    }
    i = skipSpace(body, end);
    if (body[i] !== 0x2c) return undefined;
    i = skipSpace(body, i + 1);
  }
  return undefined;
}
