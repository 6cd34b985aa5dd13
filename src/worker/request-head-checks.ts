// Checks on a request head that Node's parsers leave to us: conflicting hosts, transfer codings,
// malformed HTTP/2 fields, the declared length.
import type { ProxyErrorCode } from '../shared/errors.js';

/** Host names equal ignoring case, a port and a trailing dot (`A.com:443` is `a.com`). */
export function sameHost(a: string, b: string): boolean {
  const bare = (host: string) => host.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
  return bare(a) === bare(b);
}

export function countHeader(raw: readonly string[], lowerName: string): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === lowerName.length && (raw[i] as string).toLowerCase() === lowerName) count += 1;
  return count;
}

/**
 * The only transfer coding a request may carry here is a single chunked: anything else (`gzip,
 * chunked`) would be decoded by Node's parser and the coding silently lost upstream (RFC 9112 6.1:
 * a server that does not understand a coding answers 501).
 */
export function transferCodingRejection(raw: readonly string[]): ProxyErrorCode | undefined {
  let codings = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 17 || name.toLowerCase() !== 'transfer-encoding') continue;
    for (const token of (raw[i + 1] as string).split(',')) {
      const coding = token.trim().toLowerCase();
      if (coding === '') continue;
      if (coding !== 'chunked') return 'unsupported_transfer_coding';
      codings += 1;
    }
  }
  return codings > 1 ? 'unsupported_transfer_coding' : undefined;
}

// RFC 9113 8.2.1: a field value with CR, LF or NUL or with leading or trailing whitespace, or a
// name with a space or colon, makes the request malformed. nghttp2 drops most of these before they
// reach us (Node ignores invalid fields rather than resetting the stream); with
// strictFieldWhitespaceValidation off (Node >= 22) the whitespace cases do reach us and are refused here.
const invalidValue = /[\0\r\n]|^[\t ]|[\t ]$/;
const invalidName = /[\0\r\n :]/;

export function fieldRejection(raw: readonly string[]): ProxyErrorCode | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) !== 0x3a && invalidName.test(name)) return 'bad_request';
    if (invalidValue.test(raw[i + 1] as string)) return 'bad_request';
  }
  return undefined;
}

export function parseLength(value: string | string[] | undefined): number {
  if (typeof value !== 'string' || value === '') return -1;
  const length = Number(value);
  return Number.isSafeInteger(length) && length >= 0 ? length : -1;
}
