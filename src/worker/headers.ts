// Header rewriting in both directions. Hop-by-hop headers must go (HTTP/2 forbids them and Node
// throws on them, see NODE-NOTES), and so must every client credential of the route's type.
type IncomingHttpHeaders = Record<string, string | string[] | undefined>;
import type { OutgoingHeaders } from './downstream.js';
import type { CompiledInstance, CompiledRoute } from './route-table.js';

const requestHopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'http2-settings',
  'host',
  // The body is already buffered; undici cannot send `expect: 100-continue` over HTTP/1.1.
  'expect',
]);

const responseHopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'http2-settings']);

/** Names listed in a Connection header are hop-by-hop too (RFC 9110 7.6.1), from every line of it. */
function connectionListed(value: string | undefined, into?: Set<string>): Set<string> | undefined {
  // What nearly every upstream sends, and names nothing: no split for it.
  if (value === undefined || value === '' || value === 'keep-alive' || value === 'close') return into;
  let names = into;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') (names ??= new Set()).add(name);
  }
  return names;
}

/** RFC 9113 6.5.2 size accounting: name + value + 32 per field. */
export function headerListSize(raw: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < raw.length; i += 2) size += (raw[i] as string).length + (raw[i + 1] as string).length + 32;
  return size;
}

export function buildUpstreamHeaders(raw: readonly string[], route: CompiledRoute, instance: CompiledInstance): string[] {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).length === 10 && (raw[i] as string).toLowerCase() === 'connection') {
      listed = connectionListed(raw[i + 1], listed);
    }
  }
  const strip = instance.stripClientCredentials ? route.credentialHeaders : undefined;
  // An HTTP/2 request (its pseudo-headers come first) may split its cookie into crumbs, which must
  // be joined with "; " before they go to HTTP/1.1, where several cookie lines are not allowed (RFC
  // 9113 8.2.3). One joined line is as valid over HTTP/2, so it is done for both kinds of upstream.
  const h2 = raw.length > 0 && (raw[0] as string).charCodeAt(0) === 0x3a;
  let cookie: string | undefined;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) === 0x3a) continue; // HTTP/2 pseudo-header
    const lower = name.toLowerCase();
    if (requestHopByHop.has(lower) || strip?.has(lower) === true || listed?.has(lower) === true) continue;
    if (h2 && lower === 'cookie') {
      cookie = cookie === undefined ? (raw[i + 1] as string) : `${cookie}; ${raw[i + 1] as string}`;
      continue;
    }
    out.push(name, raw[i + 1] as string);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  out.push('host', instance.hostHeader);
  for (const value of instance.keyHeaders) out.push(value);
  return out;
}

export function buildResponseHeaders(upstream: IncomingHttpHeaders, eventStream: boolean): OutgoingHeaders {
  const connection = upstream.connection;
  const listed = connectionListed(Array.isArray(connection) ? connection.join(',') : connection);
  const out: OutgoingHeaders = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || responseHopByHop.has(name) || listed?.has(name) === true) continue;
    out[name] = value;
  }
  // An nginx in front of us would otherwise buffer the event stream.
  if (eventStream) out['x-accel-buffering'] = 'no';
  return out;
}
