// The client side of one exchange, the same shape for an HTTP/2 stream (core API) and an HTTP/1.1
// request, so the forwarding code is written once.
import { constants as h2constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { BodyBudget } from './body-budget.js';
import type { ProxyErrorCode } from '../shared/errors.js';

export type OutgoingHeaders = Record<string, string | string[]>;
/** 'over_budget': the worker's buffer budget is spent (what was read of the body is given back). */
export type BodyResult = Buffer | null | 'too_large' | 'timeout' | 'over_budget' | Error;

/** What a request body is read under. A Buffer result keeps its bytes taken from `budget`. */
export interface BodyReadLimits {
  readonly maxBytes: number;
  /** The client sent nothing for this long: 'timeout' (HTTP/2 has no request timeout of its own). */
  readonly idleMs: number;
  readonly budget: BodyBudget;
  readonly budgetBytes: number;
}

export interface Downstream {
  readonly protocol: 'h2' | 'http/1.1';
  readonly method: string;
  /** Request target as sent (origin-form path and query). */
  readonly target: string;
  /** `:authority`, else `Host` ('' when neither). */
  readonly authority: string;
  /**
   * The request names two hosts: HTTP/2 `:authority` and a `Host` for another one, or HTTP/1.1 with
   * several `Host` lines (RFC 9113 8.3.1 and RFC 9112 3.2 make both malformed).
   */
  readonly conflictingHost: boolean;
  /** Flat [name, value, ...] as received; HTTP/2 pseudo-headers included (names start with ':'). */
  readonly rawHeaders: readonly string[];
  /** Content-Length as declared, -1 when none was. */
  readonly declaredLength: number;
  /** Set when the head alone makes the request one the proxy must refuse before any upstream contact. */
  readonly rejection: ProxyErrorCode | undefined;
  readonly headersSent: boolean;
  /** The client has already gone (it may leave while a request waits for its rate-limit admission). */
  readonly gone: boolean;
  bytesIn: number;
  bytesOut: number;
  /** Collects the request body up to `limits.maxBytes` bytes, taken from the budget; null when it has none. */
  readBody(limits: BodyReadLimits, done: (result: BodyResult) => void): void;
  /** `eventStream`: send the head now rather than with the first body bytes. */
  respond(status: number, headers: OutgoingHeaders, eventStream?: boolean): void;
  write(chunk: Buffer): boolean;
  onceDrain(listener: () => void): void;
  end(chunk?: string | Buffer): void;
  /** Ends the exchange so the client sees a failure: RST_STREAM on h2, connection close on h1. */
  abort(): void;
  /** Called once if the client goes away before the response ended. */
  onClientGone(listener: () => void): void;
}

const streamCut = Object.assign(new Error('exchange cut'), { code: 'LLM_PROXY_STREAM_CUT' });

function readAll(source: Readable, limits: BodyReadLimits, owner: { bytesIn: number }, done: (result: BodyResult) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const idle = setTimeout(() => finish('timeout'), limits.idleMs);
  const finish = (result: BodyResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(idle);
    // Only a whole body stays held (and counted); a refused or broken one is dropped here.
    if (!Buffer.isBuffer(result)) {
      limits.budget.give(size);
      chunks.length = 0;
    }
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.off('close', onClose);
    done(result);
  };
  const onData = (chunk: Buffer) => {
    idle.refresh();
    owner.bytesIn = size + chunk.length;
    if (size + chunk.length > limits.maxBytes) {
      source.pause();
      finish('too_large');
      return;
    }
    if (!limits.budget.take(chunk.length, limits.budgetBytes)) {
      source.pause();
      finish('over_budget');
      return;
    }
    size += chunk.length;
    chunks.push(chunk);
  };
  const onEnd = () => finish(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  const onError = (err: Error) => finish(err);
  const onClose = () => finish(new Error('client closed the request before its body ended'));
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('error', onError);
  source.on('close', onClose);
}

/** Host names equal ignoring case, a port and a trailing dot (`A.com:443` is `a.com`). */
function sameHost(a: string, b: string): boolean {
  const bare = (host: string) => host.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
  return bare(a) === bare(b);
}

function countHeader(raw: readonly string[], lowerName: string): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === lowerName.length && (raw[i] as string).toLowerCase() === lowerName) count += 1;
  return count;
}

/**
 * The only transfer coding a request may carry here is a single chunked: anything else (`gzip,
 * chunked`) would be decoded by Node's parser and the coding silently lost upstream (RFC 9112 6.1:
 * a server that does not understand a coding answers 501).
 */
function transferCodingRejection(raw: readonly string[]): ProxyErrorCode | undefined {
  let codings = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 17 || name.toLowerCase() !== 'transfer-encoding') continue;
    for (const token of (raw[i + 1] as string).split(',')) {
      const coding = token.trim().toLowerCase();
      if (coding === '') continue;
      if (coding !== 'chunked') return 'unsupported_transfer_coding';
      codings += 1;
    }
  }
  return codings > 1 ? 'unsupported_transfer_coding' : undefined;
}

// RFC 9113 8.2.1: a field value with CR, LF or NUL or with leading or trailing whitespace, or a
// name with a space or colon, makes the request malformed. nghttp2 drops most of these before they
// reach us (Node ignores invalid fields rather than resetting the stream); with
// strictFieldWhitespaceValidation off (Node >= 22) the whitespace cases do reach us and are refused here.
const invalidValue = /[\0\r\n]|^[\t ]|[\t ]$/;
const invalidName = /[\0\r\n :]/;

function fieldRejection(raw: readonly string[]): ProxyErrorCode | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) !== 0x3a && invalidName.test(name)) return 'bad_request';
    if (invalidValue.test(raw[i + 1] as string)) return 'bad_request';
  }
  return undefined;
}

function parseLength(value: string | string[] | undefined): number {
  if (typeof value !== 'string' || value === '') return -1;
  const length = Number(value);
  return Number.isSafeInteger(length) && length >= 0 ? length : -1;
}

export class H2Downstream implements Downstream {
  readonly protocol = 'h2' as const;
  readonly method: string;
  readonly target: string;
  readonly authority: string;
  readonly declaredLength: number;
  readonly conflictingHost: boolean;
  readonly rejection: ProxyErrorCode | undefined;
  bytesIn = 0;
  bytesOut = 0;
  #hasBody: boolean;
  /** Ours, not writableEnded: Node ends the writable side itself when a client resets the stream. */
  #ended = false;

  constructor(
    readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    readonly rawHeaders: readonly string[],
  ) {
    this.method = (headers[':method'] as string | undefined) ?? 'GET';
    this.target = (headers[':path'] as string | undefined) ?? '';
    const authority = headers[':authority'] as string | undefined;
    this.authority = authority ?? headers.host ?? '';
    this.conflictingHost = authority !== undefined && headers.host !== undefined && sameHost(authority, headers.host) === false;
    this.declaredLength = parseLength(headers['content-length']);
    this.#hasBody = !stream.endAfterHeaders;
    this.rejection = fieldRejection(rawHeaders);
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get gone(): boolean {
    return this.stream.destroyed;
  }

  readBody(limits: BodyReadLimits, done: (result: BodyResult) => void): void {
    if (!this.#hasBody) return done(null);
    readAll(this.stream, limits, this, done);
  }

  respond(status: number, headers: OutgoingHeaders): void {
    headers[':status'] = String(status);
    this.stream.respond(headers);
  }

  write(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    return this.stream.write(chunk);
  }

  onceDrain(listener: () => void): void {
    this.stream.once('drain', listener);
  }

  end(chunk?: string | Buffer): void {
    this.#ended = true;
    if (chunk !== undefined) this.bytesOut += Buffer.byteLength(chunk);
    if (chunk === undefined) this.stream.end();
    else this.stream.end(chunk);
    // The body may still be arriving (an early 413 or 401); tell the client to stop without error.
    if (!this.stream.readableEnded) this.stream.once('finish', () => this.stream.close(h2constants.NGHTTP2_NO_ERROR));
  }

  abort(): void {
    // destroy(err), not close(code): close() ends the writable side first, so the client reads an
    // END_STREAM and takes a cut answer for a whole one before the RST_STREAM arrives. With an error
    // Node sends RST_STREAM(INTERNAL_ERROR) after what was already written.
    if (!this.stream.destroyed) this.stream.destroy(streamCut);
  }

  onClientGone(listener: () => void): void {
    this.stream.once('close', () => {
      if (!this.#ended) listener();
    });
  }
}

export class H1Downstream implements Downstream {
  readonly protocol = 'http/1.1' as const;
  readonly method: string;
  readonly target: string;
  readonly authority: string;
  readonly rawHeaders: readonly string[];
  readonly declaredLength: number;
  readonly conflictingHost: boolean;
  readonly rejection: ProxyErrorCode | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** `Expect: 100-continue` held back (server 'checkContinue'): the 100 goes out only when the body is wanted. */
  #continuePending: boolean;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    expectsContinue = false,
  ) {
    this.#continuePending = expectsContinue;
    this.method = req.method ?? 'GET';
    this.target = req.url ?? '';
    this.authority = req.headers.host ?? '';
    this.rawHeaders = req.rawHeaders;
    this.conflictingHost = countHeader(req.rawHeaders, 'host') > 1;
    this.declaredLength = parseLength(req.headers['content-length']);
    this.rejection = req.headers['transfer-encoding'] === undefined ? undefined : transferCodingRejection(req.rawHeaders);
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get gone(): boolean {
    return this.res.destroyed || this.req.socket.destroyed;
  }

  readBody(limits: BodyReadLimits, done: (result: BodyResult) => void): void {
    if (this.req.headers['transfer-encoding'] === undefined && this.declaredLength <= 0) return done(null);
    // The request passed routing, auth and admission: only now is the client invited to upload.
    if (this.#continuePending) {
      this.#continuePending = false;
      this.res.writeContinue();
    }
    readAll(this.req, limits, this, done);
  }

  respond(status: number, headers: OutgoingHeaders, eventStream = false): void {
    this.res.writeHead(status, headers);
    // An event stream's headers go out now: the client should not wait for the first token to see them.
    if (eventStream) this.res.flushHeaders();
  }

  write(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    return this.res.write(chunk);
  }

  onceDrain(listener: () => void): void {
    this.res.once('drain', listener);
  }

  end(chunk?: string | Buffer): void {
    if (chunk !== undefined) this.bytesOut += Buffer.byteLength(chunk);
    // A request body we did not read would be parsed as the next request: close instead.
    if (!this.req.complete && !this.res.headersSent) this.res.setHeader('connection', 'close');
    if (chunk === undefined) this.res.end();
    else this.res.end(chunk);
  }

  abort(): void {
    this.res.destroy();
  }

  onClientGone(listener: () => void): void {
    this.res.once('close', () => {
      if (!this.res.writableFinished) listener();
    });
  }
}
