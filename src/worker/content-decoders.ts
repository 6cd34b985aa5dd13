// The content-encodings the proxy can read for itself (it always relays bodies as they came): a
// streaming decoder for the usage tap and a one-shot one for the small error bodies it holds. One
// table, so both sides know the same encodings.
import type { Transform } from 'node:stream';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, createInflate, gunzipSync, inflateSync, constants as zlib } from 'node:zlib';

export interface ContentDecoder {
  /** finishFlush: a body cut short still yields what it decoded instead of an 'unexpected end' error. */
  stream(): Transform;
  /** Throws on a corrupt body or one that inflates past `maxOutputLength`. */
  whole(body: Buffer, maxOutputLength: number): Buffer;
}

const gzip: ContentDecoder = {
  stream: () => createGunzip({ finishFlush: zlib.Z_SYNC_FLUSH }),
  whole: (body, maxOutputLength) => gunzipSync(body, { maxOutputLength }),
};

const decoders: Readonly<Record<string, ContentDecoder>> = {
  gzip,
  'x-gzip': gzip,
  deflate: {
    stream: () => createInflate({ finishFlush: zlib.Z_SYNC_FLUSH }),
    whole: (body, maxOutputLength) => inflateSync(body, { maxOutputLength }),
  },
  br: {
    stream: () => createBrotliDecompress({ finishFlush: zlib.BROTLI_OPERATION_FLUSH }),
    whole: (body, maxOutputLength) => brotliDecompressSync(body, { maxOutputLength }),
  },
};

/** The decoder of a content-encoding header value; undefined for identity and for what we cannot read. */
export function contentDecoder(encoding: string | string[] | undefined): ContentDecoder | undefined {
  const value = Array.isArray(encoding) ? encoding.join(',') : encoding;
  return value === undefined ? undefined : decoders[value.trim().toLowerCase()];
}

/** No content-encoding, or `identity`: the body is plain. */
export function isIdentity(encoding: string | string[] | undefined): boolean {
  const value = (Array.isArray(encoding) ? encoding.join(',') : encoding)?.trim().toLowerCase();
  return value === undefined || value === '' || value === 'identity';
}
