// Byte-level looks into JSON text that avoid parsing it: whether a key with an object value occurs
// (the cheap test that decides if a document is worth a JSON.parse), and how many bytes of text a
// key's string values hold (what a response without usage is charged by), in one document or over
// a body that passes in chunks. Inside a JSON string a quote is always
// escaped, so `"key"` followed by a colon can only be a key.

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Index of the first byte after the colon that follows the quoted key at `at`, or -1 when none does. */
function valueAfterKey(text: Buffer, at: number, quotedKeyLength: number): number {
  let i = at + quotedKeyLength;
  while (isSpace(text[i])) i++;
  if (text[i] !== 0x3a) return -1;
  i++;
  while (isSpace(text[i])) i++;
  return i;
}

/** Index of the `{` of key's object value when the quoted key at `at` has one, else -1. */
function objectValueAt(text: Buffer, at: number, quotedKeyLength: number): number {
  const i = valueAfterKey(text, at, quotedKeyLength);
  return i !== -1 && text[i] === 0x7b ? i : -1;
}

/** Whether `"key": {` occurs in the text (`quotedKey` includes the quotes). */
export function hasObjectKey(text: Buffer, quotedKey: Buffer): boolean {
  for (let at = text.indexOf(quotedKey); at !== -1; at = text.indexOf(quotedKey, at + 1)) {
    if (objectValueAt(text, at, quotedKey.length) !== -1) return true;
  }
  return false;
}

function isLineSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09;
}

function isLineEnd(byte: number | undefined): boolean {
  return byte === 0x0a || byte === 0x0d;
}

/**
 * Whether an event stream's raw bytes may hold a document with `"key": {`: a document's data lines
 * are joined with LF, so where a line ends right after the key or its colon the value may be an
 * object on the next line, and that counts as a yes. The key itself cannot be split by a line end
 * (joined, it would hold an LF).
 */
export function mayHaveObjectKeyInLines(text: Buffer, quotedKey: Buffer): boolean {
  for (let at = text.indexOf(quotedKey); at !== -1; at = text.indexOf(quotedKey, at + 1)) {
    let i = at + quotedKey.length;
    while (isLineSpace(text[i])) i++;
    if (isLineEnd(text[i])) return true;
    if (text[i] !== 0x3a) continue;
    i++;
    while (isLineSpace(text[i])) i++;
    if (text[i] === 0x7b || isLineEnd(text[i])) return true;
  }
  return false;
}

/**
 * The bytes inside the quotes of every `"key": "..."` string value in the text, as JSON encodes them
 * (an escape counts its bytes, which errs on the side of more); a value cut off by the end counts to
 * the end. Values of other types (the object of OpenAI's chat `delta`) count nothing.
 */
export function stringValueBytes(text: Buffer, quotedKey: Buffer): number {
  let bytes = 0;
  let from = 0;
  for (let at = text.indexOf(quotedKey); at !== -1; at = text.indexOf(quotedKey, from)) {
    from = at + quotedKey.length;
    const open = valueAfterKey(text, at, quotedKey.length);
    if (open === -1 || text[open] !== 0x22) continue;
    const close = closingQuoteIn(text, open + 1, false);
    if (close === -1) return bytes + text.length - open - 1;
    bytes += close - open - 1;
    // The search goes on after the value: the text inside it is not searched for the key again.
    from = close + 1;
  }
  return bytes;
}

/**
 * stringValueBytes over a body that arrives in chunks and is never held whole: a value may run on
 * across chunk ends (escapes included), so a 10 MB answer's text counts in full. A key cut by a
 * chunk end is missed, which undercounts by that one value; it is an estimate.
 */
export class StringValueCounter {
  bytes = 0;
  /** Inside a counted value at the end of the last chunk. */
  #open = false;
  /** The last chunk ended inside that value on an odd run of backslashes: the next byte is escaped. */
  #escaped = false;

  constructor(readonly quotedKey: Buffer) {}

  push(chunk: Buffer): void {
    let from = 0;
    if (this.#open) {
      const close = closingQuoteIn(chunk, 0, this.#escaped);
      if (close === -1) return this.#runOn(chunk, 0, this.#escaped);
      this.bytes += close;
      this.#open = false;
      from = close + 1;
    }
    const key = this.quotedKey;
    for (let at = chunk.indexOf(key, from); at !== -1; at = chunk.indexOf(key, from)) {
      from = at + key.length;
      const open = valueAfterKey(chunk, at, key.length);
      if (open === -1 || chunk[open] !== 0x22) continue;
      const close = closingQuoteIn(chunk, open + 1, false);
      if (close === -1) return this.#runOn(chunk, open + 1, false);
      this.bytes += close - open - 1;
      from = close + 1;
    }
  }

  /** The chunk ends inside a value that began at `start`. */
  #runOn(chunk: Buffer, start: number, escapedFirst: boolean): void {
    this.bytes += chunk.length - start;
    this.#open = true;
    this.#escaped = slashRunBefore(chunk, chunk.length, start, escapedFirst) % 2 === 1;
  }
}

/** Backslashes right before `at`, not looking below `start`; one more if the byte at start is escaped. */
function slashRunBefore(text: Buffer, at: number, start: number, escapedFirst: boolean): number {
  let slashes = 0;
  while (at - 1 - slashes >= start && text[at - 1 - slashes] === 0x5c) slashes++;
  return at - slashes === start && escapedFirst ? slashes + 1 : slashes;
}

/** The first unescaped quote at or after `start` inside a string, or -1. */
function closingQuoteIn(text: Buffer, start: number, escapedFirst: boolean): number {
  for (let at = text.indexOf(0x22, start); at !== -1; at = text.indexOf(0x22, at + 1)) {
    if (slashRunBefore(text, at, start, escapedFirst) % 2 === 0) return at;
  }
  return -1;
}
