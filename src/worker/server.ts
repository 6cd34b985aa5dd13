// The TLS listener of a worker: HTTP/2 through the core stream API (the compat layer costs
// measurably more per request) and HTTP/1.1 through ALPN fallback. Creating it does not listen.
import { createSecureServer, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { proxyErrorHeader, proxyErrors } from '../shared/errors.js';
import { defaultErrorTable } from '../shared/providers/registry.js';
import type { Logger } from '../shared/log.js';
import type { Snapshot } from '../shared/snapshot.js';
import { H1Downstream, H2Downstream, type Downstream } from './downstream.js';
import { clientFacingTls } from './tls-settings.js';

export interface ProxyServer {
  readonly server: Http2SecureServer;
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  applySnapshot(snapshot: Snapshot): void;
  /** Stops accepting, lets open exchanges finish; resolves when every connection is gone or at the deadline. */
  drain(deadlineMs: number): Promise<'drained' | 'deadline'>;
}

export interface ProxyServerOptions {
  snapshot: Snapshot;
  log: Logger;
  onExchange(down: Downstream): void;
}

const noop = () => undefined;

export function createProxyServer({ snapshot, log, onExchange }: ProxyServerOptions): ProxyServer {
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
      // Node's default is unbounded; 256 streams per connection is plenty for any SDK.
      maxConcurrentStreams: 256,
      maxHeaderListSize: snapshot.limits.maxHeaderBytes * 2,
      initialWindowSize: 1024 * 1024,
    },
    maxSessionRejectedStreams: 100,
  });
  applyHttp1Limits(server, snapshot);

  // Adding a 'request' listener makes Node also wrap every h2 stream in the compat layer; take that
  // listener off again so h2 streams reach only our core-API handler (NODE-NOTES 0.5).
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    req.on('error', noop);
    res.on('error', noop);
    // While draining, an HTTP/1.1 client is told not to reuse the connection: a request it sends
    // on a kept-alive socket just as we close it idle would fail.
    if (lifecycle.draining) res.shouldKeepAlive = false;
    onExchange(new H1Downstream(req, res));
  });
  server.removeAllListeners('stream');
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    stream.on('error', noop);
    openStreams.add(stream);
    stream.once('close', () => openStreams.delete(stream));
    onExchange(new H2Downstream(stream, headers, rawHeaders));
  });

  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.on('error', noop);
    // A connection accepted just before the listener closed: it may finish what it sends at once.
    if (lifecycle.draining) session.close();
    trackIdleSession(session, () => current.timeouts.keepAliveMs);
    session.once('close', () => sessions.delete(session));
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => answerClientError(err, socket, log));
  // HTTP/1.1 CONNECT would make this an open tunnel; it is refused like any target that is not a path.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => answerRaw(socket, 'bad_request'));
  server.on('tlsClientError', (err: Error) => log.debug({ reason: (err as { code?: string }).code ?? err.message }, 'tls handshake failed'));

  return {
    server,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port }, () => {
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
  target.requestTimeout = Math.max(snapshot.timeouts.idleMs, snapshot.timeouts.requestHeaderMs);
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

/** An HTTP/1.1 request the parser rejected: answer in JSON (431 for an oversized head) and close. */
function answerClientError(err: Error & { code?: string }, socket: Socket, log: Logger): void {
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'bad_request';
  log.debug({ code, reason: err.code ?? err.message }, 'rejected malformed request');
  // Timeouts and resets carry no parse position: there is nobody to answer.
  if (!socket.writable || (err as { bytesParsed?: number }).bytesParsed === undefined) {
    socket.destroy();
    return;
  }
  answerRaw(socket, code);
}

/** A proxy error written straight to a socket that has no response object, then closed. */
function answerRaw(socket: Socket, code: 'bad_request' | 'headers_too_large'): void {
  const spec = proxyErrors[code];
  const body = defaultErrorTable.errorBody(spec.status, spec.kind, code, spec.message);
  socket.on('error', noop);
  socket.end(
    `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status] ?? ''}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${proxyErrorHeader}: ${code}\r\nconnection: close\r\n\r\n${body}`,
  );
}
