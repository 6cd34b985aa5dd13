// The primary's plain-HTTP admin listener (loopback by default): liveness, readiness and a JSON
// status page for operators and orchestrators. It reads state the control plane already holds; it
// never reaches a worker per request, and nothing it serves contains a key.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/log.js';

/** A JSON body, or `text` sent as is with its content type (the Prometheus exposition format). */
export type AdminAnswer = { status: number; body: unknown } | { status: number; text: string; contentType: string };
export type AdminRoute = (req: IncomingMessage) => AdminAnswer | Promise<AdminAnswer>;

export interface AdminServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

const noStore = { 'content-type': 'application/json', 'cache-control': 'no-store' };

/** Starts listening; rejects (so the caller can refuse to start) when the address cannot be bound. */
export function startAdminServer(host: string, port: number, routes: Readonly<Record<string, AdminRoute>>, log: Logger): Promise<AdminServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?', 1)[0] as string;
    const route = routes[path];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'only GET and HEAD' }, { allow: 'GET, HEAD' });
    if (route === undefined) return send(res, 404, { error: `no admin endpoint ${path}`, endpoints: Object.keys(routes) });
    Promise.resolve()
      .then(() => route(req))
      .then(
        (answer) => ('text' in answer ? sendText(res, answer.status, answer.text, answer.contentType) : send(res, answer.status, answer.body)),
        (err: unknown) => send(res, 503, { error: (err as Error).message }),
      );
  });
  // An orchestrator polls these for the life of the process; a slow client must not hold a socket.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      server.on('error', (err) => log.error({ reason: err.message }, 'admin listener error'));
      const bound = server.address() as AddressInfo;
      resolve({
        address: { host: bound.address, port: bound.port },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  sendText(res, status, `${JSON.stringify(body, null, 2)}\n`, noStore['content-type'], extra);
}

function sendText(res: ServerResponse, status: number, text: string, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...noStore, 'content-type': contentType, ...extra, 'content-length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
