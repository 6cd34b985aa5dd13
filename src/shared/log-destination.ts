// Where the JSON log lines go: stdout, in batches of whole lines written off the event loop.
// pino.destination (sonic-boom) appends each line to one growing string and measures its byte length
// on every line, which flattens the string again each time (quadratic in the batch); a profile of S1
// showed that, and the threadpool round trip per 4 KiB, as 4-5 % of a worker. Lines are kept as a
// list here and joined once per write.
import { fstatSync, write, writeSync } from 'node:fs';

/**
 * PIPE_BUF on Linux. Every process of the cluster writes to the same stdout; on a pipe (a container
 * runtime's log FIFO, `| tee`) a write of up to this size is never interleaved with another's, while a
 * larger one can be split around another process's line when the pipe is full.
 */
export const pipeAtomicBytes = 4096;

export interface BatchSizes {
  /** A batch is written once it holds this much. */
  readonly batchBytes: number;
  /** No write is larger (a single longer line excepted), so batches stay whole lines. */
  readonly maxWriteBytes: number;
}

/** Batches for a file (or /dev/null) need not stay atomic: writes through one open file are serialised. */
const fileSizes: BatchSizes = { batchBytes: 32 * 1024, maxWriteBytes: 64 * 1024 };
const pipeSizes: BatchSizes = { batchBytes: 3 * 1024, maxWriteBytes: pipeAtomicBytes };

/** Read once at start-up: what kind of thing the descriptor is decides how large a write may be. */
export function batchSizesFor(fd: number): BatchSizes {
  try {
    const stat = fstatSync(fd);
    if (stat.isFile() || stat.isCharacterDevice()) return fileSizes;
  } catch {
    // unknown: the safe sizes
  }
  return pipeSizes;
}

export interface LineBatcherOptions {
  sizes?: BatchSizes;
  /** What is waiting is written at least this often. */
  flushMs?: number;
  /** Lines beyond this much waiting are dropped (a reader that stopped must not grow the heap). */
  maxQueuedBytes?: number;
  /** Once the queue is written out after lines were dropped: how many, since the last call. */
  onDropped?: (count: number) => void;
}

/** A pino destination: lines are queued, joined into batches, and written one batch at a time. */
export class LineBatcher {
  readonly #fd: number;
  readonly #sizes: BatchSizes;
  readonly #flushMs: number;
  readonly #maxQueuedBytes: number;
  #lines: string[] = [];
  #lineBytes = 0;
  /** Batches sealed and not yet written; the first may be the rest of a partial write. */
  #batches: (string | Buffer)[] = [];
  #queuedBytes = 0;
  #writing = false;
  #timer: NodeJS.Timeout | undefined;
  #dropped = 0;
  #droppedReported = 0;
  readonly #onDropped: ((count: number) => void) | undefined;
  #flushed: (() => void)[] = [];

  constructor(fd: number, options: LineBatcherOptions = {}) {
    this.#fd = fd;
    this.#sizes = options.sizes ?? batchSizesFor(fd);
    this.#flushMs = options.flushMs ?? 200;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 32 * 1024 * 1024;
    this.#onDropped = options.onDropped;
  }

  /** Lines dropped so far because the reader did not keep up. */
  get dropped(): number {
    return this.#dropped;
  }

  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.#queuedBytes + bytes > this.#maxQueuedBytes) {
      this.#dropped += 1;
      return false;
    }
    if (this.#lineBytes + bytes > this.#sizes.maxWriteBytes && this.#lines.length > 0) this.#seal();
    this.#lines.push(line);
    this.#lineBytes += bytes;
    this.#queuedBytes += bytes;
    if (this.#lineBytes >= this.#sizes.batchBytes) this.#seal();
    if (!this.#writing && this.#batches.length > 0) this.#writeNext();
    else if (this.#timer === undefined && this.#lines.length > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#seal();
        if (!this.#writing) this.#writeNext();
      }, this.#flushMs);
      this.#timer.unref();
    }
    return true;
  }

  /** Writes what waits; `done` once it is all out (pino's logger.flush). */
  flush(done?: () => void): void {
    this.#seal();
    if (done !== undefined) this.#flushed.push(done);
    if (!this.#writing) this.#writeNext();
  }

  /**
   * At exit: everything left, synchronously. A batch already handed to the threadpool is left to it:
   * written again here it would show twice whenever it did land. (Shutdown waits for flush() instead.)
   */
  flushSync(): void {
    this.#seal();
    const batches = this.#writing ? this.#batches.slice(1) : this.#batches;
    this.#batches = this.#writing ? this.#batches.slice(0, 1) : [];
    for (const batch of batches) writeWhole(this.#fd, typeof batch === 'string' ? Buffer.from(batch) : batch);
    this.#queuedBytes = 0;
  }

  #seal(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#lines.length === 0) return;
    this.#batches.push(this.#lines.length === 1 ? (this.#lines[0] as string) : this.#lines.join(''));
    this.#lines = [];
    this.#lineBytes = 0;
  }

  #writeNext(): void {
    const batch = this.#batches[0];
    if (batch === undefined) {
      this.#writing = false;
      const flushed = this.#flushed;
      this.#flushed = [];
      for (const done of flushed) done();
      const dropped = this.#dropped - this.#droppedReported;
      if (dropped > 0 && this.#onDropped !== undefined) {
        this.#droppedReported = this.#dropped;
        this.#onDropped(dropped);
      }
      return;
    }
    this.#writing = true;
    const written = (err: NodeJS.ErrnoException | null, n: number) => this.#written(batch, err, n);
    if (typeof batch === 'string') write(this.#fd, batch, null, 'utf8', written);
    else write(this.#fd, batch, 0, batch.length, null, written);
  }

  #written(batch: string | Buffer, err: NodeJS.ErrnoException | null, n: number): void {
    if (err !== null && (err.code === 'EAGAIN' || err.code === 'EBUSY')) {
      // A non-blocking descriptor whose reader is behind: try the same batch again shortly.
      setTimeout(() => this.#writeNext(), 20).unref();
      return;
    }
    const bytes = typeof batch === 'string' ? Buffer.byteLength(batch) : batch.length;
    this.#batches.shift();
    if (err !== null) {
      // EPIPE and the like: nobody reads any more, and nothing better can be done with the lines.
      this.#queuedBytes -= bytes;
    } else if (n < bytes) {
      this.#queuedBytes -= n;
      this.#batches.unshift((typeof batch === 'string' ? Buffer.from(batch) : batch).subarray(n));
    } else {
      this.#queuedBytes -= bytes;
    }
    this.#writeNext();
  }
}

/** Blocking write of all of `data`, waiting out EAGAIN a few times (a non-blocking pipe at exit). */
function writeWhole(fd: number, data: Buffer): void {
  let offset = 0;
  let tries = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset, data.length - offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++tries > 100) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
