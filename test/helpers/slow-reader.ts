// A slow reader against a fast upstream (issue 15): the upstream writes an endless event stream as
// fast as its socket takes it and counts what the kernel accepted; the client reads at a fixed rate.
// What the upstream could send minus what the client received is what sits between them: the
// kernel's socket buffers plus whatever the proxy holds.
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect as h2connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';

export interface FloodUpstream {
  readonly port: number;
  /** Bytes of body whose write callback fired (handed to the kernel), over every response so far. */
  accepted(): number;
  /** Responses whose client side closed (the proxy aborted its upstream request). */
  closed(): number;
  close(): Promise<void>;
}

// 16 KiB of SSE per write: events of about 1 KiB as a chat stream sends, only faster.
const event = `data: ${JSON.stringify({ choices: [{ delta: { content: 'x'.repeat(1000) } }] })}\n\n`;
const burst = Buffer.from(event.repeat(Math.floor(16384 / event.length)));

/** An upstream that streams without end, as fast as backpressure lets it. */
export async function startFloodUpstream(): Promise<FloodUpstream> {
  let accepted = 0;
  let closed = 0;
  const flood = (res: ServerResponse) => {
    let open = true;
    res.once('close', () => {
      open = false;
      closed += 1;
    });
    const pump = () => {
      while (open) {
        if (!res.write(burst, () => (accepted += burst.length))) return void res.once('drain', pump);
      }
    };
    pump();
  };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      flood(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    closed: () => closed,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SlowRead {
  /** Body (and head) bytes the client has read so far. */
  received(): number;
  stop(): void;
}

export interface SlowReadTarget {
  port: number;
  caPem: string;
  authority: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  bytesPerSecond: number;
}

/** Admits bytes at `bytesPerSecond`: pauses the source when it is ahead, resumes when it is not. */
function rateGate(bytesPerSecond: number, source: { pause(): unknown; resume(): unknown }) {
  const started = performance.now();
  let received = 0;
  let paused = false;
  const allowed = () => ((performance.now() - started) / 1000) * bytesPerSecond;
  const timer = setInterval(() => {
    if (paused && received < allowed()) {
      paused = false;
      source.resume();
    }
  }, 10);
  return {
    received: () => received,
    count(bytes: number) {
      received += bytes;
      if (!paused && received >= allowed()) {
        paused = true;
        source.pause();
      }
    },
    stop: () => clearInterval(timer),
  };
}

/** HTTP/1.1 over a raw TLS socket: nothing between the socket and the rate gate. */
export function slowReadH1(target: SlowReadTarget): Promise<SlowRead> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: target.port, ca: target.caPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      const head = [`POST ${target.path} HTTP/1.1`, `host: ${target.authority}`, `content-length: ${Buffer.byteLength(target.body)}`];
      for (const [name, value] of Object.entries(target.headers)) head.push(`${name}: ${value}`);
      socket.write(`${head.join('\r\n')}\r\n\r\n${target.body}`);
      const gate = rateGate(target.bytesPerSecond, socket);
      socket.on('data', (chunk: Buffer) => gate.count(chunk.length));
      resolve({
        received: gate.received,
        stop: () => {
          gate.stop();
          socket.destroy();
        },
      });
    });
    socket.on('error', reject);
  });
}

/** HTTP/2 with a 64 KiB stream window: the client's flow control is what holds the proxy back. */
export function slowReadH2(target: SlowReadTarget): Promise<SlowRead> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://127.0.0.1:${target.port}`, { ca: target.caPem, servername: 'localhost', settings: { initialWindowSize: 65535 } });
    session.once('error', reject);
    session.once('connect', () => {
      const stream = session.request({ ':method': 'POST', ':path': target.path, ':authority': target.authority, ...target.headers });
      stream.on('error', () => undefined);
      stream.end(target.body);
      const gate = rateGate(target.bytesPerSecond, stream);
      stream.on('data', (chunk: Buffer) => gate.count(chunk.length));
      resolve({
        received: gate.received,
        stop: () => {
          gate.stop();
          stream.close();
          session.destroy();
        },
      });
    });
  });
}

/**
 * Bytes the kernel holds in the queues of every TCP connection to or from these local ports (send
 * queues not yet taken by the peer, receive queues not yet read), from /proc/net/tcp{,6}: what sits
 * between the upstream and a slow client that no process holds.
 */
export function kernelQueuedBytes(ports: readonly number[]): number {
  const wanted = new Set(ports.map((port) => port.toString(16).toUpperCase().padStart(4, '0')));
  let queued = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 5) continue;
      const localPort = (fields[1] ?? '').split(':')[1];
      const remotePort = (fields[2] ?? '').split(':')[1];
      if (!wanted.has(localPort ?? '') && !wanted.has(remotePort ?? '')) continue;
      const [tx, rx] = (fields[4] ?? '0:0').split(':');
      queued += Number.parseInt(tx ?? '0', 16) + Number.parseInt(rx ?? '0', 16);
    }
  }
  return queued;
}
