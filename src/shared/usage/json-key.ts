// Byte-level looks into JSON text that avoid parsing it: whether a key with an object value occurs
// (the cheap test that decides if a document is worth a JSON.parse), the last such object in a
// fragment (the end of a body too large to hold whole), and how many bytes of text a key's string
// values hold (what a response without usage is charged by). Inside a JSON string a quote is always
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
    const close = closingQuote(text, open);
    if (close === -1) return bytes + text.length - open - 1;
    bytes += close - open - 1;
    // The search goes on after the value: the text inside it is not searched for the key again.
    from = close + 1;
  }
  return bytes;
}

/** Index of the quote that closes the string opened at `open`, or -1 when the text ends first. */
function closingQuote(text: Buffer, open: number): number {
  for (let at = text.indexOf(0x22, open + 1); at !== -1; at = text.indexOf(0x22, at + 1)) {
    let slashes = 0;
    while (text[at - 1 - slashes] === 0x5c) slashes++;
    if (slashes % 2 === 0) return at;
  }
  return -1;
}

/** The last complete `"key": {...}` object in a fragment of JSON, parsed; undefined if none parses. */
export function lastObjectValue(fragment: Buffer, quotedKey: Buffer): unknown {
  for (let at = fragment.lastIndexOf(quotedKey); at !== -1; at = at === 0 ? -1 : fragment.lastIndexOf(quotedKey, at - 1)) {
    const open = objectValueAt(fragment, at, quotedKey.length);
    if (open === -1) continue;
    const close = matchingBrace(fragment, open);
    if (close === -1) continue;
    try {
      return JSON.parse(fragment.toString('utf8', open, close + 1));
    } catch {
      // not JSON after all (the fragment may start inside a string); try an earlier one
    }
  }
  return undefined;
}

function matchingBrace(text: Buffer, open: number): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const byte = text[i];
    if (inString) {
      if (byte === 0x5c) i++;
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x7b) depth++;
    else if (byte === 0x7d && --depth === 0) return i;
  }
  return -1;
}
