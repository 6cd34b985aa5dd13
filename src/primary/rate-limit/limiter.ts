// The primary's side of the cluster-wide limits: it answers the workers' lease and slot asks from the
// store. Workers ask ahead of need and hold small leases, so a request never waits on this in the
// common case; what a worker holds unused it hands back. Spare concurrency slots are the one thing a
// worker may hold that another needs at once: an ask the store cannot fill recalls them first.
import type { LimitMessage, PrimaryMessage } from '../../shared/ipc.js';
import type { Logger } from '../../shared/log.js';
import { limitsOf, type Snapshot } from '../../shared/snapshot.js';
import { unlimitedGrant, type KeyLimitState, type RateLimitStore, type StoreStatus } from './store.js';

export interface RateLimiter {
  configure(snapshot: Snapshot): Promise<void>;
  onMessage(message: LimitMessage, workerId: number, reply: (message: PrimaryMessage) => void): void;
  workerGone(workerId: number): void;
  states(): Promise<KeyLimitState[]>;
  storeStatus(): StoreStatus;
  close(): Promise<void>;
}

type LimitHandler<M> = (message: M, workerId: number, reply: (message: PrimaryMessage) => void) => void;

interface Recall {
  waiting: Set<number>;
  resolvers: (() => void)[];
  finish(): void;
}

/** How long an ask waits for recalled spares (a worker answers within a millisecond or two). */
const recallWaitMs = 50;

export function createRateLimiter(store: RateLimitStore, log: Logger, sendTo: (workerId: number, message: PrimaryMessage) => void): RateLimiter {
  // A store that fails must not stop traffic: the ask is granted and the failure logged, once per
  // burst of them. (A shared store handles its own outages; this is for what it did not foresee.)
  let lastFailureLog = 0;
  const failed = (err: unknown) => {
    const now = Date.now();
    if (now - lastFailureLog < 10_000) return;
    lastFailureLog = now;
    log.error({ err: (err as Error).message }, 'rate-limit store failed; letting requests through');
  };

  /** Slots each worker holds, by key id: whom to recall spares from. */
  const slotHolders = new Map<string, Map<number, number>>();
  /** Recalls out, by key id: finished when every recalled worker has answered, or after a wait. */
  const recalls = new Map<string, Recall>();

  const countSlots = (id: string, workerId: number, delta: number) => {
    let holders = slotHolders.get(id);
    if (holders === undefined) {
      holders = new Map();
      slotHolders.set(id, holders);
    }
    const held = Math.max(0, (holders.get(workerId) ?? 0) + delta);
    if (held === 0) holders.delete(workerId);
    else holders.set(workerId, held);
    if (holders.size === 0) slotHolders.delete(id);
  };

  const recallFromWorkers = (id: string, except: number): Promise<void> => {
    const holders = [...(slotHolders.get(id)?.keys() ?? [])].filter((workerId) => workerId !== except);
    if (holders.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const pending = recalls.get(id);
      if (pending !== undefined) {
        pending.resolvers.push(resolve);
        return;
      }
      const timer = setTimeout(() => recall.finish(), recallWaitMs);
      const recall: Recall = {
        waiting: new Set(holders),
        resolvers: [resolve],
        finish() {
          clearTimeout(timer);
          recalls.delete(id);
          for (const done of this.resolvers.splice(0)) done();
        },
      };
      recalls.set(id, recall);
      for (const workerId of holders) sendTo(workerId, { type: 'llm-proxy:slot-recall', id });
    });
  };

  const recallAnswered = (id: string, workerId: number) => {
    const recall = recalls.get(id);
    if (recall === undefined) return;
    recall.waiting.delete(workerId);
    if (recall.waiting.size === 0) recall.finish();
  };

  // Another instance wants spares: this one's workers hand theirs back (the returns reach the store).
  store.onRecall((id) => {
    for (const workerId of slotHolders.get(id)?.keys() ?? []) sendTo(workerId, { type: 'llm-proxy:slot-recall', id });
  });

  const acquire = async (id: string, workerId: number, want: number) => {
    const holder = String(workerId);
    const first = await store.acquireSlots(id, holder, want);
    let granted = first.granted;
    if (granted < want && first.unavailableMs === 0) {
      await Promise.all([recallFromWorkers(id, workerId), first.heldElsewhere > 0 ? store.recallElsewhere(id) : undefined]);
      granted += (await store.acquireSlots(id, holder, want - granted)).granted;
    }
    return { granted, unavailableMs: first.unavailableMs };
  };

  const handlers: { [T in LimitMessage['type']]: LimitHandler<Extract<LimitMessage, { type: T }>> } = {
    'llm-proxy:lease': ({ seq, id, dimension, want, debt, estimate }, _workerId, reply) => {
      store.take(id, dimension, want, debt, estimate).then(
        (grant) => reply({ type: 'llm-proxy:lease-grant', seq, id, dimension, ...grant }),
        (err: unknown) => {
          failed(err);
          reply({ type: 'llm-proxy:lease-grant', seq, id, dimension, ...unlimitedGrant(want) });
        },
      );
    },
    'llm-proxy:lease-return': ({ id, dimension, amount }) => void store.give(id, dimension, amount).catch(failed),
    'llm-proxy:slot': ({ seq, id, want }, workerId, reply) => {
      acquire(id, workerId, want).then(
        ({ granted, unavailableMs }) => {
          countSlots(id, workerId, granted);
          reply({ type: 'llm-proxy:slot-grant', seq, id, granted, unavailableMs });
        },
        (err: unknown) => {
          failed(err);
          // Granted without a count: the worker returns them later, which the store ignores.
          reply({ type: 'llm-proxy:slot-grant', seq, id, granted: want, unavailableMs: 0 });
        },
      );
    },
    'llm-proxy:slot-return': ({ id, amount, recalled }, workerId) => {
      if (amount > 0) {
        countSlots(id, workerId, -amount);
        void store.releaseSlots(id, String(workerId), amount).catch(failed);
      }
      if (recalled) recallAnswered(id, workerId);
    },
  };

  return {
    configure: (snapshot) => store.configure(limitsOf(snapshot)),
    onMessage: (message, workerId, reply) => (handlers[message.type] as LimitHandler<typeof message>)(message, workerId, reply),
    workerGone: (workerId) => {
      for (const id of [...slotHolders.keys()]) {
        countSlots(id, workerId, -Infinity);
        recallAnswered(id, workerId);
      }
      void store.releaseHolder(String(workerId)).catch(failed);
    },
    states: () => store.states(),
    storeStatus: () => store.status(),
    close: () => store.close(),
  };
}
