// An upstream answer read whole before anything reaches the client: kept as the fallback while
// another instance is tried, or held only so the upstream key can be scrubbed from it.
import type { Downstream, OutgoingHeaders } from './downstream.js';
import { contentDecoder } from './content-decoders.js';
import { buildResponseHeaders } from './headers.js';
import type { CompiledInstance } from './route-table.js';

/** A response head as undici hands it over. */
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

// An upstream error body is a few hundred bytes; one this large is not worth keeping for a retry.
export const holdLimitBytes = 64 * 1024;

/** An upstream answer set aside for a retry; relayed after all if no later attempt gets an answer. */
export interface HeldAnswer {
  status: number;
  headers: UpstreamHeaders;
  chunks: Buffer[];
  size: number;
  /** The instance that answered: its upstream key is scrubbed from the body before it is relayed. */
  from: CompiledInstance;
  /** Held only to be scrubbed, not to fail over: relayed as soon as it is whole. */
  final: boolean;
}

/**
 * Relays a held answer whole, with the answering instance's upstream key scrubbed from its body.
 * `extraHeaders` are the limited key's x-ratelimit-* headers, if it has any.
 */
export function relayHeldAnswer(down: Downstream, held: HeldAnswer, extraHeaders: OutgoingHeaders | undefined): void {
  try {
    const headers = buildResponseHeaders(held.headers, false);
    if (extraHeaders !== undefined) Object.assign(headers, extraHeaders);
    const body = scrubKeys(decodedForScrubbing(Buffer.concat(held.chunks, held.size), headers), held.from);
    // Read whole, so the length is known whatever framing the upstream used.
    headers['content-length'] = String(body.length);
    down.respond(held.status, headers);
    down.end(body);
  } catch {
    down.abort();
  }
}

/**
 * A compressed error body would hide the key from scrubKeys: it is relayed decoded instead (it is
 * small), and its content-encoding header dropped. One that does not decode is relayed as it came.
 */
function decodedForScrubbing(body: Buffer, headers: OutgoingHeaders): Buffer {
  const decoder = contentDecoder(headers['content-encoding']);
  if (decoder === undefined) return body;
  try {
    const decoded = decoder.whole(body, holdLimitBytes * 16);
    delete headers['content-encoding'];
    return decoded;
  } catch {
    return body;
  }
}

/** The body with every occurrence of the instance's upstream key replaced by its masked form. */
function scrubKeys(body: Buffer, instance: CompiledInstance): Buffer {
  let result = body;
  for (const secret of instance.scrubbedFromBodies) {
    if (result.indexOf(secret) === -1) continue;
    const parts: Buffer[] = [];
    let from = 0;
    for (let at = result.indexOf(secret); at !== -1; at = result.indexOf(secret, from)) {
      parts.push(result.subarray(from, at), instance.maskedKey);
      from = at + secret.length;
    }
    parts.push(result.subarray(from));
    result = Buffer.concat(parts);
  }
  return result;
}
