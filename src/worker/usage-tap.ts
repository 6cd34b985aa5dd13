// The usage tap of DESIGN 4.8: it sees each response chunk after the chunk was handed to the client
// and finds the token usage the provider reports, without ever holding the stream up. Only documents
// that carry the usage key are parsed (a byte search decides), and where the provider restates the
// whole usage each time only the last such document is parsed, once, at the end. Asked to, it also
// counts the bytes of generated text relayed (a byte search for the provider's text keys in each
// document), which is what a response that reports no usage is charged by; that costs about 1 µs an
// event (measured, four keys), so only responses to keys with tokens_per_minute pay it. A JSON body
// that is one object is never parsed whole: its usage is read from its last 64 KiB (json-tail.ts),
// which keeps a 10 MB answer from holding the worker's event loop (it took 90 to 120 ms parsed whole
// and stalled every stream on the worker). A compressed body is decoded here for the tap alone; the
// client gets the bytes as they came.
import type { Transform } from 'node:stream';
import { contentDecoder, isIdentity } from './content-decoders.js';
import { JsonDocuments } from '../shared/usage/json-documents.js';
import { hasObjectKey, mayHaveObjectKeyInLines, StringValueCounter, stringValueBytes } from '../shared/usage/json-key.js';
import { topLevelObjectValue } from '../shared/usage/json-tail.js';
import { SseParser } from '../shared/usage/sse-parser.js';
import { emptyUsage, type TokenUsage, type UsageFormat } from '../shared/usage/token-usage.js';

/** The usage seen (undefined when none was) and the bytes of generated text relayed. */
export type TapResult = (usage: TokenUsage | undefined, textBytes: number) => void;

export interface UsageTap {
  push(chunk: Buffer): void;
  /** The body ended or was cut: calls back once with what it saw. */
  finish(done: TapResult): void;
}

type UpstreamHeaders = Record<string, string | string[] | undefined>;

/**
 * Larger than any usage-bearing document a provider sends (a Responses API `response.completed`
 * event repeats the whole output: 1 MiB is some 250k tokens, past every model's output limit); a
 * larger one is skipped instead of held (a JSON object body is only ever kept as its tail). It is what
 * bounds the tap's part of the memory one exchange holds, whatever the client's reading speed
 * (docs/security.md, "Memory held per exchange"); it was 8 MiB.
 */
const maxDocumentBytes = 1024 * 1024;
/** A compressed body that inflates past this is a bomb, not an answer: the tap gives up on it. */
const maxDecodedBytes = 256 * 1024 * 1024;

// A provider's usage key as the byte search wants it, encoded once per format, not per response.
const quotedKeys = new WeakMap<UsageFormat, Buffer>();
function quotedKeyOf(format: UsageFormat): Buffer {
  let quoted = quotedKeys.get(format);
  if (quoted === undefined) {
    quoted = Buffer.from(JSON.stringify(format.key));
    quotedKeys.set(format, quoted);
  }
  return quoted;
}

// The text keys as the byte search wants them, encoded once per format.
const quotedTextKeys = new WeakMap<UsageFormat, readonly Buffer[]>();
function quotedTextKeysOf(format: UsageFormat): readonly Buffer[] {
  let quoted = quotedTextKeys.get(format);
  if (quoted === undefined) {
    quoted = format.textKeys.map((key) => Buffer.from(JSON.stringify(key)));
    quotedTextKeys.set(format, quoted);
  }
  return quoted;
}

/** Collects usage from the documents a body splitter finds. */
class UsageCollector {
  readonly #format: UsageFormat;
  readonly #quotedKey: Buffer;
  readonly #usage = emptyUsage();
  #found = false;
  /** lastWins: the latest document with usage, and the one before in case the latest was cut short. */
  #latest: Buffer | undefined;
  #previous: Buffer | undefined;

  constructor(format: UsageFormat) {
    this.#format = format;
    this.#quotedKey = quotedKeyOf(format);
  }

  document(bytes: Buffer): void {
    if (!hasObjectKey(bytes, this.#quotedKey)) return;
    if (!this.#format.lastWins) {
      this.#read(bytes);
      return;
    }
    // Two documents the size of a Responses API `response.completed` would hold twice the bound:
    // the older one is read now instead, so what the latest restates still overrides it at the end.
    const latest = this.#latest;
    if (latest !== undefined && latest.length + bytes.length > maxDocumentBytes) {
      this.#read(latest);
      this.#previous = undefined;
    } else {
      this.#previous = latest;
    }
    this.#latest = bytes;
  }

  tail(bytes: Buffer): void {
    const value = topLevelObjectValue(bytes, this.#quotedKey);
    if (value !== undefined) this.#found = this.#format.readUsage(value, this.#usage) || this.#found;
  }

  result(): TokenUsage | undefined {
    if (this.#latest !== undefined && !this.#read(this.#latest) && this.#previous !== undefined) this.#read(this.#previous);
    this.#latest = this.#previous = undefined;
    return this.#found ? this.#usage : undefined;
  }

  #read(bytes: Buffer): boolean {
    let document: unknown;
    try {
      document = JSON.parse(bytes.toString('utf8'));
    } catch {
      return false;
    }
    const read = this.#format.read(document, this.#usage);
    this.#found ||= read;
    return read;
  }
}

/** A tap over the decoded body: an event stream or JSON. */
class BodyTap implements UsageTap {
  readonly #collector: UsageCollector;
  readonly #splitter: SseParser | JsonDocuments;
  readonly #textKeys: readonly Buffer[];
  /** Text in an object body, counted as its chunks pass (it is never held whole). */
  readonly #chunkCounters: readonly StringValueCounter[];
  #textBytes = 0;
  #finished = false;

  constructor(format: UsageFormat, eventStream: boolean, countText: boolean) {
    const collector = new UsageCollector(format);
    this.#collector = collector;
    this.#textKeys = countText ? quotedTextKeysOf(format) : [];
    this.#chunkCounters = eventStream ? [] : this.#textKeys.map((key) => new StringValueCounter(key));
    const document = (bytes: Buffer) => {
      collector.document(bytes);
      for (const key of this.#textKeys) this.#textBytes += stringValueBytes(bytes, key);
    };
    const chunk = (bytes: Buffer) => {
      for (const counter of this.#chunkCounters) counter.push(bytes);
    };
    const quotedKey = quotedKeyOf(format);
    const textKeys = this.#textKeys;
    // Events that neither carry usage nor, when text is counted, a text key: what document() would
    // pass over after splitting them, passed over without splitting.
    const unwanted = (bytes: Buffer) => {
      if (mayHaveObjectKeyInLines(bytes, quotedKey)) return false;
      for (const key of textKeys) if (bytes.indexOf(key) !== -1) return false;
      return true;
    };
    this.#splitter = eventStream
      ? new SseParser((_event, data) => document(data), maxDocumentBytes, unwanted)
      : new JsonDocuments({ document, tail: (bytes) => collector.tail(bytes), chunk }, maxDocumentBytes);
  }

  push(chunk: Buffer): void {
    if (!this.#finished) this.#splitter.push(chunk);
  }

  finish(done: TapResult): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#splitter.finish();
    for (const counter of this.#chunkCounters) this.#textBytes += counter.bytes;
    done(this.#collector.result(), this.#textBytes);
  }
}

/** Decodes a compressed body for the inner tap; zlib works off the event loop, so this ends later. */
class DecodingTap implements UsageTap {
  readonly #inner: BodyTap;
  readonly #decoder: Transform;
  #decoded = 0;
  #finishing = false;
  #done: TapResult | undefined;

  constructor(inner: BodyTap, decoder: Transform) {
    this.#inner = inner;
    this.#decoder = decoder;
    decoder.on('data', (chunk: Buffer) => {
      this.#decoded += chunk.length;
      if (this.#decoded > maxDecodedBytes) decoder.destroy();
      else inner.push(chunk);
    });
    // A corrupt or truncated body: the usage seen until then is what there is.
    decoder.on('error', () => undefined);
    decoder.once('close', () => {
      this.#finishing = true;
      const done = this.#done;
      this.#done = undefined;
      if (done !== undefined) inner.finish(done);
    });
  }

  push(chunk: Buffer): void {
    if (!this.#finishing && !this.#decoder.destroyed) this.#decoder.write(chunk);
  }

  finish(done: TapResult): void {
    if (this.#decoder.destroyed) {
      this.#inner.finish(done);
      return;
    }
    this.#done = done;
    this.#decoder.end();
  }
}

function headerValue(headers: UpstreamHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * A tap for this response, or undefined when its body cannot carry usage we can read. `countText`:
 * count the generated text too (its textBytes are 0 otherwise).
 */
export function createUsageTap(format: UsageFormat, headers: UpstreamHeaders, eventStream: boolean, countText = false): UsageTap | undefined {
  if (!eventStream && !(headerValue(headers, 'content-type') ?? '').includes('json')) return undefined;
  const encoding = headers['content-encoding'];
  if (isIdentity(encoding)) return new BodyTap(format, eventStream, countText);
  const decoder = contentDecoder(encoding);
  return decoder === undefined ? undefined : new DecodingTap(new BodyTap(format, eventStream, countText), decoder.stream());
}
