// The worker's side of the cluster-wide client-key limits (DESIGN 5). For each limited key it holds
// small leases of what the primary owns: of the key's request and token buckets (bucket-lease) and of
// its concurrency slots (slot-lease). A request is admitted from the leases without IPC in the common
// case; it waits for one round trip only when a lease has run dry and the primary has not said that
// the key is spent.
import type { PrimaryMessage } from '../shared/ipc.js';
import type { RateLimitSpec } from '../shared/snapshot.js';
import type { RequestTokens } from '../shared/usage/estimate.js';
import { Lease, type Asks, type Send } from './bucket-lease.js';
import type { OutgoingHeaders } from './downstream.js';
import { formatResetDuration } from './reset-duration.js';
import { SlotLease, type SlotAsks } from './slot-lease.js';

/** Why a request of a limited key was held back; `unavailable`: the shared store is out of reach. */
export type LimitReason = 'requests' | 'tokens' | 'concurrent' | 'unavailable';

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
  /** `request`: what is known of the request's tokens, which its tokens-per-minute reservation is made of. */
  admit(limit: RateLimitSpec, done: (result: AdmissionResult) => void, request?: RequestTokens): void;
  onGrant(message: Extract<PrimaryMessage, { type: 'llm-proxy:lease-grant' | 'llm-proxy:slot-grant' }>): void;
  /** The primary wants this worker's spare slots of a key back. */
  onRecall(id: string): void;
  /** A new snapshot: leases of keys it no longer limits (or limits differently) are handed back. */
  retainOnly(limits: readonly RateLimitSpec[]): void;
  /** Hands back every lease (the worker is draining). */
  returnAll(): void;
}

/** The local state of one limited key. */
class KeyLimiter {
  readonly requests: Lease | undefined;
  readonly tokens: Lease | undefined;
  readonly slots: SlotLease | undefined;
  /** `on_unavailable: reject` with the shared store out of reach: refused until then. */
  unavailableUntil = 0;

  constructor(
    readonly spec: RateLimitSpec,
    send: Send,
    asks: Asks,
    slotAsks: SlotAsks,
  ) {
    this.requests = spec.requestsPerMinute === undefined ? undefined : new Lease(spec.id, 'requests', spec.requestsPerMinute, send, asks);
    this.tokens = spec.tokensPerMinute === undefined ? undefined : new Lease(spec.id, 'tokens', spec.tokensPerMinute, send, asks);
    this.slots = spec.concurrent === undefined ? undefined : new SlotLease(spec.id, spec.concurrent, send, slotAsks);
  }

  returnIdle(now: number): void {
    this.requests?.returnIdle(now, false);
    this.tokens?.returnIdle(now, false);
    this.slots?.returnIdle(now, false);
  }

  close(now: number): void {
    for (const lease of [this.requests, this.tokens]) {
      if (lease === undefined) continue;
      lease.closed = true;
      lease.returnIdle(now, true);
    }
    this.slots?.returnIdle(now, true);
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
  const slotAsking = new Map<number, SlotLease>();
  let seq = 0;
  const nextSeq = () => (seq = (seq + 1) % Number.MAX_SAFE_INTEGER);
  const asks: Asks = { next: nextSeq, register: (askSeq, lease) => asking.set(askSeq, lease), forget: (askSeq) => asking.delete(askSeq) };
  const slotAsks: SlotAsks = {
    next: nextSeq,
    register: (askSeq, lease) => slotAsking.set(askSeq, lease),
    forget: (askSeq) => slotAsking.delete(askSeq),
  };

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const key of keys.values()) key.returnIdle(now);
  }, 1_000);
  sweep.unref();

  const keyFor = (spec: RateLimitSpec): KeyLimiter => {
    let key = keys.get(spec.id);
    if (key === undefined || !sameSpec(key.spec, spec)) {
      key?.close(Date.now());
      key = new KeyLimiter(spec, send, asks, slotAsks);
      keys.set(spec.id, key);
    }
    return key;
  };

  const refuse = (key: KeyLimiter, reason: LimitReason, lease: Lease | undefined, done: (result: AdmissionResult) => void) => {
    const now = Date.now();
    const retryAfterMs = reason === 'unavailable' ? key.unavailableUntil - now : lease === undefined ? 1000 : lease.retryAfterMs(now);
    done({ ok: false, reason, retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)), headers: key.headers(now) });
  };

  return {
    admit(spec, done, request) {
      const key = keyFor(spec);
      const now = Date.now();
      if (now < key.unavailableUntil) return refuse(key, 'unavailable', undefined, done);
      let reservedTokens = 0;
      let takenRequest = 0;
      const admitted = (slots: SlotLease | undefined) => {
        let released = false;
        const admission: Admission = {
          headers: key.headers(Date.now()),
          release(tokens) {
            if (released) return;
            released = true;
            key.tokens?.settle(reservedTokens, tokens);
            slots?.free();
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
        const slots = key.slots;
        if (slots === undefined) return admitted(undefined);
        slots.admit(Date.now(), (answer, held) => {
          if (answer === 'granted') return admitted(held ? slots : undefined);
          refundAll();
          if (answer === 'unavailable') key.unavailableUntil = Math.max(key.unavailableUntil, Date.now() + 1000);
          refuse(key, answer === 'unavailable' ? 'unavailable' : 'concurrent', undefined, done);
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
          refuse(key, Date.now() < key.unavailableUntil ? 'unavailable' : 'requests', key.requests, done);
        });
      };
      if (key.tokens === undefined) return requests();
      key.tokens.admit(now, (ok, taken) => {
        if (!ok) return refuse(key, Date.now() < key.unavailableUntil ? 'unavailable' : 'tokens', key.tokens, done);
        reservedTokens = taken;
        requests();
      }, request);
    },
    onGrant(message) {
      if (message.type === 'llm-proxy:slot-grant') {
        const lease = slotAsking.get(message.seq);
        slotAsking.delete(message.seq);
        const used = lease?.onGrant(message.seq, message.granted, message.unavailableMs) === true;
        // Nobody waits for these any more (the ask timed out, or the key's limits changed).
        if (!used && message.granted > 0) send({ type: 'llm-proxy:slot-return', id: message.id, amount: message.granted, recalled: false });
        return;
      }
      if (message.unavailableMs > 0) {
        const key = keys.get(message.id);
        if (key !== undefined) key.unavailableUntil = Date.now() + message.unavailableMs;
      }
      const lease = asking.get(message.seq);
      asking.delete(message.seq);
      const used = lease?.onGrant(message.seq, message.granted, message.level, message.retryAfterMs, message.estimate) === true;
      // Nobody waits for it any more (the ask timed out, or the key's limits changed): back it goes.
      if (!used && message.granted > 0 && message.level !== Number.MAX_SAFE_INTEGER) {
        send({ type: 'llm-proxy:lease-return', id: message.id, dimension: message.dimension, amount: message.granted });
      }
    },
    onRecall(id) {
      const slots = keys.get(id)?.slots;
      if (slots === undefined) send({ type: 'llm-proxy:slot-return', id, amount: 0, recalled: true });
      else slots.recall();
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
