// The worker's side of the cluster-wide client-key limits (DESIGN 5). For each limited key it holds
// small leases of the key's request and token buckets, which the primary owns: a request is admitted
// from the lease, and the worker asks for more before the lease runs dry, so in the common case no
// request waits on IPC. A request waits (for one round trip) only when its lease is empty and the
// primary has not said the bucket is; once it has, the worker refuses locally until the time it gave.
// Concurrency is a count the whole cluster shares, so each request of a key with `concurrent` takes
// a slot from the primary (one round trip, next to a generation that lasts seconds) and frees it at
// its end.
import type { PrimaryMessage } from '../shared/ipc.js';
import type { RateLimitSpec } from '../shared/snapshot.js';
import { askTimeoutMs, Lease, type Asks, type Send } from './bucket-lease.js';
import type { OutgoingHeaders } from './downstream.js';
import { formatResetDuration } from './reset-duration.js';

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

/** The local state of one limited key. */
class KeyLimiter {
  readonly requests: Lease | undefined;
  readonly tokens: Lease | undefined;

  constructor(
    readonly spec: RateLimitSpec,
    send: Send,
    asks: Asks,
  ) {
    this.requests = spec.requestsPerMinute === undefined ? undefined : new Lease(spec.id, 'requests', spec.requestsPerMinute, send, asks);
    this.tokens = spec.tokensPerMinute === undefined ? undefined : new Lease(spec.id, 'tokens', spec.tokensPerMinute, send, asks);
  }

  close(now: number): void {
    for (const lease of [this.requests, this.tokens]) {
      if (lease === undefined) continue;
      lease.closed = true;
      lease.returnIdle(now, true);
    }
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
  /** Asks out, by seq: a grant goes to the lease that asked, or back to the primary. */
  const asking = new Map<number, Lease>();
  const slotWaiters = new Map<number, (granted: boolean) => void>();
  let seq = 0;
  const nextSeq = () => (seq = (seq + 1) % Number.MAX_SAFE_INTEGER);
  const asks: Asks = { next: nextSeq, register: (askSeq, lease) => asking.set(askSeq, lease) };

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
      key?.close(Date.now());
      key = new KeyLimiter(spec, send, asks);
      keys.set(spec.id, key);
    }
    return key;
  };

  const refuse = (key: KeyLimiter, reason: LimitReason, lease: Lease | undefined, done: (result: AdmissionResult) => void) => {
    const now = Date.now();
    const retryAfterMs = lease === undefined ? 1000 : lease.retryAfterMs(now);
    done({ ok: false, reason, retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)), headers: key.headers(now) });
  };

  /** `held`: the primary counted a slot for this request (false when admitted on a timeout). */
  const acquireSlot = (id: string, done: (granted: boolean, held: boolean) => void) => {
    const slotSeq = nextSeq();
    let timedOut = false;
    const timer = setTimeout(() => {
      // No answer in time: admit without a slot; a late grant is freed at once (see below).
      timedOut = true;
      done(true, false);
    }, askTimeoutMs);
    timer.unref();
    slotWaiters.set(slotSeq, (granted) => {
      clearTimeout(timer);
      if (!timedOut) return done(granted, granted);
      if (granted) send({ type: 'llm-proxy:slot-release', id });
    });
    send({ type: 'llm-proxy:slot', seq: slotSeq, id });
  };

  return {
    admit(spec, done) {
      const key = keyFor(spec);
      const now = Date.now();
      let reservedTokens = 0;
      let takenRequest = 0;
      const admitted = (slotHeld: boolean) => {
        let released = false;
        const admission: Admission = {
          headers: key.headers(Date.now()),
          release(tokens) {
            if (released) return;
            released = true;
            key.tokens?.settle(reservedTokens, tokens);
            if (slotHeld) send({ type: 'llm-proxy:slot-release', id: spec.id });
          },
        };
        done({ ok: true, admission });
      };
      // What a request refused by a later limit took from the earlier ones goes back.
      const refundAll = () => {
        key.tokens?.refund(reservedTokens);
        key.requests?.refund(takenRequest);
      };
      const concurrency = () => {
        if (spec.concurrent === undefined) return admitted(false);
        acquireSlot(spec.id, (granted, held) => {
          if (granted) return admitted(held);
          refundAll();
          refuse(key, 'concurrent', undefined, done);
        });
      };
      const requests = () => {
        if (key.requests === undefined) return concurrency();
        key.requests.admit(now, (ok, taken) => {
          if (ok) {
            takenRequest = taken;
            return concurrency();
          }
          refundAll();
          refuse(key, 'requests', key.requests, done);
        });
      };
      if (key.tokens === undefined) return requests();
      key.tokens.admit(now, (ok, taken) => {
        if (!ok) return refuse(key, 'tokens', key.tokens, done);
        reservedTokens = taken;
        requests();
      });
    },
    onGrant(message) {
      if (message.type === 'llm-proxy:slot-grant') {
        const waiter = slotWaiters.get(message.seq);
        slotWaiters.delete(message.seq);
        waiter?.(message.granted);
        return;
      }
      const lease = asking.get(message.seq);
      asking.delete(message.seq);
      const used = lease?.onGrant(message.seq, message.granted, message.level, message.retryAfterMs, message.estimate) === true;
      // Nobody waits for it any more (the ask timed out, or the key's limits changed): back it goes.
      if (!used && message.granted > 0 && message.level !== Number.MAX_SAFE_INTEGER) {
        send({ type: 'llm-proxy:lease-return', id: message.id, dimension: message.dimension, amount: message.granted });
      }
    },
    retainOnly(limits) {
      const wanted = new Map(limits.map((spec) => [spec.id, spec]));
      const now = Date.now();
      for (const [id, key] of keys) {
        const spec = wanted.get(id);
        if (spec !== undefined && sameSpec(spec, key.spec)) continue;
        key.close(now);
        keys.delete(id);
      }
    },
    returnAll() {
      const now = Date.now();
      for (const key of keys.values()) key.close(now);
    },
  };
}
