// The TLS listener of a worker: HTTP/2 through the core stream API (the compat layer costs
// measurably more per request) and HTTP/1.1 through ALPN fallback. Creating it does not listen.
import { constants as h2constants, createSecureServer, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { proxyErrorHeader, proxyErrors } from '../shared/errors.js';
import { defaultErrorTable } from '../shared/providers/registry.js';
import type { Logger } from '../shared/log.js';
import type { Snapshot } from '../shared/snapshot.js';
import { H1Downstream, H2Downstream, requestIdHeader, type Downstream } from './downstream.js';
import { sequenceRequest } from './h1-sequencer.js';
import { clientFacingTls } from './tls-settings.js';

export interface ProxyServer {
  readonly server: Http2SecureServer;
  /** `reusePort`: bind this worker's own socket (accept-mode.ts) instead of sharing the primary's. */
  listen(host: string, port: number, reusePort: boolean): Promise<{ host: string; port: number }>;
  applySnapshot(snapshot: Snapshot): void;
  /** Stops accepting, lets open exchanges finish; resolves when every connection is gone or at the deadline. */
  drain(deadlineMs: number): Promise<'drained' | 'deadline'>;
}

export interface ProxyServerOptions {
  snapshot: Snapshot;
  log: Logger;
  onExchange(down: Downstream): void;
  /** For the answers written straight to a socket (no exchange exists for them). */
  nextRequestId(): string;
}

const noop = () => undefined;

/**
 * Open streams per HTTP/2 connection. Enforced here rather than advertised in SETTINGS: once a
 * client has acknowledged a SETTINGS_MAX_CONCURRENT_STREAMS, nghttp2 answers one stream too many with
 * a connection error and every stream on it is lost. Refusing the excess with REFUSED_STREAM (RFC
 * 9113 5.1.2, 8.7: not processed, safe to retry) lets the admitted ones finish.
 */
export const maxStreamsPerSession = 256;

export function createProxyServer({ snapshot, log, onExchange, nextRequestId }: ProxyServerOptions): ProxyServer {
  let current = snapshot;
  const sessions = new Set<ServerHttp2Session>();
  // Only for the drain deadline: streams still open then are reset so their clients see an error.
  const openStreams = new Set<ServerHttp2Stream>();
  const lifecycle = { draining: false };
  const server = createSecureServer({
    allowHTTP1: true,
    cert: snapshot.tls.cert,
    key: snapshot.tls.key,
    ticketKeys: Buffer.from(snapshot.tls.ticketKeys, 'base64'),
    ...clientFacingTls,
    // Responses are written as a head and then body pieces; with Nagle on, a piece can wait for the
    // client's delayed ACK, which costs whole milliseconds per exchange on a keep-alive connection.
    noDelay: true,
    handshakeTimeout: snapshot.timeouts.requestHeaderMs,
    settings: {
      // Left at nghttp2's unbounded default on purpose: see maxStreamsPerSession.
      maxHeaderListSize: snapshot.limits.maxHeaderBytes * 2,
      initialWindowSize: 1024 * 1024,
    },
    maxSessionRejectedStreams: 100,
    // Node >= 22 otherwise drops fields with leading or trailing whitespace before we see them and
    // forwards the rest of a malformed request; with it off they reach H2Downstream, which refuses
    // them (RFC 9113 8.2.1). Node 20 has no such option and drops them regardless.
    ...({ strictFieldWhitespaceValidation: false } as object),
  });
  applyHttp1Limits(server, snapshot);

  // Adding a 'request' listener makes Node also wrap every h2 stream in the compat layer; take that
  // listener off again so h2 streams reach only our core-API handler (NODE-NOTES 0.5).
  const acceptH1 = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
    req.on('error', noop);
    res.on('error', noop);
    // While draining, an HTTP/1.1 client is told not to reuse the connection: a request it sends
    // on a kept-alive socket just as we close it idle would fail.
    if (lifecycle.draining) res.shouldKeepAlive = false;
    sequenceRequest(req, res, () => onExchange(new H1Downstream(req, res, expectsContinue)));
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => acceptH1(req, res, false));
  // With a listener here Node leaves the 100 Continue to us: it goes out only once the request is
  // routed, authorised and admitted, so a refused one is answered at once without inviting the upload.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => acceptH1(req, res, true));
  server.removeAllListeners('stream');
  const openPerSession = new WeakMap<ServerHttp2Session, { open: number }>();
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    stream.on('error', noop);
    const counter = openPerSession.get(stream.session as ServerHttp2Session);
    if (counter !== undefined && counter.open >= maxStreamsPerSession) {
      // Not from inside this event: it runs within nghttp2's frame callbacks, and an RST_STREAM
      // submitted there during a rapid-reset flood corrupted the worker's heap ("corrupted size vs.
      // prev_size", SIGABRT; seen about once in five runs of hostile-clients on a loaded machine).
      setImmediate(() => {
        if (!stream.destroyed) stream.close(h2constants.NGHTTP2_REFUSED_STREAM);
      });
      return;
    }
    if (counter !== undefined) counter.open += 1;
    openStreams.add(stream);
    // One listener per stream for both counts.
    stream.once('close', () => {
      openStreams.delete(stream);
      if (counter !== undefined) counter.open -= 1;
    });
    onExchange(new H2Downstream(stream, headers, rawHeaders));
  });

  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    openPerSession.set(session, { open: 0 });
    session.on('error', noop);
    // The connection window starts at 65,535 bytes whatever SETTINGS say (RFC 9113 6.9.2): left
    // there, a large prompt crawls at one window per round trip. One whole body may be in flight,
    // never more than the worker's budget for buffered bodies (nor below one stream's window).
    const { maxBodyBytes, maxBufferedBytes } = current.limits;
    if (!session.destroyed) session.setLocalWindowSize(Math.min(2 ** 31 - 1, Math.max(1024 * 1024, Math.min(maxBodyBytes, maxBufferedBytes))));
    // A connection accepted just before the listener closed: it may finish what it sends at once.
    if (lifecycle.draining) session.close();
    trackIdleSession(session, () => current.timeouts.keepAliveMs);
    session.once('close', () => sessions.delete(session));
  });
  const raw = { log, nextRequestId };
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => answerClientError(err, socket, raw));
  // HTTP/1.1 CONNECT would make this an open tunnel; it is refused like any target that is not a path.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => answerRaw(socket, 'bad_request', raw, 'CONNECT'));
  server.on('tlsClientError', (err: Error) => log.debug({ reason: (err as { code?: string }).code ?? err.message }, 'tls handshake failed'));

  return {
    server,
    listen(host, port, reusePort) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ...(reusePort ? { reusePort: true, exclusive: true } : {}) }, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : { host, port });
        });
      });
    },
    applySnapshot(next) {
      const previous = current;
      current = next;
      applyHttp1Limits(server, next);
      if (next.tls.cert !== previous.tls.cert || next.tls.key !== previous.tls.key || next.tls.ticketKeys !== previous.tls.ticketKeys) {
        // ticketKeys again: without them setSecureContext picks fresh random keys per worker and
        // sessions stop resuming across workers (NODE-NOTES 0.11).
        server.setSecureContext({ cert: next.tls.cert, key: next.tls.key, ticketKeys: Buffer.from(next.tls.ticketKeys, 'base64'), ...clientFacingTls });
      }
    },
    drain(deadlineMs) {
      lifecycle.draining = true;
      return new Promise((resolve) => {
        let finished = false;
        const finish = (how: 'drained' | 'deadline') => {
          if (finished) return;
          finished = true;
          clearInterval(sweeper);
          clearTimeout(deadline);
          resolve(how);
        };
        server.close(() => finish('drained'));
        for (const session of sessions) session.close();
        // HTTP/1.1 connections become idle once their response is done; close them as they do.
        const closeIdle = () => (server as unknown as { closeIdleConnections(): void }).closeIdleConnections();
        const sweeper = setInterval(closeIdle, 200);
        closeIdle();
        const deadline = setTimeout(() => {
          // A bare session.destroy() ends the client's streams without an error, which an SSE client
          // would take for a complete answer: reset each one first.
          // destroy(err), not close(code): close() waits for queued data to flush first, which a
          // stalled reader never lets happen. An error makes Node send RST_STREAM(INTERNAL_ERROR) at once.
          const cut = new Error('drain deadline reached');
          for (const stream of openStreams) if (!stream.destroyed) stream.destroy(cut);
          // The resets need a moment on the wire before the sockets go.
          setTimeout(() => {
            for (const session of sessions) session.destroy();
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            finish('deadline');
          }, 100);
        }, deadlineMs);
        deadline.unref();
      });
    },
  };
}

function applyHttp1Limits(server: Http2SecureServer, snapshot: Snapshot): void {
  // Under allowHTTP1 these live on the server object and are read per connection; Node 20 leaves
  // keepAliveTimeout undefined there, which means idle keep-alive sockets would never close.
  const target = server as unknown as Record<string, number>;
  target.keepAliveTimeout = snapshot.timeouts.keepAliveMs;
  target.headersTimeout = snapshot.timeouts.requestHeaderMs;
  // Off: Node's requestTimeout caps the whole request's arrival, so a body still coming after it
  // would be cut (no timeout caps a transfer; idle is the longest gap). The body's idle watch and
  // headersTimeout cover what it would; racing the watch, it also cut idle bodies without the 408.
  target.requestTimeout = 0;
  target.maxHeaderSize = snapshot.limits.maxHeaderBytes;
  // Node checks headersTimeout only on this interval (30 s under allowHTTP1), so a slow client could
  // hold a connection far past timeouts.request_header; it is read when the server starts listening.
  target.connectionsCheckingInterval = Math.min(1_000, snapshot.timeouts.requestHeaderMs);
}

/** Closes an HTTP/2 session that has had no open stream for the keep-alive time. */
function trackIdleSession(session: ServerHttp2Session, keepAliveMs: () => number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => session.close(), keepAliveMs());
    timer.unref();
  };
  arm();
  session.on('stream', (stream) => {
    open += 1;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    stream.once('close', () => {
      open -= 1;
      if (open === 0 && !session.closed && !session.destroyed) arm();
    });
  });
  session.once('close', () => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

interface RawAnswerContext {
  readonly log: Logger;
  nextRequestId(): string;
}

/** An HTTP/1.1 request the parser rejected: answer in JSON (431 for an oversized head) and close. */
function answerClientError(err: Error & { code?: string }, socket: Socket, ctx: RawAnswerContext): void {
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'bad_request';
  // Timeouts and resets carry no parse position: there is nobody to answer.
  if (!socket.writable || (err as { bytesParsed?: number }).bytesParsed === undefined) {
    ctx.log.debug({ code, reason: err.code ?? err.message }, 'rejected malformed request');
    socket.destroy();
    return;
  }
  answerRaw(socket, code, ctx, undefined, err.code ?? err.message);
}

/**
 * A proxy error written straight to a socket that has no response object, then closed. It has a
 * request id and an access-log line like any answer (no method or path: the parser gave up on them).
 */
function answerRaw(socket: Socket, code: 'bad_request' | 'headers_too_large', ctx: RawAnswerContext, method?: string, reason?: string): void {
  const spec = proxyErrors[code];
  const body = defaultErrorTable.errorBody(spec.status, spec.kind, code, spec.message);
  const reqId = ctx.nextRequestId();
  socket.on('error', noop);
  socket.end(
    `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status] ?? ''}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${proxyErrorHeader}: ${code}\r\n${requestIdHeader}: ${reqId}\r\nconnection: close\r\n\r\n${body}`,
  );
  ctx.log.info({ reqId, method, protocol: 'http/1.1', status: spec.status, code: spec.flag, reason }, 'request');
}
