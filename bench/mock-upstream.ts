// The bench's upstream, run in a process of its own so its CPU shows apart from the proxy's. It is
// deliberately lean (the test mock records every request, which a bench cannot afford) and speaks
// just what the scenarios send: an OpenAI chat completion, as a canned answer or as an SSE stream.
//
// Two listeners: plain HTTP/1.1 for the proxies' upstream side, and TLS (h2 + HTTP/1.1 by ALPN) for
// the direct target. Steered by request headers, which both proxies forward untouched:
//   x-bench-tokens: N, x-bench-interval-ms: T   stream N events, the first at once, then one every T ms
//   x-body-crc32: C                             check the body's length and CRC-32, 422 if they differ
//   x-bench-json-bytes: N                       answer a chat completion of exactly N bytes (S7)
//   x-bench-stamp: 1                            begin every event's JSON with "sent_ms", the wall clock
//                                               (ms, fractional) when the mock wrote it (S7)
// GET /__bench/stats answers counters the orchestrator reads between runs.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { stampEvent } from './lib/event-stamp.js';

const [certFile, keyFile] = process.argv.slice(2);
if (certFile === undefined || keyFile === undefined) {
  process.stderr.write('usage: mock-upstream CERT_FILE KEY_FILE\n');
  process.exit(2);
}

const stats = { requests: 0, bodiesChecked: 0, bodyMismatches: 0, streamsStarted: 0, streamsCompleted: 0, eventsSent: 0 };

const cannedAnswer = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'bench-model',
    choices: [{ index: 0, message: { role: 'assistant', content: 'The quick brown fox jumps over the lazy dog.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 },
  }),
);
const mismatchAnswer = Buffer.from('{"error":{"message":"bench mock: body length or CRC-32 differs from x-body-crc32","type":"bench_error"}}');

// The last event of a stream is the usage chunk OpenAI sends when `stream_options.include_usage` is
// set, so the proxy's usage tap has real work in S4 and the event count stays the token count.
const usageEvent = 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}}\n\n';

function tokenEvent(index: number): string {
  const delta = JSON.stringify({ content: `tok${index} ` });
  return `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":${delta},"finish_reason":null}]}\n\n`;
}

function eventFor(index: number, last: boolean, stamp: boolean): string {
  const text = last ? usageEvent : tokenEvent(index);
  // The clock is read as the event is written, so a stall of the mock's own loop (such as writing a
  // 10 MB answer) moves the stamp with it and the client can tell it from a stall on the path.
  return stamp ? stampEvent(text) : text;
}

const largeAnswers = new Map<number, Buffer>();

/**
 * A completion of exactly `bytes` bytes (or the smallest one, if it cannot be that short), its bulk in
 * the message content and `usage` last, where OpenAI puts it: a proxy that wants the usage must read
 * to the end. Built once per size.
 */
function largeAnswer(bytes: number): Buffer {
  const cached = largeAnswers.get(bytes);
  if (cached !== undefined) return cached;
  const head = '{"id":"chatcmpl-bench-large","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"';
  const tail = '"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2500000,"total_tokens":2500012}}';
  const room = Math.max(0, bytes - head.length - tail.length);
  const words = 'The quick brown fox jumps over the lazy dog. ';
  const answer = Buffer.from(head + words.repeat(Math.ceil(room / words.length)).slice(0, room) + tail);
  largeAnswers.set(bytes, answer);
  return answer;
}

/** What a request asks of the mock, read from its headers. */
interface Ask {
  tokens: number;
  intervalMs: number;
  crc: number | undefined;
  length: number;
  jsonBytes: number;
  stamp: boolean;
}

function readAsk(headers: IncomingHttpHeaders): Ask {
  const tokens = headers['x-bench-tokens'];
  const interval = headers['x-bench-interval-ms'];
  const crc = headers['x-body-crc32'];
  const jsonBytes = headers['x-bench-json-bytes'];
  return {
    tokens: typeof tokens === 'string' ? Number(tokens) : 0,
    intervalMs: typeof interval === 'string' ? Number(interval) : 0,
    crc: typeof crc === 'string' ? Number(crc) : undefined,
    length: Number(headers['content-length'] ?? -1),
    jsonBytes: typeof jsonBytes === 'string' ? Number(jsonBytes) : 0,
    stamp: headers['x-bench-stamp'] === '1',
  };
}

/** The response side of one exchange, the same for HTTP/1.1 and an HTTP/2 stream. */
interface Reply {
  json(status: number, body: Buffer): void;
  startStream(): void;
  write(text: string): void;
  end(text: string): void;
  onClose(listener: () => void): void;
}

function serve(ask: Ask, body: Buffer[], reply: Reply): void {
  stats.requests += 1;
  if (ask.crc !== undefined) {
    stats.bodiesChecked += 1;
    const whole = Buffer.concat(body);
    if (whole.length !== ask.length || crc32(whole) !== ask.crc) {
      stats.bodyMismatches += 1;
      return reply.json(422, mismatchAnswer);
    }
  }
  if (ask.tokens > 0) return streamTokens(ask, reply);
  reply.json(200, ask.jsonBytes > 0 ? largeAnswer(ask.jsonBytes) : cannedAnswer);
}

function streamTokens(ask: Ask, reply: Reply): void {
  stats.streamsStarted += 1;
  reply.startStream();
  let sent = 0;
  const tick = () => {
    if (sent === ask.tokens) {
      clearInterval(timer);
      stats.streamsCompleted += 1;
      reply.end('data: [DONE]\n\n');
      return;
    }
    reply.write(eventFor(sent, sent === ask.tokens - 1, ask.stamp));
    sent += 1;
    stats.eventsSent += 1;
  };
  const timer = setInterval(tick, ask.intervalMs);
  reply.onClose(() => clearInterval(timer));
  tick();
}

function statsAnswer(): Buffer {
  return Buffer.from(JSON.stringify(stats));
}

function onHttp1(req: IncomingMessage, res: ServerResponse): void {
  const body: Buffer[] = [];
  req.on('data', (chunk: Buffer) => body.push(chunk));
  req.on('end', () => {
    const reply: Reply = {
      json(status, payload) {
        res.writeHead(status, ['content-type', 'application/json', 'content-length', String(payload.length)]);
        res.end(payload);
      },
      startStream() {
        res.writeHead(200, ['content-type', 'text/event-stream', 'cache-control', 'no-cache']);
        res.flushHeaders();
      },
      write: (text) => res.write(text),
      end: (text) => res.end(text),
      onClose: (listener) => res.once('close', listener),
    };
    if (req.url === '/__bench/stats') return reply.json(200, statsAnswer());
    serve(readAsk(req.headers), body, reply);
  });
}

function onHttp2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const body: Buffer[] = [];
  stream.on('error', () => undefined);
  stream.on('data', (chunk: Buffer) => body.push(chunk));
  stream.on('end', () => {
    const reply: Reply = {
      json(status, payload) {
        stream.respond({ ':status': status, 'content-type': 'application/json', 'content-length': String(payload.length) });
        stream.end(payload);
      },
      startStream() {
        stream.respond({ ':status': 200, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      },
      write: (text) => stream.write(text),
      end: (text) => stream.end(text),
      onClose: (listener) => stream.once('close', listener),
    };
    if (headers[':path'] === '/__bench/stats') return reply.json(200, statsAnswer());
    serve(readAsk(headers), body, reply);
  });
}

const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);

const plain = createServer({ keepAliveTimeout: 120_000, requestTimeout: 0 }, onHttp1);
// Keep-alive far longer than any pause between runs, so no run pays for reconnecting upstream.
plain.keepAliveTimeout = 120_000;
plain.headersTimeout = 130_000;

const secure = createSecureServer({ cert, key, allowHTTP1: true, noDelay: true, settings: { maxConcurrentStreams: 1024 } });
secure.on('request', onHttp1);
// Core stream API for h2, as the proxy does: the compat layer would make the floor slower.
secure.removeAllListeners('stream');
secure.on('stream', onHttp2);
const secureSettings = secure as unknown as Record<string, number>;
secureSettings.keepAliveTimeout = 120_000;
secureSettings.headersTimeout = 130_000;
secureSettings.requestTimeout = 0;

plain.listen(0, '127.0.0.1');
secure.listen(0, '127.0.0.1');
await Promise.all([once(plain, 'listening'), once(secure, 'listening')]);
process.stdout.write(`${JSON.stringify({ plainPort: (plain.address() as AddressInfo).port, tlsPort: (secure.address() as AddressInfo).port })}\n`);

process.on('SIGTERM', () => process.exit(0));
