// A walk over the members of one JSON object in a request body that does not parse the body: it
// steps from key to key and jumps over each value, and strings (prompt text, base64 images, nearly
// all of a body's bytes) are skipped with native searches for the closing quote. What the request
// names at its top level (`model`, `max_tokens`) is found this way without a JSON.parse of the body.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function skipSpace(body: Buffer, i: number): number {
  while (isSpace(body[i])) i++;
  return i;
}

/** Index just past the string whose opening quote is at `open`, or -1 when it never closes. */
export function stringEnd(body: Buffer, open: number): number {
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
  if (first !== OPEN_BRACE && first !== 0x5b) {
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
    if (byte === OPEN_BRACE || byte === 0x5b) depth++;
    else if ((byte === 0x7d || byte === 0x5d) && --depth === 0) return i + 1;
    i++;
  }
  return -1;
}

/** Index of the `{` that opens the body's top-level object, or -1 when the body is not one. */
export function topLevelObject(body: Buffer): number {
  let i = skipSpace(body, 0);
  if (body[i] === 0xef) i = skipSpace(body, i + 3); // UTF-8 byte-order mark
  return body[i] === OPEN_BRACE ? i : -1;
}

/** Whether the value at `start` is an object (its `{`, spaces already skipped). */
export function isObjectAt(body: Buffer, start: number): boolean {
  return body[start] === OPEN_BRACE;
}

/**
 * Calls `visit` with each member of the object whose `{` is at `open`: the range of its quoted key
 * (quotes included) and of its value. Stops when `visit` returns true, or at the first byte that is
 * not well-formed JSON (a cut or hostile body simply yields fewer members).
 */
export function forEachMember(body: Buffer, open: number, visit: (keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => boolean): void {
  let i = skipSpace(body, open + 1);
  while (body[i] === QUOTE) {
    const keyEnd = stringEnd(body, i);
    if (keyEnd === -1) return;
    const keyStart = i;
    i = skipSpace(body, keyEnd);
    if (body[i] !== 0x3a) return;
    i = skipSpace(body, i + 1);
    const end = valueEnd(body, i);
    if (end === -1) return;
    if (visit(keyStart, keyEnd, i, end)) return;
    i = skipSpace(body, end);
    if (body[i] !== 0x2c) return;
    i = skipSpace(body, i + 1);
  }
}

/** Whether the quoted key at [start, end) is `quoted` (a key encoded once, quotes included). */
export function keyIs(body: Buffer, start: number, end: number, quoted: Buffer): boolean {
  return end - start === quoted.length && body.compare(quoted, 0, quoted.length, start, end) === 0;
}
