// An incremental text/event-stream parser over bytes (WHATWG HTML, "Parsing an event stream"): lines
// end in LF, CRLF or a lone CR, at any byte of any chunk; comments and unknown fields are skipped;
// several data lines join with LF. It only finds event boundaries: the data of an event stays as
// the bytes it arrived in (views into the chunks, copied only when a line spans chunks), and an
// event larger than the cap is dropped rather than buffered.

export type SseEventSink = (event: string, data: Buffer) => void;
/**
 * Says of a chunk of whole events that none of them is wanted, so it is passed over unparsed. It may
 * err only towards false (parse it anyway).
 */
export type SseChunkFilter = (chunk: Buffer) => boolean;

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const newline = Buffer.from('\n');
const bom = Buffer.from([0xef, 0xbb, 0xbf]);

export class SseParser {
  /** Pieces of a line that has not ended yet. */
  #partial: Buffer[] = [];
  #partialSize = 0;
  #lineTooLong = false;
  /** The last chunk ended in CR: an LF at the start of the next one belongs to that line end. */
  #afterCr = false;
  #firstLine = true;
  #event = '';
  #data: Buffer[] = [];
  #dataSize = 0;
  #hasData = false;
  #tooLarge = false;

  constructor(
    readonly onEvent: SseEventSink,
    readonly maxEventBytes: number,
    readonly unwanted?: SseChunkFilter,
  ) {}

  push(chunk: Buffer): void {
    // An empty chunk must not clear the CR state: the LF of that CRLF may still come.
    if (chunk.length === 0) return;
    // An upstream writes whole events, so most chunks start and end at an event's end. Parsed, such a
    // chunk cost about 2 µs an event in S4 (four searches and as many views), most of a stream's own
    // CPU; the usage tap wants one event in a hundred or so, and one search says which chunks hold it.
    if (this.unwanted !== undefined && this.#atEventStart() && endsAnEvent(chunk) && this.unwanted(chunk)) {
      this.#firstLine = false;
      return;
    }
    let pos = 0;
    if (this.#afterCr) {
      this.#afterCr = false;
      if (chunk[0] === LF) pos = 1;
    }
    // Each search runs once per line end found, not once per line, so a chunk costs O(length).
    let lf = -2;
    let cr = -2;
    while (pos < chunk.length) {
      if (lf !== -1 && lf < pos) lf = chunk.indexOf(LF, pos);
      if (cr !== -1 && cr < pos) cr = chunk.indexOf(CR, pos);
      if (lf === -1 && cr === -1) {
        this.#keepPartial(chunk.subarray(pos));
        return;
      }
      const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      this.#endLine(chunk.subarray(pos, end));
      pos = end + 1;
      if (end === cr) {
        if (pos === chunk.length) this.#afterCr = true;
        else if (chunk[pos] === LF) pos += 1;
      }
    }
  }

  #atEventStart(): boolean {
    return this.#partialSize === 0 && !this.#lineTooLong && !this.#afterCr && !this.#hasData && this.#event === '';
  }

  /** The stream ended (or was cut): what is left counts as if its line and event had ended. */
  finish(): void {
    if (this.#partialSize > 0 || this.#lineTooLong) this.#endLine(Buffer.alloc(0));
    this.#dispatch();
  }

  #keepPartial(piece: Buffer): void {
    if (this.#lineTooLong) return;
    this.#partialSize += piece.length;
    if (this.#partialSize > this.maxEventBytes) {
      this.#lineTooLong = true;
      this.#partial = [];
      return;
    }
    // A copy: the chunk this view points into may be large, and the line may wait for many more.
    this.#partial.push(Buffer.from(piece));
  }

  #endLine(tail: Buffer): void {
    let line = tail;
    if (this.#lineTooLong) {
      this.#lineTooLong = false;
      this.#partialSize = 0;
      this.#tooLarge = true;
      this.#hasData = true;
      return;
    }
    if (this.#partialSize > 0) {
      this.#partial.push(tail);
      line = Buffer.concat(this.#partial, this.#partialSize + tail.length);
      this.#partial = [];
      this.#partialSize = 0;
    }
    if (this.#firstLine) {
      this.#firstLine = false;
      if (line.length >= 3 && line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf) line = line.subarray(bom.length);
    }
    this.#line(line);
  }

  #line(line: Buffer): void {
    if (line.length === 0) return this.#dispatch();
    if (line[0] === COLON) return; // a comment (keep-alive pings use these)
    const colon = line.indexOf(COLON);
    const nameEnd = colon === -1 ? line.length : colon;
    let valueStart = colon === -1 ? line.length : colon + 1;
    if (line[valueStart] === SPACE) valueStart += 1;
    if (nameEnd === 4 && line[0] === 0x64 && line[1] === 0x61 && line[2] === 0x74 && line[3] === 0x61) {
      this.#addData(line.subarray(valueStart));
    } else if (nameEnd === 5 && line.toString('latin1', 0, 5) === 'event') {
      this.#event = line.toString('utf8', valueStart);
    }
  }

  #addData(value: Buffer): void {
    const separator = this.#hasData ? 1 : 0;
    this.#hasData = true;
    if (this.#tooLarge) return;
    this.#dataSize += separator + value.length;
    if (this.#dataSize > this.maxEventBytes) {
      this.#tooLarge = true;
      this.#data = [];
      return;
    }
    if (separator === 1) this.#data.push(newline);
    this.#data.push(value);
  }

  #dispatch(): void {
    const { onEvent } = this;
    const event = this.#event;
    const data = this.#data;
    const deliver = this.#hasData && !this.#tooLarge;
    const size = this.#dataSize;
    this.#event = '';
    this.#data = [];
    this.#dataSize = 0;
    this.#hasData = false;
    this.#tooLarge = false;
    if (deliver) onEvent(event, data.length === 1 ? (data[0] as Buffer) : Buffer.concat(data, size));
  }
}

/** The chunk ends with a blank line (LF LF, or CRLF after an LF), so its last event was dispatched. */
function endsAnEvent(chunk: Buffer): boolean {
  const n = chunk.length;
  if (n < 2 || chunk[n - 1] !== LF) return false;
  return chunk[n - 2] === LF || (n >= 3 && chunk[n - 2] === CR && chunk[n - 3] === LF);
}
