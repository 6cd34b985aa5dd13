// The contract every provider type fills in. Shared code asks a table; it never tests a type name.
import type { ErrorKind } from '../errors.js';
import type { ProviderType } from '../config/schema.js';
import type { UsageFormat } from '../usage/token-usage.js';

export interface ProviderTable {
  readonly type: ProviderType;
  /** Anthropic and Gemini cannot be used without an upstream key; OpenAI may pass the client's through. */
  readonly requiresUpstreamKey: boolean;
  /** Lower-case request headers that may carry a client key; every one is stripped before forwarding. */
  readonly clientKeyHeaders: readonly string[];
  /** Query parameter that may carry a client key (and is rewritten to the upstream key). */
  readonly keyQueryParam: string | undefined;
  /** The key inside a credential header value ('Bearer k' -> 'k'). */
  readClientKey(header: string, value: string): string;
  /** Header pairs that carry an upstream key. */
  upstreamKeyHeaders(upstreamKey: string): readonly (readonly [string, string])[];
  /** JSON body of an error the proxy answers itself, shaped as this provider's SDKs expect. */
  errorBody(status: number, kind: ErrorKind, code: string, message: string): string;
  /** A terminal SSE event telling the client the stream failed, where the format has one. */
  streamErrorEvent: ((message: string) => string) | undefined;
  /** Where responses report token usage and requests name their model. */
  readonly usage: UsageFormat;
}

const bearer = /^bearer\s+/i;

/** `Authorization: Bearer k` and, as the original allowed for OpenAI, a bare `Authorization: k`. */
export function stripBearer(value: string): string {
  // The form nearly every client sends, `Bearer k` with nothing around k to trim, without a regex.
  if (value.startsWith('Bearer ') && isKeyEdge(value.charCodeAt(7)) && isKeyEdge(value.charCodeAt(value.length - 1))) return value.slice(7);
  return value.replace(bearer, '').trim();
}

/** Not whitespace as \s and trim() see it; header values are Latin-1, so the only one above 0x20 is NBSP. */
function isKeyEdge(code: number): boolean {
  return code > 0x20 && code !== 0xa0;
}
