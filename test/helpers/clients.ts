// Real clients for the proxy: undici over HTTP/1.1 and node:http2 over HTTP/2, both trusting the
// test CA and both able to send any Host / :authority.
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';

export interface TestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = unknown>(): T;
}

export interface TestRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Host / :authority; default localhost. */
  host?: string;
}

function toResponse(status: number, headers: TestResponse['headers'], body: Buffer): TestResponse {
  const text = body.toString('utf8');
  return { status, headers, body, text, json: <T>() => JSON.parse(text) as T };
}

export function createH1Agent(caPem: string): Agent {
  return new Agent({ connect: { ca: caPem, servername: 'localhost' } });
}

export async function h1Request(agent: Agent, port: number, req: TestRequest): Promise<TestResponse> {
  const res = await request(`https://127.0.0.1:${port}${req.path}`, {
    dispatcher: agent,
    method: (req.method ?? (req.body === undefined ? 'GET' : 'POST')) as 'GET',
    headers: { host: req.host ?? 'localhost', ...req.headers },
    body: req.body ?? null,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return toResponse(res.statusCode, res.headers, body);
}

export function openH2Session(caPem: string, port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`https://127.0.0.1:${port}`, { ca: caPem, servername: 'localhost' });
    session.once('connect', () => {
      session.off('error', reject);
      resolve(session);
    });
    session.once('error', reject);
  });
}

export function h2Request(session: ClientHttp2Session, req: TestRequest): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = {
      ':method': req.method ?? (req.body === undefined ? 'GET' : 'POST'),
      ':path': req.path,
      ':authority': req.host ?? 'localhost',
      ...req.headers,
    };
    const stream = session.request(headers, { endStream: req.body === undefined });
    let status = 0;
    let responseHeaders: TestResponse['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = { ...h };
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(toResponse(status, responseHeaders, Buffer.concat(chunks))));
    stream.on('error', reject);
    if (req.body !== undefined) stream.end(req.body);
  });
}

/** Rejects after `ms` with a message, so a hung wait fails fast and still cleans up. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

/** Sends raw bytes over TLS (HTTP/1.1 by ALPN) and returns everything read until the server closes. */
export function rawH1Exchange(caPem: string, port: number, raw: string | Buffer, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: caPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => socket.write(raw));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
