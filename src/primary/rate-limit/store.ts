// Where the cluster's rate-limit state lives. The primary talks to it through this interface only,
// and every call may be asynchronous, so that a deployment of several proxies can keep the buckets
// in a shared store (Redis, redis-store.ts) while one proxy needs nothing: the embedded store below is
// the default, and the fallback of a shared one that is out of reach.
import type { LimitDimension } from '../../shared/ipc.js';
import type { RateLimitSpec } from '../../shared/snapshot.js';
import { TokenBucket } from './token-bucket.js';

export interface Grant {
  granted: number;
  /** The bucket's level after the grant (below zero after a large charge). */
  level: number;
  /** When less than wanted was granted: how long until `want` tokens are there. */
  retryAfterMs: number;
  /** The latest estimate of what one request of the key costs (0: none yet). */
  estimate: number;
  /** > 0: the shared store is out of reach and limited keys are refused that long (`on_unavailable: reject`). */
  unavailableMs: number;
}

export interface SlotGrant {
  granted: number;
  /** As in Grant. */
  unavailableMs: number;
  /** Slots of the key held by other instances of a shared store: asking them for spares may help. */
  heldElsewhere: number;
}

/** Where the limits live, for /status. */
export interface StoreStatus {
  kind: 'memory' | 'redis';
  /** redis: `shared` while Redis answers, else the fallback in force (`local` or `reject`). */
  state: 'local' | 'shared' | 'reject';
  [detail: string]: unknown;
}

/** A grant that holds nothing back: for keys no longer limited, and when a store fails. */
export const unlimitedGrant = (want: number): Grant => ({ granted: want, level: Number.MAX_SAFE_INTEGER, retryAfterMs: 0, estimate: 0, unavailableMs: 0 });

export interface KeyLimitState {
  id: string;
  label: string;
  requests: { limit: number; remaining: number; resetMs: number } | undefined;
  tokens: { limit: number; remaining: number; resetMs: number } | undefined;
  concurrent: { limit: number; inFlight: number } | undefined;
}

export interface RateLimitStore {
  /**
   * Takes a config's limits: new keys start with full buckets, keys whose values changed keep their
   * state adjusted to the new values, keys no longer limited are dropped.
   */
  configure(limits: readonly RateLimitSpec[]): Promise<void>;
  /** Charges `debt` (the level may go below zero), then takes up to `want`; keeps `estimate` if > 0. */
  take(id: string, dimension: LimitDimension, want: number, debt: number, estimate: number): Promise<Grant>;
  /** Hands back what a lease did not use. */
  give(id: string, dimension: LimitDimension, amount: number): Promise<void>;
  /** Up to `want` more concurrency slots for `holder` (a worker), as many as the key's limit allows. */
  acquireSlots(id: string, holder: string, want: number): Promise<SlotGrant>;
  releaseSlots(id: string, holder: string, amount: number): Promise<void>;
  /** A holder is gone (its worker died): every slot it held is free again. */
  releaseHolder(holder: string): Promise<void>;
  /**
   * Asks the other instances sharing the store for the spare slots of `id` they hold; resolves when
   * it is worth asking again. `onRecall` hears such asks from the others.
   */
  recallElsewhere(id: string): Promise<void>;
  onRecall(handler: (id: string) => void): void;
  /** For /status. */
  states(): Promise<KeyLimitState[]>;
  status(): StoreStatus;
  close(): Promise<void>;
}

interface KeyState {
  spec: RateLimitSpec;
  requests: TokenBucket | undefined;
  tokens: TokenBucket | undefined;
  slotsByHolder: Map<string, number>;
  inFlight: number;
  estimate: number;
}

function resized(bucket: TokenBucket | undefined, capacity: number | undefined, now: number): TokenBucket | undefined {
  if (capacity === undefined) return undefined;
  if (bucket === undefined) return new TokenBucket(capacity, now);
  if (bucket.capacity !== capacity) bucket.resize(capacity, now);
  return bucket;
}

function bucketState(bucket: TokenBucket | undefined, now: number): KeyLimitState['requests'] {
  if (bucket === undefined) return undefined;
  return { limit: bucket.capacity, remaining: Math.max(0, Math.floor(bucket.level(now))), resetMs: bucket.msUntilFull(now) };
}

/** The embedded store: the primary's own memory, which is the cluster's single point of truth. */
export function createMemoryStore(clock: () => number = Date.now): RateLimitStore {
  const keys = new Map<string, KeyState>();

  const bucket = (id: string, dimension: LimitDimension): TokenBucket | undefined => keys.get(id)?.[dimension];

  return {
    async configure(limits) {
      const now = clock();
      const wanted = new Set(limits.map((spec) => spec.id));
      for (const id of keys.keys()) if (!wanted.has(id)) keys.delete(id);
      for (const spec of limits) {
        const state = keys.get(spec.id) ?? { spec, requests: undefined, tokens: undefined, slotsByHolder: new Map(), inFlight: 0, estimate: 0 };
        state.spec = spec;
        state.requests = resized(state.requests, spec.requestsPerMinute, now);
        state.tokens = resized(state.tokens, spec.tokensPerMinute, now);
        keys.set(spec.id, state);
      }
    },
    async take(id, dimension, want, debt, estimate) {
      const state = keys.get(id);
      const found = state?.[dimension];
      // A key the config no longer limits: nothing to hold back.
      if (state === undefined || found === undefined) return unlimitedGrant(want);
      const now = clock();
      if (debt > 0) found.charge(debt, now);
      if (estimate > 0) state.estimate = estimate;
      const granted = found.take(want, now);
      return { granted, level: found.level(now), retryAfterMs: granted >= want ? 0 : found.msUntil(want - granted, now), estimate: state.estimate, unavailableMs: 0 };
    },
    async give(id, dimension, amount) {
      bucket(id, dimension)?.give(amount, clock());
    },
    async acquireSlots(id, holder, want) {
      const state = keys.get(id);
      const limit = state?.spec.concurrent;
      if (state === undefined || limit === undefined) return { granted: want, unavailableMs: 0, heldElsewhere: 0 };
      const granted = Math.max(0, Math.min(want, limit - state.inFlight));
      if (granted > 0) {
        state.inFlight += granted;
        state.slotsByHolder.set(holder, (state.slotsByHolder.get(holder) ?? 0) + granted);
      }
      return { granted, unavailableMs: 0, heldElsewhere: 0 };
    },
    async releaseSlots(id, holder, amount) {
      const state = keys.get(id);
      const held = state?.slotsByHolder.get(holder) ?? 0;
      if (state === undefined || held === 0) return;
      const freed = Math.min(held, amount);
      state.inFlight -= freed;
      if (held === freed) state.slotsByHolder.delete(holder);
      else state.slotsByHolder.set(holder, held - freed);
    },
    async releaseHolder(holder) {
      for (const state of keys.values()) {
        state.inFlight -= state.slotsByHolder.get(holder) ?? 0;
        state.slotsByHolder.delete(holder);
      }
    },
    async recallElsewhere() {},
    onRecall() {},
    status: () => ({ kind: 'memory', state: 'local' }),
    async close() {},
    async states() {
      const now = clock();
      return [...keys.values()].map((state) => ({
        id: state.spec.id,
        label: state.spec.label,
        requests: bucketState(state.requests, now),
        tokens: bucketState(state.tokens, now),
        concurrent: state.spec.concurrent === undefined ? undefined : { limit: state.spec.concurrent, inFlight: state.inFlight },
      }));
    },
  };
}
