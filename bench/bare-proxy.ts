// The bench's bare Node proxy: the least a Node reverse proxy does, written the plain way, so that
// llm-proxy's cost can be told apart from Node's own (TLS, h2, HTTP parsing, undici). A cluster of
// workers, each a TLS listener for h2 and HTTP/1.1 forwarding to one plain HTTP/1.1 upstream through
// an undici Pool; no routing, no auth, no logging, no metrics.
// Run as its own process: argv[2] is a JSON BareOptions; prints `ready` once every worker listens.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2, createSecureServer, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { PassThrough, type Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';

export interface BareOptions {
  port: number;
  upstreamPort: number;
  workers: number;
  certFile: string;
  keyFile: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as BareOptions;

// Hop-by-hop (RFC 9110 7.6.1), and `expect`, which undici refuses in a request it is given.
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'expect']);
// What an h2 response must not carry besides those (Node throws on them).
const h2Forbidden = new Set([...hopByHop, 'host', 'http2-settings']);

function upstreamHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':') || hopByHop.has(name)) continue;
    out[name] = value;
  }
  const authority = headers[':authority'];
  if (out['host'] === undefined && typeof authority === 'string') out['host'] = authority;
  return out;
}

function responseHeaders(headers: Record<string, string | string[] | undefined>, drop: ReadonlySet<string>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !drop.has(name)) out[name] = value;
  return out;
}

/** The client side of one exchange, the same for an HTTP/1.1 response and an h2 stream. */
interface Downstream {
  head(status: number, headers: Record<string, string | string[] | undefined>): void;
  /** false: the client's buffer is full; `drain` follows. */
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
  end(): void;
  fail(): void;
}

class Relay implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  #headSent = false;
  #done = false;

  constructor(private readonly down: Downstream) {}

  /** The client went away before the answer ended: stop reading from the upstream. */
  clientGone(): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller?.abort(new Error('client gone'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.#headSent = true;
    this.down.head(status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.down.write(chunk)) {
      controller.pause();
      this.down.onDrain(() => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#done = true;
    this.down.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, _err: Error): void {
    // Also called for our own abort, when there is nobody left to answer.
    if (this.#done) return;
    this.#done = true;
    if (this.#headSent) return this.down.fail();
    this.down.head(502, { 'content-type': 'text/plain', 'content-length': '12' });
    this.down.write(Buffer.from('bad gateway\n'));
    this.down.end();
  }
}

function serveWorker(): void {
  const pool = new Pool(`http://127.0.0.1:${options.upstreamPort}`, { pipelining: 1, keepAliveTimeout: 120_000, headersTimeout: 300_000, bodyTimeout: 300_000 });
  // noDelay: without it the last piece of a response can wait on Nagle's algorithm behind a delayed ACK.
  const server = createSecureServer({ allowHTTP1: true, cert: readFileSync(options.certFile), key: readFileSync(options.keyFile), noDelay: true });

  const forward = (method: string, path: string, headers: IncomingHttpHeaders, body: Readable | null, relay: Relay) =>
    pool.dispatch({ method, path, headers: upstreamHeaders(headers), body }, relay);

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const relay = new Relay({
      head: (status, headers) => res.writeHead(status, responseHeaders(headers, hopByHop)),
      write: (chunk) => res.write(chunk),
      onDrain: (resume) => res.once('drain', resume),
      end: () => res.end(),
      fail: () => res.destroy(),
    });
    res.once('close', () => relay.clientGone());
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    forward(req.method ?? 'GET', req.url ?? '/', req.headers, hasBody ? req : null, relay);
  });
  // The 'request' listener above makes Node wrap every h2 stream in the compat layer too; take that
  // off so h2 streams reach only the core-API handler below.
  server.removeAllListeners('stream');
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
    stream.on('error', () => undefined);
    const relay = new Relay({
      // respond() throws on a stream the client has just reset, before its 'close' has come round.
      head: (status, upstream) => {
        if (!stream.destroyed) stream.respond({ ...responseHeaders(upstream, h2Forbidden), ':status': status });
      },
      write: (chunk) => stream.write(chunk),
      onDrain: (resume) => stream.once('drain', resume),
      end: () => stream.end(),
      fail: () => stream.close(h2.NGHTTP2_INTERNAL_ERROR),
    });
    stream.once('close', () => relay.clientGone());
    // undici destroys a request body stream once it is sent; the h2 stream is also our response, so
    // it goes through a PassThrough (pipe keeps the backpressure).
    const hasBody = (flags & h2.NGHTTP2_FLAG_END_STREAM) === 0;
    const body = hasBody ? stream.pipe(new PassThrough()) : null;
    forward(String(headers[':method']), String(headers[':path']), headers, body, relay);
  });
  server.listen(options.port, '127.0.0.1');
  // An orderly exit, so that a worker run with --cpu-prof writes its profile.
  process.on('SIGTERM', () => process.exit(0));
}

function runPrimary(): void {
  let listening = 0;
  let stopping = false;
  cluster.on('listening', () => {
    listening += 1;
    if (listening === options.workers) process.stdout.write('ready\n');
  });
  cluster.on('exit', (_worker, code, signal) => {
    if (!stopping) {
      process.stderr.write(`bare-proxy: a worker exited (${signal ?? code})\n`);
      process.exit(1);
    }
  });
  for (let i = 0; i < options.workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    let left = Object.keys(cluster.workers ?? {}).length;
    if (left === 0) process.exit(0);
    cluster.on('exit', () => {
      left -= 1;
      if (left === 0) process.exit(0);
    });
  });
}

if (cluster.isPrimary) runPrimary();
else serveWorker();
