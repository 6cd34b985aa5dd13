// The client side of one exchange, the same shape for an HTTP/2 stream (core API) and an HTTP/1.1
// request, so the forwarding code is written once.
import { constants as h2constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProxyErrorCode } from '../shared/errors.js';
import { readAll, type BodyReadLimits, type BodyResult } from './request-body.js';
import { countHeader, fieldRejection, parseLength, sameHost, transferCodingRejection } from './request-head-checks.js';

export type { BodyReadLimits, BodyResult };

export type OutgoingHeaders = Record<string, string | string[]>;

/** On every response the proxy sends (DESIGN section 4): the `reqId` of the exchange's access-log line. */
export const requestIdHeader = 'x-llm-proxy-request-id';
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
  /** The exchange's id, set before anything is answered; respond() sends it as x-llm-proxy-request-id. */
  reqId: string;
  /** Collects the request body up to `limits.maxBytes` bytes, taken from the budget; null when it has none. */
  readBody(limits: BodyReadLimits, done: (result: BodyResult) => void): void;
  /**
   * `eventStream`: send the head now rather than with the first body bytes. Adds the request id to
   * `headers` (one place for every answer: relayed, held, or the proxy's own error).
   */
  respond(status: number, headers: OutgoingHeaders, eventStream?: boolean): void;
  /** False: stop sending until onceDrain (the client's queue holds relayQueueBytes). */
  write(chunk: Buffer): boolean;
  onceDrain(listener: () => void): void;
  end(chunk?: string | Buffer): void;
  /** Ends the exchange so the client sees a failure: RST_STREAM on h2, connection close on h1. */
  abort(): void;
  /** Called once if the client goes away before the response ended. */
  onClientGone(listener: () => void): void;
}

/**
 * What may wait for a slow client before the relay pauses its upstream, well above a socket's 16 KiB
 * high-water mark. Pausing at that mark relayed one 16 KiB chunk per drain, while every resume let
 * undici's upstream socket read another 64 KiB (its read() empties the socket's buffer, which starts
 * the next read, then puts back what it did not parse): the socket's buffer grew by the difference, to
 * 2 MiB and more per stream, each resume copying all of it. Taking more than one read's worth per
 * drain keeps that buffer at its own high-water mark.
 */
const relayQueueBytes = 128 * 1024;

const streamCut = Object.assign(new Error('exchange cut'), { code: 'LLM_PROXY_STREAM_CUT' });

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
  reqId = '';
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
    // Last, so an upstream's header of the same name cannot stand in for ours.
    headers[requestIdHeader] = this.reqId;
    this.stream.respond(headers);
  }

  write(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    return this.stream.write(chunk) || this.stream.writableLength < relayQueueBytes;
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
  reqId = '';
  /** `Expect: 100-continue` held back (server 'checkContinue'): the 100 goes out only when the body is wanted. */
  #continuePending: boolean;
  /** Something was written after the head, which then went out with it. */
  #wroteBody = false;

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
    headers[requestIdHeader] = this.reqId;
    // A request body we did not read would be parsed as the next request: close instead (an answer
    // before the body, such as a 401 or a body's 408, must not leave the connection waiting for it).
    if (!this.req.complete) headers.connection = 'close';
    this.res.writeHead(status, headers);
    // An event stream's head must not wait for the first token, but flushed at once it was a TLS
    // record and a write of its own, where the first event usually came in the same read from the
    // upstream: it goes out at the end of this turn of the event loop, with that event if there is one.
    if (eventStream) setImmediate(() => this.#flushHead());
  }

  #flushHead(): void {
    if (!this.#wroteBody && !this.res.destroyed) this.res.flushHeaders();
  }

  write(chunk: Buffer): boolean {
    this.#wroteBody = true;
    this.bytesOut += chunk.length;
    return this.res.write(chunk) || this.res.writableLength < relayQueueBytes;
  }

  onceDrain(listener: () => void): void {
    this.res.once('drain', listener);
  }

  end(chunk?: string | Buffer): void {
    this.#wroteBody = true;
    if (chunk !== undefined) this.bytesOut += Buffer.byteLength(chunk);
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
