// Finds the JSON documents of a response body as it streams past. A body that is one object is never
// held whole: only its last bytes are kept, where providers put usage (json-tail.ts reads it from
// there), so memory and CPU per response stay flat in body size; its chunks are shown as they pass
// for what counts text. A body that is an array, as Gemini's streamGenerateContent sends without
// `alt=sse`, yields each object element as soon as it closes, so a stream cut short still gives
// every element that arrived whole.

export interface JsonDocumentSink {
  /** An element of an array body, whole. */
  document(bytes: Buffer): void;
  /** The last bytes of an object body (all of it when it is small), at its end. */
  tail(bytes: Buffer): void;
  /** A chunk of an object body, as it passes. */
  chunk(bytes: Buffer): void;
}

/**
 * What is kept of an object body: usage and the members after it fit many times over (the Responses
 * API's `metadata`, the largest that follows usage, is at most 16 pairs of 512 characters).
 */
export const tailBytes = 64 * 1024;

type Mode = 'start' | 'object' | 'array' | 'ignore';

export class JsonDocuments {
  #mode: Mode = 'start';
  #pieces: Buffer[] = [];
  #size = 0;
  #overflow = false;
  /** Object mode: the latest chunks, as few as hold the last tailBytes of the body. */
  #tailChunks: Buffer[] = [];
  #tailSize = 0;
  // Array mode: a small scanner that knows strings, escapes and nesting depth.
  #depth = 0;
  #inString = false;
  #escaped = false;

  constructor(
    readonly sink: JsonDocumentSink,
    readonly maxDocumentBytes: number,
  ) {}

  push(chunk: Buffer): void {
    if (this.#mode === 'start') {
      const at = firstSignificant(chunk);
      if (at === -1) return;
      const opener = chunk[at];
      this.#mode = opener === 0x7b ? 'object' : opener === 0x5b ? 'array' : 'ignore';
      chunk = chunk.subarray(this.#mode === 'array' ? at + 1 : at);
      this.#depth = 1;
    }
    if (this.#mode === 'object') this.#collect(chunk);
    else if (this.#mode === 'array') this.#scan(chunk);
  }

  finish(): void {
    if (this.#mode === 'object' && this.#tailSize > 0) {
      // One chunk (a small answer) is passed as it is: no copy per response.
      const kept = this.#tailChunks.length === 1 ? (this.#tailChunks[0] as Buffer) : Buffer.concat(this.#tailChunks, this.#tailSize);
      this.sink.tail(kept.length <= tailBytes ? kept : kept.subarray(kept.length - tailBytes));
    }
    this.#pieces = [];
    this.#tailChunks = [];
    this.#tailSize = 0;
    this.#mode = 'ignore';
  }

  #collect(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.sink.chunk(chunk);
    this.#tailChunks.push(chunk);
    this.#tailSize += chunk.length;
    // Drop whole chunks from the front while the rest still holds tailBytes: no copy per chunk.
    while (this.#tailSize - (this.#tailChunks[0] as Buffer).length >= tailBytes) this.#tailSize -= (this.#tailChunks.shift() as Buffer).length;
  }

  #scan(chunk: Buffer): void {
    // Where the element being read starts in this chunk (0 when it began in an earlier one).
    let start = this.#depth >= 2 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (byte === 0x5c) this.#escaped = true;
        else if (byte === 0x22) this.#inString = false;
        continue;
      }
      if (byte === 0x22) this.#inString = true;
      else if (byte === 0x7b || byte === 0x5b) {
        if (this.#depth === 1 && byte === 0x7b) start = i;
        this.#depth += 1;
      } else if (byte === 0x7d || byte === 0x5d) {
        this.#depth -= 1;
        if (this.#depth === 1 && byte === 0x7d && start !== -1) {
          this.#element(chunk.subarray(start, i + 1));
          start = -1;
        } else if (this.#depth <= 0) {
          this.#mode = 'ignore'; // the array closed; anything after it is not ours
          return;
        }
      }
    }
    if (start !== -1) this.#keep(chunk.subarray(start));
  }

  #keep(piece: Buffer): void {
    if (this.#overflow) return;
    this.#size += piece.length;
    if (this.#size > this.maxDocumentBytes) {
      this.#overflow = true;
      this.#pieces = [];
    } else {
      this.#pieces.push(piece);
    }
  }

  #element(last: Buffer): void {
    const deliver = !this.#overflow && this.#size + last.length <= this.maxDocumentBytes;
    const whole = !deliver || this.#size === 0 ? last : Buffer.concat([...this.#pieces, last]);
    this.#pieces = [];
    this.#size = 0;
    this.#overflow = false;
    if (deliver) this.sink.document(whole);
  }
}

function firstSignificant(chunk: Buffer): number {
  for (let i = 0; i < chunk.length; i++) {
    const byte = chunk[i] as number;
    // Whitespace and a UTF-8 byte-order mark may come first.
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09 && byte !== 0xef && byte !== 0xbb && byte !== 0xbf) return i;
  }
  return -1;
}
