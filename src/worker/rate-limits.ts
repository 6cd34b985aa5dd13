// The worker's side of the cluster-wide client-key limits (DESIGN 5). For each limited key it holds
// small leases of the key's request and token buckets, which the primary owns: a request is admitted
// from the lease, and the worker asks for more before the lease runs dry, so in the common case no
// request waits on IPC. A request waits (for one round trip) only when its lease is empty and the
// primary has not said the bucket is; once it has, the worker refuses locally until the time it gave.
// Concurrency is a count the whole cluster shares, so each request of a key with `concurrent` takes
// a slot from the primary (one round trip, next to a generation that lasts seconds) and frees it at
// its end.
import type { LimitDimension, PrimaryMessage, WorkerMessage } from '../shared/ipc.js';
import type { RateLimitSpec } from '../shared/snapshot.js';
import type { OutgoingHeaders } from './downstream.js';

export type LimitReason = 'requests' | 'tokens' | 'concurrent';

export interface Admission {
  /** x-ratelimit-* headers, sent on every response of a limited key. */
  readonly headers: OutgoingHeaders;
  /** The exchange ended: charges the tokens its response reported and frees its slot. */
  release(tokens: number): void;
}

export type AdmissionResult =
  | { readonly ok: true; readonly admission: Admission }
  | { readonly ok: false; readonly reason: LimitReason; readonly retryAfterS: number; readonly headers: OutgoingHeaders };

export interface WorkerRateLimits {
  /** Calls back at once in the common case, after one IPC round trip otherwise. */
  admit(limit: RateLimitSpec, done: (result: AdmissionResult) => void): void;
  onGrant(message: Extract<PrimaryMessage, { type: 'llm-proxy:lease-grant' | 'llm-proxy:slot-grant' }>): void;
  /** A new snapshot: leases of keys it no longer limits (or limits differently) are handed back. */
  retainOnly(limits: readonly RateLimitSpec[]): void;
  /** Hands back every lease (the worker is draining). */
  returnAll(): void;
}

type Send = (message: WorkerMessage) => void;

/** Sent when an ask gets no answer (the primary is busy or gone): better to admit than to hang. */
const askTimeoutMs = 2_000;
/** A lease unused this long goes back to the primary, where other workers can have it. */
const idleReturnMs = 2_000;

/** OpenAI's x-ratelimit-reset-* style: `20ms`, `1.5s`, `6m0s`, `1h2m3s`. */
export function formatResetDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const totalSeconds = Math.round(ms) / 1000;
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = Number((totalSeconds % 60).toFixed(3));
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** A worker's lease of one bucket (requests or tokens) of one key. */
class Lease {
  balance = 0;
  /** Tokens spent beyond the lease, owed to the primary's bucket with the next ask. */
  #debt = 0;
  #asking = false;
  #askTimer: NodeJS.Timeout | undefined;
  #seq = -1;
  /** The primary said the bucket is empty until then: refuse without asking. */
  #emptyUntil = 0;
  #waiters: ((ok: boolean) => void)[] = [];
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
    readonly nextSeq: () => number,
  ) {
    this.#remoteLevel = limit;
    // A hundredth of the limit per ask: few asks, and little held by a worker that goes quiet.
    this.#batch = Math.max(1, Math.floor(limit / 100));
  }

  /** What admitting one request needs in the lease. */
  get #need(): number {
    return this.dimension === 'requests' ? 1 : Math.max(1, Math.min(Math.max(this.#estimate, this.#remoteEstimate), this.limit));
  }

  admit(now: number, done: (ok: boolean) => void): void {
    this.#lastUsed = now;
    if (this.#waiters.length === 0 && this.#tryAdmit()) {
      this.#askAhead();
      return done(true);
    }
    if (now < this.#emptyUntil) return done(false);
    this.#waiters.push(done);
    if (!this.#asking) this.#ask();
  }

  /** Tokens a response reported; the lease may go below zero, which the next ask settles. */
  charge(tokens: number): void {
    if (tokens <= 0) return;
    this.#estimate = Math.max(1, Math.round(this.#estimate === 0 ? tokens : 0.7 * this.#estimate + 0.3 * tokens));
    this.balance -= tokens;
    if (this.balance < 0) {
      this.#debt -= this.balance;
      this.balance = 0;
    }
    this.#askAhead();
  }

  onGrant(seq: number, granted: number, level: number, retryAfterMs: number, estimate: number): void {
    if (seq !== this.#seq) return;
    this.#settle();
    const now = Date.now();
    this.balance += granted;
    this.#remoteLevel = level;
    this.#remoteAt = now;
    this.#remoteEstimate = estimate;
    // Until the bucket can cover what one request needs, every request here is refused without asking.
    const short = this.#need - this.balance - Math.max(0, level);
    const untilNeed = short > 0 ? Math.ceil((short * 60_000) / this.limit) : 0;
    const waitMs = Math.max(retryAfterMs, this.balance >= this.#need ? 0 : untilNeed);
    this.#emptyUntil = waitMs > 0 ? now + waitMs : 0;
    this.#serveWaiters(now);
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

  #tryAdmit(): boolean {
    if (this.balance < this.#need) return false;
    if (this.dimension === 'requests') this.balance -= 1;
    return true;
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

  #ask(want = Math.max(this.#batch, this.#need - this.balance, this.dimension === 'requests' ? this.#waiters.length : 0)): void {
    this.#asking = true;
    this.#seq = this.nextSeq();
    const debt = this.#debt;
    this.#debt = 0;
    this.send({ type: 'llm-proxy:lease', seq: this.#seq, id: this.id, dimension: this.dimension, want, debt, estimate: this.#estimate });
    const seq = this.#seq;
    this.#askTimer = setTimeout(() => {
      if (seq !== this.#seq) return;
      // No answer: admit those waiting rather than hold them forever; the next ask tries again.
      this.#settle();
      this.#seq = -1;
      for (const waiter of this.#waiters.splice(0)) waiter(true);
    }, askTimeoutMs);
    this.#askTimer.unref();
  }

  #settle(): void {
    this.#asking = false;
    clearTimeout(this.#askTimer);
  }

  #serveWaiters(now: number): void {
    while (this.#waiters.length > 0 && this.#tryAdmit()) (this.#waiters.shift() as (ok: boolean) => void)(true);
    if (this.#waiters.length > 0) {
      if (now < this.#emptyUntil) {
        for (const waiter of this.#waiters.splice(0)) waiter(false);
        return;
      }
      return this.#ask();
    }
    this.#askAhead();
  }
}

/** The local state of one limited key. */
class KeyLimiter {
  readonly requests: Lease | undefined;
  readonly tokens: Lease | undefined;

  constructor(
    readonly spec: RateLimitSpec,
    send: Send,
    nextSeq: () => number,
  ) {
    this.requests = spec.requestsPerMinute === undefined ? undefined : new Lease(spec.id, 'requests', spec.requestsPerMinute, send, nextSeq);
    this.tokens = spec.tokensPerMinute === undefined ? undefined : new Lease(spec.id, 'tokens', spec.tokensPerMinute, send, nextSeq);
  }

  headers(now: number): OutgoingHeaders {
    const headers: OutgoingHeaders = {};
    for (const lease of [this.requests, this.tokens]) {
      if (lease === undefined) continue;
      headers[`x-ratelimit-limit-${lease.dimension}`] = String(lease.limit);
      headers[`x-ratelimit-remaining-${lease.dimension}`] = String(lease.remaining(now));
      headers[`x-ratelimit-reset-${lease.dimension}`] = formatResetDuration(lease.resetMs(now));
    }
    return headers;
  }
}

function sameSpec(a: RateLimitSpec, b: RateLimitSpec): boolean {
  return a.requestsPerMinute === b.requestsPerMinute && a.tokensPerMinute === b.tokensPerMinute && a.concurrent === b.concurrent;
}

export function createWorkerRateLimits(send: Send): WorkerRateLimits {
  const keys = new Map<string, KeyLimiter>();
  const slotWaiters = new Map<number, (granted: boolean) => void>();
  let seq = 0;
  const nextSeq = () => (seq = (seq + 1) % Number.MAX_SAFE_INTEGER);

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const key of keys.values()) {
      key.requests?.returnIdle(now, false);
      key.tokens?.returnIdle(now, false);
    }
  }, 1_000);
  sweep.unref();

  const keyFor = (spec: RateLimitSpec): KeyLimiter => {
    let key = keys.get(spec.id);
    if (key === undefined || !sameSpec(key.spec, spec)) {
      key = new KeyLimiter(spec, send, nextSeq);
      keys.set(spec.id, key);
    }
    return key;
  };

  const refuse = (key: KeyLimiter, reason: LimitReason, lease: Lease | undefined, done: (result: AdmissionResult) => void) => {
    const now = Date.now();
    const retryAfterMs = lease === undefined ? 1000 : lease.retryAfterMs(now);
    done({ ok: false, reason, retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)), headers: key.headers(now) });
  };

  const acquireSlot = (id: string, done: (granted: boolean) => void) => {
    const slotSeq = nextSeq();
    const timer = setTimeout(() => {
      if (slotWaiters.delete(slotSeq)) done(true);
    }, askTimeoutMs);
    timer.unref();
    slotWaiters.set(slotSeq, (granted) => {
      clearTimeout(timer);
      done(granted);
    });
    send({ type: 'llm-proxy:slot', seq: slotSeq, id });
  };

  return {
    admit(spec, done) {
      const key = keyFor(spec);
      const now = Date.now();
      const admitted = () => {
        let released = false;
        const admission: Admission = {
          headers: key.headers(Date.now()),
          release(tokens) {
            if (released) return;
            released = true;
            key.tokens?.charge(tokens);
            if (spec.concurrent !== undefined) send({ type: 'llm-proxy:slot-release', id: spec.id });
          },
        };
        done({ ok: true, admission });
      };
      const concurrency = () => {
        if (spec.concurrent === undefined) return admitted();
        acquireSlot(spec.id, (granted) => (granted ? admitted() : refuse(key, 'concurrent', undefined, done)));
      };
      const requests = () => {
        if (key.requests === undefined) return concurrency();
        key.requests.admit(now, (ok) => (ok ? concurrency() : refuse(key, 'requests', key.requests, done)));
      };
      if (key.tokens === undefined) return requests();
      key.tokens.admit(now, (ok) => (ok ? requests() : refuse(key, 'tokens', key.tokens, done)));
    },
    onGrant(message) {
      if (message.type === 'llm-proxy:slot-grant') {
        const waiter = slotWaiters.get(message.seq);
        slotWaiters.delete(message.seq);
        waiter?.(message.granted);
        return;
      }
      const key = keys.get(message.id);
      const lease = message.dimension === 'requests' ? key?.requests : key?.tokens;
      lease?.onGrant(message.seq, message.granted, message.level, message.retryAfterMs, message.estimate);
    },
    retainOnly(limits) {
      const wanted = new Map(limits.map((spec) => [spec.id, spec]));
      const now = Date.now();
      for (const [id, key] of keys) {
        const spec = wanted.get(id);
        if (spec !== undefined && sameSpec(spec, key.spec)) continue;
        key.requests?.returnIdle(now, true);
        key.tokens?.returnIdle(now, true);
        keys.delete(id);
      }
    },
    returnAll() {
      const now = Date.now();
      for (const key of keys.values()) {
        key.requests?.returnIdle(now, true);
        key.tokens?.returnIdle(now, true);
      }
    },
  };
}
