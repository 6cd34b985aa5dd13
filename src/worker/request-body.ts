// Reading a request body whole (it is kept for failover), under the size limit, the idle timeout
// and the worker's budget for buffered bytes.
import type { Readable } from 'node:stream';
import type { BodyBudget } from './body-budget.js';

/** 'over_budget': the worker's buffer budget is spent (what was read of the body is given back). */
export type BodyResult = Buffer | null | 'too_large' | 'timeout' | 'over_budget' | Error;

/** What a request body is read under. A Buffer result keeps its bytes taken from `budget`. */
export interface BodyReadLimits {
  readonly maxBytes: number;
  /** The client sent nothing for this long: 'timeout' (HTTP/2 has no request timeout of its own). */
  readonly idleMs: number;
  readonly budget: BodyBudget;
  readonly budgetBytes: number;
}

/** A body being read, as the idle watch sees it. */
interface WatchedRead {
  readonly idleMs: number;
  /** The watch's sweep count when the client last sent something. */
  lastSweep: number;
  readonly onIdle: () => void;
  /** Where it is in the watch's list (-1 once removed). */
  slot: number;
}

/**
 * One timer per worker for every body being read, instead of a timer per request: arming and
 * clearing one (and refreshing it per chunk) was a measurable part of a small request's cost, for a
 * timeout that almost never fires. A read times out at the first sweep at least idleMs after the
 * client last sent something, i.e. up to one sweep interval late. The timer stops once it has seen
 * no read for a while, so an idle worker sleeps.
 */
export class IdleWatch {
  static readonly sweepMs = 100;
  static readonly quietSweepsBeforeStop = 20;
  // A list with each read knowing its slot: removal swaps the last one in. A Set's delete showed in
  // S1 profiles at about 2 µs a request under this churn (an add and a delete per request).
  readonly #reads: WatchedRead[] = [];
  #sweeps = 0;
  #quietSweeps = 0;
  #timer: NodeJS.Timeout | undefined;

  get sweeps(): number {
    return this.#sweeps;
  }

  add(read: WatchedRead): void {
    read.slot = this.#reads.length;
    this.#reads.push(read);
    this.#quietSweeps = 0;
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), IdleWatch.sweepMs);
      this.#timer.unref();
    }
  }

  delete(read: WatchedRead): void {
    const slot = read.slot;
    if (slot < 0) return;
    read.slot = -1;
    const last = this.#reads.pop() as WatchedRead;
    if (last !== read) {
      last.slot = slot;
      this.#reads[slot] = last;
    }
  }

  #sweep(): void {
    this.#sweeps += 1;
    if (this.#reads.length === 0) {
      this.#quietSweeps += 1;
      if (this.#quietSweeps >= IdleWatch.quietSweepsBeforeStop && this.#timer !== undefined) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
      return;
    }
    // A sweep count, not a clock: the last chunk came after sweep `lastSweep`, so at least
    // (sweeps - lastSweep - 1) whole intervals have passed since.
    // Timed-out reads are collected first: onIdle removes a read, which reorders the list.
    const idle = this.#reads.filter((read) => (this.#sweeps - read.lastSweep - 1) * IdleWatch.sweepMs >= read.idleMs);
    for (const read of idle) read.onIdle();
  }
}

const idleWatch = new IdleWatch();

/**
 * The body arrives as many pieces (16 KiB each through TLS); a body of more than one that declared its
 * length is copied into one buffer of that length as each piece arrives, while the piece is still in
 * the CPU's cache: joining them at the end read them all back from memory (S5, a 1 MiB body: about
 * a tenth of the worker's CPU in Buffer.concat). A body of one piece is kept as it came.
 *
 * That buffer is made only once a quarter of the declared length has arrived. The budget counts it
 * whole, so made at the second piece it let a client that declared max_body_bytes and sent two bytes
 * take 32 MiB of max_buffered_bytes: eight such connections left every other body on the worker
 * refused. Now what a client can make the worker hold is at most four times what it sent, and the
 * pieces before the buffer (a quarter of the body) are the only ones read back.
 */
const wholeAfterShare = 4;

class BodyPieces {
  /** Pieces kept as they came: before the buffer of the declared length is made, or without one. */
  #pieces: Buffer[] = [];
  #whole: Buffer | undefined;
  /** The body went past its declared length: it stays as pieces. */
  #overflowed = false;
  size = 0;

  /** `wholeBytes`: the declared length when a buffer of it may be made, else 0. */
  constructor(readonly wholeBytes: number) {}

  /** Whether a piece of `length` bytes goes into the buffer of the declared length (made for it if need be). */
  #fitsWhole(length: number): boolean {
    const after = this.size + length;
    const started = this.#whole !== undefined || this.#pieces.length > 0;
    return started && !this.#overflowed && after <= this.wholeBytes && after * wholeAfterShare >= this.wholeBytes;
  }

  /** The bytes held once a piece of `length` bytes is pushed: all of the declared length once its buffer is made. */
  heldAfter(length: number): number {
    return this.#fitsWhole(length) ? this.wholeBytes : this.size + length;
  }

  push(chunk: Buffer): void {
    if (this.#fitsWhole(chunk.length)) {
      if (this.#whole === undefined) {
        this.#whole = Buffer.allocUnsafe(this.wholeBytes);
        let at = 0;
        for (const piece of this.#pieces) at += piece.copy(this.#whole, at);
        this.#pieces = [];
      }
      chunk.copy(this.#whole, this.size);
    } else {
      if (this.#whole !== undefined) {
        // More than was declared (HTTP/2 does not stop it before the stream's end): pieces from here on.
        this.#pieces = [this.#whole.subarray(0, this.size)];
        this.#whole = undefined;
      }
      if (this.size + chunk.length > this.wholeBytes) this.#overflowed = true;
      this.#pieces.push(chunk);
    }
    this.size += chunk.length;
  }

  joined(): Buffer {
    // A body shorter than it declared is copied out, so what stays held is what the budget counts.
    const whole = this.#whole;
    if (whole !== undefined) return this.size === whole.length ? whole : Buffer.from(whole.subarray(0, this.size));
    if (this.#pieces.length === 1) return this.#pieces[0] as Buffer;
    return Buffer.concat(this.#pieces, this.size);
  }

  drop(): void {
    this.#pieces = [];
    this.#whole = undefined;
  }
}

/** `owner.declaredLength`: the request's Content-Length, -1 when it declared none. */
export function readAll(source: Readable, limits: BodyReadLimits, owner: { bytesIn: number; readonly declaredLength: number }, done: (result: BodyResult) => void): void {
  const declared = owner.declaredLength;
  const pieces = new BodyPieces(declared > 0 && declared <= limits.maxBytes ? declared : 0);
  // Budget taken: the bytes read, or the whole declared length once a buffer of it is made.
  let taken = 0;
  let finished = false;
  const watched: WatchedRead = { idleMs: limits.idleMs, lastSweep: idleWatch.sweeps, onIdle: () => finish('timeout'), slot: -1 };
  idleWatch.add(watched);
  const finish = (result: BodyResult) => {
    if (finished) return;
    finished = true;
    idleWatch.delete(watched);
    // Only a whole body stays held (and counted, by its length); a refused or broken one is dropped here.
    if (!Buffer.isBuffer(result)) {
      limits.budget.give(taken);
      pieces.drop();
    } else if (taken > result.length) {
      limits.budget.give(taken - result.length);
    }
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.off('close', onClose);
    done(result);
  };
  const onData = (chunk: Buffer) => {
    watched.lastSweep = idleWatch.sweeps;
    const size = pieces.size;
    owner.bytesIn = size + chunk.length;
    if (size + chunk.length > limits.maxBytes) {
      source.pause();
      finish('too_large');
      return;
    }
    const wanted = pieces.heldAfter(chunk.length);
    if (wanted > taken) {
      if (!limits.budget.take(wanted - taken, limits.budgetBytes)) {
        source.pause();
        finish('over_budget');
        return;
      }
      taken = wanted;
    }
    pieces.push(chunk);
  };
  const onEnd = () => finish(pieces.joined());
  const onError = (err: Error) => finish(err);
  const onClose = () => finish(new Error('client closed the request before its body ended'));
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('error', onError);
  source.on('close', onClose);
}
