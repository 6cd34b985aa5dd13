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

export function readAll(source: Readable, limits: BodyReadLimits, owner: { bytesIn: number }, done: (result: BodyResult) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const watched: WatchedRead = { idleMs: limits.idleMs, lastSweep: idleWatch.sweeps, onIdle: () => finish('timeout'), slot: -1 };
  idleWatch.add(watched);
  const finish = (result: BodyResult) => {
    if (finished) return;
    finished = true;
    idleWatch.delete(watched);
    // Only a whole body stays held (and counted); a refused or broken one is dropped here.
    if (!Buffer.isBuffer(result)) {
      limits.budget.give(size);
      chunks.length = 0;
    }
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.off('close', onClose);
    done(result);
  };
  const onData = (chunk: Buffer) => {
    watched.lastSweep = idleWatch.sweeps;
    owner.bytesIn = size + chunk.length;
    if (size + chunk.length > limits.maxBytes) {
      source.pause();
      finish('too_large');
      return;
    }
    if (!limits.budget.take(chunk.length, limits.budgetBytes)) {
      source.pause();
      finish('over_budget');
      return;
    }
    size += chunk.length;
    chunks.push(chunk);
  };
  const onEnd = () => finish(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
  const onError = (err: Error) => finish(err);
  const onClose = () => finish(new Error('client closed the request before its body ended'));
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('error', onError);
  source.on('close', onClose);
}
