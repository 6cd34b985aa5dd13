// Reads the last members of a JSON object from the end of its text, backwards, without parsing what
// comes before them: how the usage of a non-streamed body is found in time and memory that do not
// grow with the body (a 10 MB answer costs what a 1 KB one does). Providers put usage at the end of
// their answers (OpenAI's `usage`, Anthropic's `usage`, Gemini's `usageMetadata`, followed at most
// by a few short members), so a fixed-size tail holds it. Walking back from the document's closing
// brace keeps exact track of depth and strings: a quote preceded by an even run of backslashes is
// real, and outside strings JSON has no backslashes. Only a member of the top-level object counts, so
// a `usage` key nested in a tool's arguments or in echoed tool schemas is never taken for it.

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function skipSpaceBack(text: Buffer, i: number): number {
  while (i >= 0 && isSpace(text[i])) i--;
  return i;
}

/** Whether the quote at `at` is escaped: an odd run of backslashes stands right before it. */
function escapedAt(text: Buffer, at: number): boolean {
  let slashes = 0;
  while (at - 1 - slashes >= 0 && text[at - 1 - slashes] === 0x5c) slashes++;
  return slashes % 2 === 1;
}

/**
 * Index of the last quote before `before`, or -1. Keys and numbers' neighbours are a few bytes long:
 * a loop over them costs less than a call into lastIndexOf, which is kept for long strings.
 */
function quoteBefore(text: Buffer, before: number): number {
  const stop = Math.max(0, before - 32);
  for (let i = before - 1; i >= stop; i--) if (text[i] === 0x22) return i;
  return stop === 0 ? -1 : text.lastIndexOf(0x22, stop - 1);
}

/** Index of the quote that opens the string closed at `close`, or -1 when the text starts first. */
function openingQuote(text: Buffer, close: number): number {
  for (let at = quoteBefore(text, close); at !== -1; at = quoteBefore(text, at)) {
    if (!escapedAt(text, at)) return at;
  }
  return -1;
}

/** Index of the bracket that opens the object or array closed at `close`, or -1 when cut off. */
function openingBracket(text: Buffer, close: number): number {
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    const byte = text[i];
    if (byte === 0x22) {
      i = openingQuote(text, i);
      if (i === -1) return -1;
    } else if (byte === 0x7d || byte === 0x5d) depth++;
    else if ((byte === 0x7b || byte === 0x5b) && --depth === 0) return i;
  }
  return -1;
}

/** Index of the first byte of the value that ends at `end`, or -1 when cut off. */
function valueStart(text: Buffer, end: number): number {
  const last = text[end];
  if (last === 0x7d || last === 0x5d) return openingBracket(text, end);
  if (last === 0x22) return openingQuote(text, end);
  // A number, true, false or null: back to the colon before it.
  let i = end;
  while (i > 0 && !isSpace(text[i - 1]) && text[i - 1] !== 0x3a) i--;
  return i === 0 ? -1 : i;
}

function keyEquals(text: Buffer, open: number, close: number, quotedKey: Buffer): boolean {
  return close - open + 1 === quotedKey.length && text.compare(quotedKey, 0, quotedKey.length, open, close + 1) === 0;
}

/**
 * The object value of `quotedKey` (quotes included) among the members of the top-level object whose
 * text ends `tail` (trailing whitespace allowed), parsed; undefined when that member is not within
 * the tail, is not an object, or the text is not JSON. The tail may begin anywhere in the document.
 */
export function topLevelObjectValue(tail: Buffer, quotedKey: Buffer): unknown {
  let i = skipSpaceBack(tail, tail.length - 1);
  if (tail[i] !== 0x7d) return undefined;
  i = skipSpaceBack(tail, i - 1);
  while (i >= 0 && tail[i] !== 0x7b) {
    const valueEnd = i;
    const start = valueStart(tail, valueEnd);
    if (start === -1) return undefined;
    i = skipSpaceBack(tail, start - 1);
    if (tail[i] !== 0x3a) return undefined;
    const keyClose = skipSpaceBack(tail, i - 1);
    if (tail[keyClose] !== 0x22) return undefined;
    const keyOpen = openingQuote(tail, keyClose);
    if (keyOpen === -1) return undefined;
    if (keyEquals(tail, keyOpen, keyClose, quotedKey)) {
      if (tail[start] !== 0x7b) return undefined;
      try {
        return JSON.parse(tail.toString('utf8', start, valueEnd + 1));
      } catch {
        return undefined;
      }
    }
    i = skipSpaceBack(tail, keyOpen - 1);
    if (tail[i] === 0x2c) i = skipSpaceBack(tail, i - 1);
    else if (tail[i] !== 0x7b) return undefined;
  }
  return undefined;
}
