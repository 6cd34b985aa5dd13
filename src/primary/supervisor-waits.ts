// What a start, a reload or a rebind waits for: a new generation of workers listening, or every
// serving worker confirming a snapshot. Each wait has a deadline, so a worker that never answers
// cannot hold up every later reload.

export interface BoundAddress {
  host: string;
  port: number;
}

interface PendingListen {
  generation: number;
  count: number;
  timer: NodeJS.Timeout;
  resolve(address: BoundAddress): void;
  reject(err: Error): void;
}

/** The one generation being started: done once `count` of its workers listen, failed by the first that cannot. */
export class ListenWait {
  #pending: PendingListen | undefined;

  /** Waits for `count` workers of `generation`; rejects after `timeoutMs` without them. */
  begin(generation: number, count: number, timeoutMs: number): Promise<BoundAddress> {
    return new Promise<BoundAddress>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(generation, new Error(`workers did not listen within ${timeoutMs / 1000} s`)), timeoutMs);
      timer.unref();
      this.#pending = { generation, count, timer, resolve, reject };
    });
  }

  /** The start of `generation` failed (nothing if another generation, or none, is waited for). */
  fail(generation: number, err: Error): void {
    const pending = this.#take(generation);
    pending?.reject(err);
  }

  /** Done if `ready` workers of the waited generation listen at `address`. */
  check(readyOf: (generation: number) => number, address: BoundAddress | undefined): void {
    const pending = this.#pending;
    if (pending === undefined || address === undefined || readyOf(pending.generation) < pending.count) return;
    this.#take(pending.generation)?.resolve(address);
  }

  #take(generation: number): PendingListen | undefined {
    const pending = this.#pending;
    if (pending === undefined || pending.generation !== generation) return undefined;
    this.#pending = undefined;
    clearTimeout(pending.timer);
    return pending;
  }
}

interface PendingApply {
  version: number;
  timer: NodeJS.Timeout;
  resolve(): void;
}

/** Broadcast snapshots waiting for every serving worker to confirm them. */
export class ApplyWaits {
  #pending: PendingApply[] = [];

  /** Resolves once check() sees `version` applied everywhere, or after `timeoutMs` (calling `onTimeout`). */
  wait(version: number, timeoutMs: number, onTimeout: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending = this.#pending.filter((pending) => pending.timer !== timer);
        onTimeout();
        resolve();
      }, timeoutMs);
      timer.unref();
      this.#pending.push({ version, timer, resolve });
    });
  }

  /** `lowestApplied`: the oldest version a serving worker has applied (Infinity when none serves). */
  check(lowestApplied: number): void {
    this.#pending = this.#pending.filter((pending) => {
      if (pending.version > lowestApplied) return true;
      clearTimeout(pending.timer);
      pending.resolve();
      return false;
    });
  }
}
