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

export type PrimaryMessage =
  | { type: 'llm-proxy:snapshot'; snapshot: Snapshot }
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
  | { type: 'llm-proxy:trial'; id: string; result: 'ok' | 'failed' | 'declined' };

type Handlers<M extends { type: string }> = { [T in M['type']]?: (message: Extract<M, { type: T }>) => void };

/** Dispatches one raw IPC value to the handler for its type; foreign messages are ignored. */
export function dispatchMessage<M extends { type: string }>(raw: unknown, handlers: Handlers<M>): void {
  if (raw === null || typeof raw !== 'object') return;
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string' || !type.startsWith('llm-proxy:')) return;
  const handler = (handlers as Record<string, ((message: M) => void) | undefined>)[type];
  handler?.(raw as M);
}
