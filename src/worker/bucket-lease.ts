// A worker's lease of one per-minute bucket (requests or tokens) of one client key, which the primary
// owns: a request is admitted from the lease, and the worker asks for more before the lease runs dry,
// so in the common case no request waits on IPC. A request waits (for one round trip) only when its
// lease is empty and the primary has not said the bucket is; once it has, the worker refuses locally
// until the time it gave. A token admission reserves what its request may cost (estimate.ts), which
// differs from request to request, so each waiter carries what is known of its request; what that
// comes to is worked out when it is served, with the key's average as the primary last told it.
import type { LimitDimension, WorkerMessage } from '../shared/ipc.js';
import { reservedTokens, type RequestTokens } from '../shared/usage/estimate.js';

export type Send = (message: WorkerMessage) => void;

/** Numbers the asks of every lease of a worker and records which lease each answer is for. */
export interface Asks {
  next(): number;
  register(seq: number, lease: Lease): void;
  /** An ask that timed out: a grant that still comes is handed back by its key and dimension. */
  forget(seq: number): void;
}

/** Sent when an ask gets no answer (the primary is busy or gone): better to admit than to hang. */
export const askTimeoutMs = 2_000;
/** A lease unused this long goes back to the primary, where other workers can have it. */
export const idleReturnMs = 2_000;

/** Called with what admitting took from the lease (0 when refused or admitted without an answer). */
type Admitted = (ok: boolean, taken: number) => void;

interface Waiter {
  readonly request: RequestTokens | undefined;
  readonly done: Admitted;
}

/** A worker's lease of one bucket (requests or tokens) of one key. */
export class Lease {
  balance = 0;
  /** Tokens spent beyond the lease, owed to the primary's bucket with the next ask. */
  #debt = 0;
  #asking = false;
  #askTimer: NodeJS.Timeout | undefined;
  #seq = -1;
  /** The primary said the bucket cannot cover `#emptyNeed` until then: refuse that much without asking. */
  #emptyUntil = 0;
  #emptyNeed = 1;
  #waiters: Waiter[] = [];
  /** Set when the key's limits changed or the worker drains: grants that still arrive go back. */
  closed = false;
  /** The primary's level at its last answer, to tell clients what remains. */
  #remoteLevel: number;
  #remoteAt = 0;
  #lastUsed = 0;
  /**
   * Tokens: what a response of this key costs (as seen here, and as the primary last heard from any
   * worker), so a request is admitted only while that much is left.
   */
  #estimate = 0;
  #remoteEstimate = 0;
  readonly #batch: number;

  constructor(
    readonly id: string,
    readonly dimension: LimitDimension,
    readonly limit: number,
    readonly send: Send,
    readonly asks: Asks,
  ) {
    this.#remoteLevel = limit;
    // A hundredth of the limit per ask: few asks, and little held by a worker that goes quiet.
    this.#batch = Math.max(1, Math.floor(limit / 100));
  }

  /** What admitting one request needs in the lease: 1 request, or the tokens it reserves. */
  #needFor(request: RequestTokens | undefined): number {
    return this.dimension === 'requests' ? 1 : reservedTokens(request, Math.max(this.#estimate, this.#remoteEstimate), this.limit);
  }

  /** What the next request of the key will most likely need: the lease asks ahead to keep that much. */
  get #need(): number {
    return this.#needFor(undefined);
  }

  /** What the first waiting request needs, else what a usual one does. */
  #headNeed(): number {
    const head = this.#waiters[0];
    return head === undefined ? this.#need : this.#needFor(head.request);
  }

  /** `request`: what is known of a request's tokens (a tokens lease; without it, the key's average is reserved). */
  admit(now: number, done: Admitted, request?: RequestTokens): void {
    this.#lastUsed = now;
    const need = this.#needFor(request);
    if (this.#waiters.length === 0) {
      const taken = this.#tryAdmit(need);
      if (taken > 0) {
        this.#askAhead();
        return done(true, taken);
      }
    }
    // A smaller request than the one the primary's answer was about may still fit: it asks.
    if (now < this.#emptyUntil && need >= this.#emptyNeed) return done(false, 0);
    this.#waiters.push({ request, done });
    if (!this.#asking) this.#ask();
  }

  /** Hands back what an admission took and did not use (a request refused by another limit). */
  refund(amount: number): void {
    this.balance += amount;
  }

  /**
   * A response ended: it reported `tokens`, and its admission had reserved `reserved` of them. The
   * difference is settled with the lease, which may go below zero (the next ask charges it).
   */
  settle(reserved: number, tokens: number): void {
    if (tokens > 0) this.#estimate = Math.max(1, Math.round(this.#estimate === 0 ? tokens : 0.7 * this.#estimate + 0.3 * tokens));
    if (tokens === reserved) return;
    this.balance += reserved - tokens;
    if (this.balance < 0) {
      this.#debt -= this.balance;
      this.balance = 0;
    }
    this.#askAhead();
  }

  /** An answer to one of this lease's asks; false when it was no longer waited for (its grant goes back). */
  onGrant(seq: number, granted: number, level: number, retryAfterMs: number, estimate: number): boolean {
    if (seq !== this.#seq) return false;
    if (this.closed) {
      // The key's limits changed while this ask was out: those waiting go ahead on the new ones' watch.
      this.#settle();
      this.#seq = -1;
      for (const waiter of this.#waiters.splice(0)) waiter.done(true, 0);
      return false;
    }
    this.#settle();
    const now = Date.now();
    this.balance += granted;
    this.#remoteLevel = level;
    this.#remoteAt = now;
    this.#remoteEstimate = estimate;
    // Until the bucket can cover what the first waiting request (or a usual one) needs, requests here
    // that need as much are refused without asking.
    const need = this.#headNeed();
    const short = need - this.balance - Math.max(0, level);
    const untilNeed = short > 0 ? Math.ceil((short * 60_000) / this.limit) : 0;
    const waitMs = Math.max(retryAfterMs, this.balance >= need ? 0 : untilNeed);
    this.#emptyUntil = waitMs > 0 ? now + waitMs : 0;
    this.#emptyNeed = need;
    this.#serveWaiters(now);
    return true;
  }

  remaining(now: number): number {
    const refilled = this.#remoteLevel + ((now - this.#remoteAt) * this.limit) / 60_000;
    return Math.max(0, Math.floor(Math.min(this.limit, refilled + this.balance)));
  }

  retryAfterMs(now: number): number {
    return Math.max(1000, this.#emptyUntil - now);
  }

  resetMs(now: number): number {
    return ((this.limit - this.remaining(now)) * 60_000) / this.limit;
  }

  /** Hands the lease back if it sat unused; `force` for a worker that is leaving. */
  returnIdle(now: number, force: boolean): void {
    if (this.#asking || this.#waiters.length > 0) return;
    if (!force && now - this.#lastUsed < idleReturnMs) return;
    if (this.balance > 0) {
      this.send({ type: 'llm-proxy:lease-return', id: this.id, dimension: this.dimension, amount: this.balance });
      this.balance = 0;
    }
    if (this.#debt > 0) {
      // What is owed is charged even if the key goes quiet, so other workers see it.
      this.#ask(0);
    }
  }

  /**
   * Takes what one request needs from the lease: 1 request, or the tokens it reserves, so that
   * requests admitted while others are still running cannot all spend the same balance. Returns what
   * was taken, 0 when the lease cannot admit.
   */
  #tryAdmit(need: number): number {
    if (this.balance < need) return 0;
    this.balance -= need;
    return need;
  }

  #askAhead(): void {
    if (this.#asking) return;
    // What is owed goes to the primary at once, so every worker sees the key's budget shrink.
    if (this.#debt > 0) return this.#ask();
    const now = Date.now();
    // A key gone quiet is not topped up again (its lease was just handed back).
    if (now < this.#emptyUntil || now - this.#lastUsed >= idleReturnMs) return;
    const low = this.dimension === 'requests' ? this.#batch / 2 : this.#need;
    if (this.balance < low) this.#ask();
  }

  #ask(want = Math.max(this.#batch, this.#headNeed() - this.balance, this.dimension === 'requests' ? this.#waiters.length : 0)): void {
    this.#asking = true;
    this.#seq = this.asks.next();
    const debt = this.#debt;
    this.#debt = 0;
    this.asks.register(this.#seq, this);
    this.send({ type: 'llm-proxy:lease', seq: this.#seq, id: this.id, dimension: this.dimension, want, debt, estimate: this.#estimate });
    const seq = this.#seq;
    this.#askTimer = setTimeout(() => {
      if (seq !== this.#seq) return;
      // No answer: admit those waiting rather than hold them forever; the next ask tries again.
      // A grant that still comes is handed back (see onGrant).
      this.#settle();
      this.#seq = -1;
      this.asks.forget(seq);
      for (const waiter of this.#waiters.splice(0)) waiter.done(true, 0);
    }, askTimeoutMs);
    this.#askTimer.unref();
  }

  #settle(): void {
    this.#asking = false;
    clearTimeout(this.#askTimer);
  }

  #serveWaiters(now: number): void {
    for (let head = this.#waiters[0]; head !== undefined; head = this.#waiters[0]) {
      const taken = this.#tryAdmit(this.#needFor(head.request));
      if (taken === 0) break;
      this.#waiters.shift();
      head.done(true, taken);
    }
    if (this.#waiters.length > 0 && now < this.#emptyUntil) {
      // Those needing what the bucket cannot cover yet are refused; a smaller one behind them asks.
      const uncovered = (waiter: Waiter) => this.#needFor(waiter.request) >= this.#emptyNeed;
      const refused = this.#waiters.filter(uncovered);
      this.#waiters = this.#waiters.filter((waiter) => !uncovered(waiter));
      for (const waiter of refused) waiter.done(false, 0);
    }
    if (this.#asking) return;
    if (this.#waiters.length > 0) return this.#ask();
    this.#askAhead();
  }
}
