// The primary's side of the cluster-wide limits: it answers the workers' lease and slot asks from the
// store. Workers ask ahead of need and hold small leases, so a request never waits on this in the
// common case; what a worker holds unused it hands back.
import type { LimitMessage, PrimaryMessage } from '../../shared/ipc.js';
import type { Logger } from '../../shared/log.js';
import { limitsOf, type Snapshot } from '../../shared/snapshot.js';
import type { KeyLimitState, RateLimitStore } from './store.js';

export interface RateLimiter {
  configure(snapshot: Snapshot): Promise<void>;
  onMessage(message: LimitMessage, workerId: number, reply: (message: PrimaryMessage) => void): void;
  workerGone(workerId: number): void;
  states(): Promise<KeyLimitState[]>;
}

type LimitHandler<M> = (message: M, holder: string, reply: (message: PrimaryMessage) => void) => void;

export function createRateLimiter(store: RateLimitStore, log: Logger): RateLimiter {
  // A store that fails (a shared one out of reach) must not stop traffic: the ask is granted and the
  // failure logged, once per burst of them.
  let lastFailureLog = 0;
  const failed = (err: unknown) => {
    const now = Date.now();
    if (now - lastFailureLog < 10_000) return;
    lastFailureLog = now;
    log.error({ err: (err as Error).message }, 'rate-limit store failed; letting requests through');
  };

  const handlers: { [T in LimitMessage['type']]: LimitHandler<Extract<LimitMessage, { type: T }>> } = {
    'llm-proxy:lease': ({ seq, id, dimension, want, debt, estimate }, _holder, reply) => {
      store.take(id, dimension, want, debt, estimate).then(
        (grant) => reply({ type: 'llm-proxy:lease-grant', seq, id, dimension, ...grant }),
        (err: unknown) => {
          failed(err);
          reply({ type: 'llm-proxy:lease-grant', seq, id, dimension, granted: want, level: Number.MAX_SAFE_INTEGER, retryAfterMs: 0, estimate: 0 });
        },
      );
    },
    'llm-proxy:lease-return': ({ id, dimension, amount }) => void store.give(id, dimension, amount).catch(failed),
    'llm-proxy:slot': ({ seq, id }, holder, reply) => {
      store.acquireSlot(id, holder).then(
        (granted) => reply({ type: 'llm-proxy:slot-grant', seq, granted }),
        (err: unknown) => {
          failed(err);
          reply({ type: 'llm-proxy:slot-grant', seq, granted: true });
        },
      );
    },
    'llm-proxy:slot-release': ({ id }, holder) => void store.releaseSlot(id, holder).catch(failed),
  };

  return {
    configure: (snapshot) => store.configure(limitsOf(snapshot)),
    onMessage: (message, workerId, reply) => (handlers[message.type] as LimitHandler<typeof message>)(message, String(workerId), reply),
    workerGone: (workerId) => void store.releaseHolder(String(workerId)).catch(failed),
    states: () => store.states(),
  };
}
