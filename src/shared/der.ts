// The few ASN.1 DER encodings an X.509 certificate needs (X.690 section 8 with the DER rules of
// section 10). Written out rather than taken from a library: @peculiar/x509 needs a Reflect metadata
// polyfill at load time, and the release image has no openssl to shell out to.

/** One encoded TLV (tag, length, value), ready to be nested. */
export type Der = Buffer;

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, value: Buffer): Der {
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

export const sequence = (...items: Der[]): Der => tlv(0x30, Buffer.concat(items));
export const set = (...items: Der[]): Der => tlv(0x31, Buffer.concat(items));
export const octetString = (value: Buffer): Der => tlv(0x04, value);
export const utf8String = (value: string): Der => tlv(0x0c, Buffer.from(value, 'utf8'));
export const booleanTrue = (): Der => tlv(0x01, Buffer.from([0xff]));
/** [n] EXPLICIT: the inner TLV wrapped whole. */
export const explicit = (n: number, inner: Der): Der => tlv(0xa0 | n, inner);
/** [n] IMPLICIT on a primitive: the value with the context tag in place of the universal one. */
export const implicit = (n: number, value: Buffer): Der => tlv(0x80 | n, value);

/** A non-negative INTEGER from big-endian bytes (a 0x00 is prepended when the top bit is set). */
export function unsignedInteger(bytes: Buffer): Der {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export const smallInteger = (value: number): Der => unsignedInteger(Buffer.from([value]));

/** BIT STRING with no unused bits, as signatures, keys and KeyUsage flags are carried. */
export function bitString(bytes: Buffer, unusedBits = 0): Der {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

export function objectIdentifier(dotted: string): Der {
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const body: number[] = [first * 40 + second];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) chunk.unshift(0x80 | (value & 0x7f));
    body.push(...chunk);
  }
  return tlv(0x06, Buffer.from(body));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(date: Date): Der {
  const iso = date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:T]/g, '');
  const year = date.getUTCFullYear();
  return year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}
