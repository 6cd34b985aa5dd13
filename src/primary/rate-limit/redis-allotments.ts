// What an instance holds of its keys' Redis buckets beyond what it leased to its workers. It takes
// from Redis a fiftieth of the limit at a time (at least what an ask needs) and serves its workers'
// lease asks from that; what sits unused for 2 s goes back, as does whatever a worker hands back
// beyond one allotment. Tokens charged after the fact are sent to Redis with the next call, or by the
// sweep within half a second, so every instance sees the budget shrink.
import type { LimitDimension } from '../../shared/ipc.js';
import { bucketKey, numbers, type LimitScripts } from '../shared-store/scripts.js';
import type { Grant } from './store.js';

interface Allotment {
  readonly key: string;
  capacity: number;
  balance: number;
  /** Spent beyond leases (tokens reported after the fact), owed to Redis. */
  debt: number;
  /** The latest per-request estimate heard from a worker, not yet sent to Redis. */
  estimateToSend: number;
  /** Redis's answers at the last call. */
  level: number;
  retryAfterMs: number;
  estimate: number;
  fetching: Promise<void> | undefined;
  lastUsed: number;
}

export interface RedisAllotments {
  take(id: string, dimension: LimitDimension, capacity: number, want: number, debt: number, estimate: number): Promise<Grant>;
  /** Takes back what a worker did not use; false when there is no allotment of it (nothing taken). */
  give(id: string, dimension: LimitDimension, amount: number): Promise<boolean>;
  /** Pays debts and hands back allotments idle for 2 s. */
  sweep(now: number): void;
  retainOnly(ids: ReadonlySet<string>): void;
  /** Redis went away: what was allotted is forgotten (its bucket refills there meanwhile). */
  clear(): void;
  /** Hands every allotment back (a clean stop). */
  returnAll(): Promise<unknown>[];
}

/** An instance's allotment: a fiftieth of the limit. */
export const allotmentOf = (capacity: number) => Math.max(1, Math.ceil(capacity / 50));
const idleReturnMs = 2_000;
/** A bucket hash lives at least this long in Redis (and until it would be full again). */
const bucketTtlMs = 120_000;

export function createRedisAllotments(scripts: LimitScripts, prefix: string, failed: (err: unknown) => void): RedisAllotments {
  const allotments = new Map<string, Allotment & { id: string }>();

  const fetch = (allotment: Allotment, want: number, need: number): Promise<void> => {
    const debt = allotment.debt;
    const estimate = allotment.estimateToSend;
    allotment.debt = 0;
    allotment.estimateToSend = 0;
    allotment.fetching = scripts
      .llmProxyTake(allotment.key, allotment.capacity, want, debt, estimate, need, bucketTtlMs)
      .then((reply) => {
        const [granted, level, retryAfterMs, sharedEstimate] = numbers(reply, 4) as [number, number, number, number];
        allotment.balance += granted;
        allotment.level = level;
        allotment.retryAfterMs = retryAfterMs;
        allotment.estimate = sharedEstimate;
      })
      .catch((err: unknown) => {
        allotment.debt += debt;
        if (allotment.estimateToSend === 0) allotment.estimateToSend = estimate;
        throw err;
      })
      .finally(() => {
        allotment.fetching = undefined;
      });
    return allotment.fetching;
  };

  const allotmentFor = (id: string, dimension: LimitDimension, capacity: number): Allotment => {
    const name = `${id}:${dimension}`;
    let allotment = allotments.get(name);
    if (allotment === undefined) {
      allotment = {
        id,
        key: bucketKey(prefix, id, dimension),
        capacity,
        balance: 0,
        debt: 0,
        estimateToSend: 0,
        level: capacity,
        retryAfterMs: 0,
        estimate: 0,
        fetching: undefined,
        lastUsed: 0,
      };
      allotments.set(name, allotment);
    }
    allotment.capacity = capacity;
    return allotment;
  };

  const giveBack = (allotment: Allotment, amount: number) => scripts.llmProxyGive(allotment.key, allotment.capacity, amount);

  return {
    async take(id, dimension, capacity, want, debt, estimate) {
      const allotment = allotmentFor(id, dimension, capacity);
      allotment.debt += debt;
      if (estimate > 0) allotment.estimateToSend = estimate;
      allotment.lastUsed = Date.now();
      const batch = allotmentOf(capacity);
      while (allotment.fetching !== undefined) await allotment.fetching;
      // What is owed goes to Redis with the ask, so every instance sees the budget shrink at once.
      if (allotment.balance < want || allotment.debt > 0) await fetch(allotment, Math.max(0, want - allotment.balance) + batch, want - allotment.balance);
      const granted = Math.min(want, allotment.balance);
      allotment.balance -= granted;
      // Asked ahead, so the next ask finds it here; not while Redis says the bucket is short.
      if (allotment.balance < batch / 2 && allotment.retryAfterMs === 0 && allotment.fetching === undefined) fetch(allotment, batch, 0).catch(failed);
      return {
        granted,
        level: allotment.level + allotment.balance,
        retryAfterMs: granted >= want ? 0 : allotment.retryAfterMs,
        estimate: allotment.estimate,
        unavailableMs: 0,
      };
    },
    async give(id, dimension, amount) {
      const allotment = allotments.get(`${id}:${dimension}`);
      if (allotment === undefined) return false;
      allotment.balance += amount;
      // A worker hands back what it did not use: beyond one allotment, the other instances may need it.
      const excess = allotment.balance - allotmentOf(allotment.capacity);
      if (excess > 0) {
        allotment.balance -= excess;
        await giveBack(allotment, excess).catch(failed);
      }
      return true;
    },
    sweep(now) {
      for (const allotment of allotments.values()) {
        if (allotment.fetching !== undefined) continue;
        if (allotment.debt > 0) {
          fetch(allotment, 0, 0).catch(failed);
        } else if (allotment.balance > 0 && now - allotment.lastUsed >= idleReturnMs) {
          const amount = allotment.balance;
          allotment.balance = 0;
          giveBack(allotment, amount).catch(failed);
        }
      }
    },
    retainOnly(ids) {
      for (const [name, allotment] of allotments) if (!ids.has(allotment.id)) allotments.delete(name);
    },
    clear: () => allotments.clear(),
    returnAll() {
      const pending: Promise<unknown>[] = [];
      for (const allotment of allotments.values()) if (allotment.balance > 0) pending.push(giveBack(allotment, allotment.balance));
      return pending;
    },
  };
}
