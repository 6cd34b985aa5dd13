// A worker's lease of one client key's concurrency slots, which the primary counts for the whole
// cluster (and, with a shared store, for every instance). A slot freed by a request that ended stays
// here as a spare for the next request of the key, so a steady stream of requests costs no round trip
// to the primary: one is needed only when the spares run out. Spares do not block other workers: the
// primary recalls them when it has no free slot left for an ask, and the ones unused for a while go
// back by themselves.
import { askTimeoutMs, idleReturnMs, type Send } from './bucket-lease.js';

export type SlotAnswer = 'granted' | 'refused' | 'unavailable';

/** How a slot admission ended; `held` is false when admitted on a timeout (no slot was counted). */
type SlotWaiter = (answer: SlotAnswer, held: boolean) => void;

export interface SlotAsks {
  next(): number;
  register(seq: number, lease: SlotLease): void;
  /** An ask that timed out: a grant that still comes is handed back by its key id alone. */
  forget(seq: number): void;
}

export class SlotLease {
  /** Slots the primary counts for this worker: in use plus spare. */
  #held = 0;
  #inUse = 0;
  #waiters: SlotWaiter[] = [];
  #seq = -1;
  #asked = 0;
  #askTimer: NodeJS.Timeout | undefined;
  #lastUsed = 0;
  /** Set when the key's limits changed or the worker drains: every slot freed from now goes back. */
  #closed = false;
  /** Spares kept at most: a hundredth of the limit, at least one. */
  readonly #spareCap: number;
  /** The primary said the store is out of reach and limited keys are refused until then. */
  #unavailableUntil = 0;

  constructor(
    readonly id: string,
    readonly limit: number,
    readonly send: Send,
    readonly asks: SlotAsks,
  ) {
    this.#spareCap = Math.max(1, Math.floor(limit / 100));
  }

  get held(): number {
    return this.#held;
  }

  get inUse(): number {
    return this.#inUse;
  }

  admit(now: number, done: SlotWaiter): void {
    this.#lastUsed = now;
    if (this.#waiters.length === 0 && this.#held > this.#inUse) {
      this.#inUse += 1;
      return done('granted', true);
    }
    if (now < this.#unavailableUntil) return done('unavailable', false);
    this.#waiters.push(done);
    if (this.#seq === -1) this.#ask();
  }

  /** A request admitted with a slot ended. */
  free(): void {
    this.#inUse -= 1;
    // A spare is idle from now, not from when its request began.
    this.#lastUsed = Date.now();
    const spare = this.#held - this.#inUse;
    const keep = this.#closed ? 0 : this.#spareCap;
    if (spare > keep) this.#giveBack(spare - keep);
  }

  onGrant(seq: number, granted: number, unavailableMs: number): boolean {
    if (seq !== this.#seq) return false;
    this.#seq = -1;
    clearTimeout(this.#askTimer);
    if (this.#closed) {
      // Asked before the key's limits changed: those waiting go ahead on the new limits' watch.
      for (const waiter of this.#waiters.splice(0)) waiter('granted', false);
      return false;
    }
    const now = Date.now();
    this.#held += granted;
    this.#unavailableUntil = unavailableMs > 0 ? now + unavailableMs : 0;
    while (this.#waiters.length > 0 && this.#held > this.#inUse) {
      this.#inUse += 1;
      (this.#waiters.shift() as SlotWaiter)('granted', true);
    }
    // Those who came while the ask was out: asked for in turn, unless the answer already fell short.
    if (this.#waiters.length > 0 && granted >= this.#asked && unavailableMs === 0) {
      this.#ask();
      return true;
    }
    // The primary tried to find more (recalling other workers' spares) before it answered short.
    const answer: SlotAnswer = unavailableMs > 0 ? 'unavailable' : 'refused';
    for (const waiter of this.#waiters.splice(0)) waiter(answer, false);
    return true;
  }

  /** The primary needs this worker's spares for another one. */
  recall(): void {
    this.#giveBack(this.#held - this.#inUse, true);
  }

  /** Hands spares back when they sat unused; `force` for a worker leaving or limits changing. */
  returnIdle(now: number, force: boolean): void {
    if (force) this.#closed = true;
    if (!force && now - this.#lastUsed < idleReturnMs) return;
    const spare = this.#held - this.#inUse;
    if (spare > 0) this.#giveBack(spare);
  }

  #giveBack(amount: number, recalled = false): void {
    if (amount <= 0 && !recalled) return;
    this.#held -= amount;
    this.send({ type: 'llm-proxy:slot-return', id: this.id, amount, recalled });
  }

  #ask(): void {
    const seq = this.asks.next();
    this.#seq = seq;
    this.#asked = this.#waiters.length;
    this.asks.register(seq, this);
    this.send({ type: 'llm-proxy:slot', seq, id: this.id, want: this.#asked });
    this.#askTimer = setTimeout(() => {
      if (seq !== this.#seq) return;
      // No answer: admit those waiting rather than hold them; a grant that still comes goes back.
      this.#seq = -1;
      this.asks.forget(seq);
      for (const waiter of this.#waiters.splice(0)) waiter('granted', false);
    }, askTimeoutMs);
    this.#askTimer.unref();
  }
}
