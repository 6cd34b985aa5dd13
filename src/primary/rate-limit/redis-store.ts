// The rate-limit store of several instances sharing one Redis. Requests and tokens are served from
// allotments the instance takes from Redis (redis-allotments.ts), so Redis hears from an instance
// about once per allotment, never per request. Concurrency slots are held in Redis per instance with
// a ttl the instance renews, so the slots of an instance that died come back by themselves.
//
// Redis out of reach: the instance goes on with its own memory store (`local`: each instance
// enforces every limit by itself) or refuses limited keys (`reject`), and resyncs when Redis is back.
import type { LimitDimension } from '../../shared/ipc.js';
import type { Logger } from '../../shared/log.js';
import type { RateLimitSpec } from '../../shared/snapshot.js';
import type { SharedStoreConnection } from '../shared-store/connection.js';
import { redactStoreUrl } from '../shared-store/connection.js';
import { bucketKey, defineLimitScripts, numbers, slotKeys } from '../shared-store/scripts.js';
import { createRedisAllotments } from './redis-allotments.js';
import { createMemoryStore, unlimitedGrant, type Grant, type KeyLimitState, type RateLimitStore, type SlotGrant } from './store.js';

export interface RedisStoreOptions {
  connection: SharedStoreConnection;
  onUnavailable: 'local' | 'reject';
  url: string;
  /** Slots an instance holds live this long in Redis unless renewed (`shared_store.slot_ttl`). */
  slotTtlMs: number;
  log: Logger;
}

/** `reject`: how long limited keys are refused before a worker asks again. */
const rejectRetryMs = 2_000;
/** How long an ask for slots waits after asking the other instances for their spares. */
const recallWaitMs = 60;

const capacityOf = (spec: RateLimitSpec, dimension: LimitDimension) => (dimension === 'requests' ? spec.requestsPerMinute : spec.tokensPerMinute);

export function createRedisStore({ connection, onUnavailable, url, slotTtlMs, log }: RedisStoreOptions): RateLimitStore {
  // Three renewals a ttl: one lost or late renewal never drops a live instance's slots.
  const renewEveryMs = Math.max(250, Math.floor(slotTtlMs / 3));
  const scripts = defineLimitScripts(connection.client);
  const { prefix, instanceId } = connection;
  const local = createMemoryStore();
  let specs = new Map<string, RateLimitSpec>();
  /** Slots this instance holds, by key id and holder (worker): Redis counts their sum. */
  const slots = new Map<string, Map<string, number>>();
  const recallHandlers: ((id: string) => void)[] = [];

  const shared = () => connection.availability() === 'up';
  const failed = (err: unknown) => connection.commandFailed(err);
  const rejected = (): Grant => ({ granted: 0, level: 0, retryAfterMs: rejectRetryMs, estimate: 0, unavailableMs: rejectRetryMs });

  const heldHere = (id: string): number => {
    let total = 0;
    for (const count of slots.get(id)?.values() ?? []) total += count;
    return total;
  };
  const countSlot = (id: string, holder: string, delta: number): number => {
    let holders = slots.get(id);
    if (holders === undefined) {
      holders = new Map();
      slots.set(id, holders);
    }
    const before = holders.get(holder) ?? 0;
    const after = Math.max(0, before + delta);
    if (after === 0) holders.delete(holder);
    else holders.set(holder, after);
    if (holders.size === 0) slots.delete(id);
    return after - before;
  };

  const allotments = createRedisAllotments(scripts, prefix, failed);
  const sweeper = setInterval(() => {
    if (shared()) allotments.sweep(Date.now());
  }, 500);
  sweeper.unref();

  const setSlots = (id: string) => {
    const [hash, expiry] = slotKeys(prefix, id);
    return scripts.llmProxySetSlots(hash, expiry, instanceId, heldHere(id), slotTtlMs);
  };
  const renewer = setInterval(() => {
    if (!shared()) return;
    for (const id of slots.keys()) setSlots(id).catch(failed);
  }, renewEveryMs);
  renewer.unref();

  connection.onAvailability((availability) => {
    if (availability === 'down') {
      // What was allotted from Redis is forgotten (its bucket refills meanwhile); slots stay counted here.
      allotments.clear();
      return;
    }
    if (availability !== 'up') return;
    // Redis may have restarted empty, or dropped this instance's slots during a long outage:
    // tell it what is held now, and clear what is not.
    for (const spec of specs.values()) if (spec.concurrent !== undefined) setSlots(spec.id).catch(failed);
  });
  connection.onEvent((event) => {
    if (event.t === 'recall') for (const handler of recallHandlers) handler(event.id);
  });

  const localSlots = (id: string, holder: string, want: number, limit: number): SlotGrant => {
    if (onUnavailable === 'reject') return { granted: 0, unavailableMs: rejectRetryMs, heldElsewhere: 0 };
    const granted = Math.max(0, Math.min(want, limit - heldHere(id)));
    countSlot(id, holder, granted);
    return { granted, unavailableMs: 0, heldElsewhere: 0 };
  };

  return {
    async configure(limits) {
      specs = new Map(limits.map((spec) => [spec.id, spec]));
      await local.configure(limits);
      allotments.retainOnly(new Set(specs.keys()));
    },
    async take(id, dimension, want, debt, estimate) {
      const spec = specs.get(id);
      const capacity = spec === undefined ? undefined : capacityOf(spec, dimension);
      if (capacity === undefined) return unlimitedGrant(want);
      if (shared()) {
        try {
          return await allotments.take(id, dimension, capacity, want, debt, estimate);
        } catch (err) {
          failed(err);
        }
      }
      return onUnavailable === 'reject' ? rejected() : local.take(id, dimension, want, debt, estimate);
    },
    async give(id, dimension, amount) {
      if (shared() && (await allotments.give(id, dimension, amount))) return;
      await local.give(id, dimension, amount);
    },
    async acquireSlots(id, holder, want) {
      const limit = specs.get(id)?.concurrent;
      if (limit === undefined) return { granted: want, unavailableMs: 0, heldElsewhere: 0 };
      if (!shared()) return localSlots(id, holder, want, limit);
      const [hash, expiry] = slotKeys(prefix, id);
      try {
        const [granted, heldElsewhere] = numbers(await scripts.llmProxyAcquireSlots(hash, expiry, instanceId, want, limit, slotTtlMs), 2) as [number, number];
        countSlot(id, holder, granted);
        return { granted, unavailableMs: 0, heldElsewhere };
      } catch (err) {
        failed(err);
        return localSlots(id, holder, want, limit);
      }
    },
    async releaseSlots(id, holder, amount) {
      const freed = -countSlot(id, holder, -amount);
      if (freed === 0 || !shared()) return;
      const [hash, expiry] = slotKeys(prefix, id);
      // Lost on failure only until the resync after the outage, which sets the count outright.
      await scripts.llmProxyReleaseSlots(hash, expiry, instanceId, freed).catch(failed);
    },
    async releaseHolder(holder) {
      for (const id of [...slots.keys()]) {
        const held = slots.get(id)?.get(holder) ?? 0;
        if (held > 0) await this.releaseSlots(id, holder, held);
      }
    },
    async recallElsewhere(id) {
      if (!shared()) return;
      connection.publish({ t: 'recall', id });
      await new Promise((resolve) => setTimeout(resolve, recallWaitMs).unref());
    },
    onRecall: (handler) => void recallHandlers.push(handler),
    async states() {
      const states = await local.states();
      if (!shared()) {
        for (const state of states) if (state.concurrent !== undefined) state.concurrent.inFlight = heldHere(state.id);
        return states;
      }
      return Promise.all(states.map((state) => sharedState(state).catch(() => state)));
    },
    status() {
      const { since, lastError, outages } = connection.details();
      return {
        kind: 'redis',
        state: shared() ? 'shared' : onUnavailable,
        url: redactStoreUrl(url),
        connection: connection.availability(),
        since: new Date(since).toISOString(),
        outages,
        ...(lastError === undefined ? {} : { lastError }),
        instance: instanceId,
      };
    },
    async close() {
      clearInterval(sweeper);
      clearInterval(renewer);
      // Slots held here are freed at once rather than at the ttl, and unused allotments go back.
      if (shared()) {
        const pending: Promise<unknown>[] = [];
        for (const id of slots.keys()) {
          const [hash, expiry] = slotKeys(prefix, id);
          pending.push(scripts.llmProxySetSlots(hash, expiry, instanceId, 0, slotTtlMs));
        }
        pending.push(...allotments.returnAll());
        await Promise.race([Promise.allSettled(pending), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      }
      await connection.close();
      log.debug('shared store closed');
    },
  };

  /** A key's standing as Redis has it (the levels there, the slots of every instance). */
  async function sharedState(state: KeyLimitState): Promise<KeyLimitState> {
    const client = connection.client;
    const level = async (dimension: LimitDimension, limit: number) => {
      const [stored, at] = await client.hmget(bucketKey(prefix, state.id, dimension), 'level', 'at');
      const refilled = stored === null || at === null ? limit : Math.min(limit, Number(stored) + ((Date.now() - Number(at)) * limit) / 60_000);
      const remaining = Math.max(0, Math.floor(refilled));
      return { limit, remaining, resetMs: Math.ceil(((limit - refilled) * 60_000) / limit) };
    };
    const inFlight = async (limit: number) => {
      const counts = await client.hvals(slotKeys(prefix, state.id)[0]);
      return { limit, inFlight: counts.reduce((sum, count) => sum + Number(count), 0) };
    };
    return {
      ...state,
      requests: state.requests === undefined ? undefined : await level('requests', state.requests.limit),
      tokens: state.tokens === undefined ? undefined : await level('tokens', state.tokens.limit),
      concurrent: state.concurrent === undefined ? undefined : await inFlight(state.concurrent.limit),
    };
  }
}
