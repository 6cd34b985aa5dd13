// Every message between the primary and the workers, as one union dispatched by `type`. Types are
// namespaced so they never collide with node:cluster's or prom-client's own messages on the channel.
import type { Snapshot } from './snapshot.js';

/**
 * Which instances a worker must not pick, as the primary decided from probes, breaker and 429
 * cooling. Sent on change only, per worker (trial grants differ between workers).
 */
export interface HealthTable {
  /** Grows with every table the primary sends; a worker ignores an older one. */
  seq: number;
  /**
   * [instance id, epoch ms it may be back (0 when that waits for a probe to succeed), 1 when the
   * only reason is an upstream rate limit (429 cooling) else 0].
   */
  down: [string, number, 0 | 1][];
  /** Instances in half-open state whose one trial request this worker may send. */
  trials: string[];
}

/** [instance id, successes, failures, failures since the last success] over one report period. */
export type OutcomeCounts = [string, number, number, number];

/** The two per-minute budgets of a limited client key; `concurrent` is counted with slots instead. */
export type LimitDimension = 'requests' | 'tokens';

export type PrimaryMessage =
  | { type: 'llm-proxy:snapshot'; snapshot: Snapshot }
  /**
   * Answer to a lease ask: what was granted from the key's bucket, the bucket's level after it and,
   * when less than asked was there, how long until that much will be.
   */
  | {
      type: 'llm-proxy:lease-grant';
      seq: number;
      id: string;
      dimension: LimitDimension;
      granted: number;
      level: number;
      retryAfterMs: number;
      estimate: number;
      /** > 0: the shared store is out of reach and `on_unavailable: reject` refuses the key that long. */
      unavailableMs: number;
    }
  /**
   * Answer to a slot ask: how many of the wanted slots the worker may hold now. `unavailableMs` > 0:
   * the shared store is out of reach and `on_unavailable: reject` holds limited keys back that long.
   */
  | { type: 'llm-proxy:slot-grant'; seq: number; id: string; granted: number; unavailableMs: number }
  /** The key has no free slot for another worker's ask: hand back the spares of it held here. */
  | { type: 'llm-proxy:slot-recall'; id: string }
  | { type: 'llm-proxy:health'; health: HealthTable }
  | { type: 'llm-proxy:shutdown'; deadlineMs: number };

export type WorkerMessage =
  /** Sent once the worker's message handler exists; anything sent before it would be lost. */
  | { type: 'llm-proxy:hello' }
  | { type: 'llm-proxy:listening'; version: number; address: { host: string; port: number } }
  | { type: 'llm-proxy:snapshot-applied'; version: number }
  | { type: 'llm-proxy:fatal'; message: string }
  /** Passive health, batched: never one message per request. */
  | { type: 'llm-proxy:outcomes'; counts: OutcomeCounts[] }
  /** An upstream 429 with Retry-After: that instance (that key) rests for `ms`. */
  | { type: 'llm-proxy:cool'; id: string; ms: number }
  /** What became of a trial grant: the trial request's result, or unused within the grant time. */
  | { type: 'llm-proxy:trial'; id: string; result: 'ok' | 'failed' | 'declined' }
  /**
   * Asks a key's bucket for `want` more (a worker asks ahead, before its lease runs dry); `debt` is
   * what the worker spent beyond its lease (tokens a response reported), charged first. `estimate`:
   * what one request of the key costs as this worker has seen (tokens; 0 when it has seen none), so
   * every worker holds a request back once less than that is left, not only the one that saw it.
   */
  | { type: 'llm-proxy:lease'; seq: number; id: string; dimension: LimitDimension; want: number; debt: number; estimate: number }
  /** Hands back what an idle lease did not use. */
  | { type: 'llm-proxy:lease-return'; id: string; dimension: LimitDimension; amount: number }
  /** Asks for `want` concurrency slots of a key (a worker keeps freed ones as spares, see slot-lease). */
  | { type: 'llm-proxy:slot'; seq: number; id: string; want: number }
  /** Hands back slots; `recalled` when it answers a recall (sent even when `amount` is 0). */
  | { type: 'llm-proxy:slot-return'; id: string; amount: number; recalled: boolean };

/** The worker messages the primary's rate limiter answers. */
export type LimitMessage = Extract<WorkerMessage, { type: 'llm-proxy:lease' | 'llm-proxy:lease-return' | 'llm-proxy:slot' | 'llm-proxy:slot-return' }>;

type Handlers<M extends { type: string }> = { [T in M['type']]?: (message: Extract<M, { type: T }>) => void };

/** Dispatches one raw IPC value to the handler for its type; foreign messages are ignored. */
export function dispatchMessage<M extends { type: string }>(raw: unknown, handlers: Handlers<M>): void {
  if (raw === null || typeof raw !== 'object') return;
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string' || !type.startsWith('llm-proxy:')) return;
  const handler = (handlers as Record<string, ((message: M) => void) | undefined>)[type];
  handler?.(raw as M);
}
