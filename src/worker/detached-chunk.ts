// A body chunk from undici is a view into the buffer its socket read returned. When the relay is
// paused for a slow client, undici's socket concatenates what it buffered into one read, so each
// chunk can point into a MiB-sized buffer: a 16 KiB chunk waiting in the client's write queue then
// pins all of it. Measured with 20 HTTP/1.1 readers at 1 KiB/s: 2.2 MiB pinned per stream beyond the
// kernel's socket buffers, 7.7 MB of worker RSS per stream. Such a chunk is copied, so what waits is
// only its own bytes; a chunk from an ordinary read (its buffer at most one 64 KiB socket read) is
// passed on untouched, so a client that keeps up costs no copy.

/** Buffers this large, much larger than the chunk viewing them, are not kept alive for a chunk. */
const pinnedBytesWorthACopy = 256 * 1024;

export function detachedChunk(chunk: Buffer): Buffer {
  const store = chunk.buffer.byteLength;
  return store >= pinnedBytesWorthACopy && store > 4 * chunk.length ? Buffer.from(chunk) : chunk;
}
