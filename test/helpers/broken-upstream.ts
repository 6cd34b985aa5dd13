// An upstream that breaks HTTP on purpose, at the byte level a real HTTP server would never allow:
// what it does is chosen by the request path.
import { createServer, type AddressInfo, type Socket } from 'node:net';

export type Breakage = 'close-mid-headers' | 'garbage' | 'endless-body' | 'slow-body' | 'bad-header' | 'huge-headers';

export interface BrokenUpstream {
  readonly port: number;
  /** Served connections that have closed since (for endless-body, only the proxy can close one). */
  closedByPeer(): number;
  close(): Promise<void>;
}

const behaviours: Record<Breakage, (socket: Socket) => void> = {
  'close-mid-headers': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: applic');
    socket.destroy();
  },
  garbage: (socket) => {
    socket.write('SSH-2.0-OpenSSH_9.2\r\n\u0000\u0001\u0002 not http at all\r\n\r\n');
    setTimeout(() => socket.destroy(), 50);
  },
  'endless-body': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = 'data: {"choices":[{"delta":{"content":"more "}}]}\n\n';
    const frame = `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`;
    const timer = setInterval(() => {
      if (!socket.destroyed) socket.write(frame);
    }, 5);
    socket.once('close', () => clearInterval(timer));
  },
  'slow-body': (socket) => {
    // One event, then silence longer than the proxy's idle timeout.
    const chunk = 'data: {"choices":[{"delta":{"content":"first"}}]}\n\n';
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`);
  },
  'bad-header': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Broken: a\u0001b\r\nContent-Length: 2\r\n\r\n{}');
  },
  'huge-headers': (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Huge: ${'h'.repeat(200 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`);
  },
};

export async function startBrokenUpstream(): Promise<BrokenUpstream> {
  let closedByPeer = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let head = '';
    let served = false;
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      if (served) closedByPeer += 1;
    });
    socket.on('data', (chunk: Buffer) => {
      if (served) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      served = true;
      const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '/';
      const name = path.split('?')[0]?.split('/').pop() as Breakage;
      (behaviours[name] ?? behaviours.garbage)(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    closedByPeer: () => closedByPeer,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
