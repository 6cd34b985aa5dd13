// The client side of one exchange, the same shape for an HTTP/2 stream (core API) and an HTTP/1.1
// request, so the forwarding code is written once.
import { constants as h2constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

export type OutgoingHeaders = Record<string, string | string[]>;
export type BodyResult = Buffer | null | 'too_large' | 'timeout' | Error;

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
  readonly headersSent: boolean;
  /** The client has already gone (it may leave while a request waits for its rate-limit admission). */
  readonly gone: boolean;
  bytesIn: number;
  bytesOut: number;
  /**
   * Collects the request body up to `limit` bytes; null when the request has none, 'timeout' when
   * the client sent nothing for `idleMs` (HTTP/2 has no request timeout of its own).
   */
  readBody(limit: number, idleMs: number, done: (result: BodyResult) => void): void;
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

function readAll(source: Readable, limit: number, idleMs: number, owner: { bytesIn: number }, done: (result: BodyResult) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  let idle = setTimeout(() => finish('timeout'), idleMs);
  const finish = (result: BodyResult) => {
    if (finished) return;
    finished = true;
    clearTimeout(idle);
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.off('close', onClose);
    done(result);
  };
  const onData = (chunk: Buffer) => {
    idle.refresh();
    size += chunk.length;
    owner.bytesIn = size;
    if (size > limit) {
      source.pause();
      finish('too_large');
      return;
    }
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
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get gone(): boolean {
    return this.stream.destroyed;
  }

  readBody(limit: number, idleMs: number, done: (result: BodyResult) => void): void {
    if (!this.#hasBody) return done(null);
    readAll(this.stream, limit, idleMs, this, done);
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
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.method = req.method ?? 'GET';
    this.target = req.url ?? '';
    this.authority = req.headers.host ?? '';
    this.rawHeaders = req.rawHeaders;
    this.conflictingHost = countHeader(req.rawHeaders, 'host') > 1;
    this.declaredLength = parseLength(req.headers['content-length']);
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get gone(): boolean {
    return this.res.destroyed || this.req.socket.destroyed;
  }

  readBody(limit: number, idleMs: number, done: (result: BodyResult) => void): void {
    if (this.req.headers['transfer-encoding'] === undefined && this.declaredLength <= 0) return done(null);
    readAll(this.req, limit, idleMs, this, done);
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
