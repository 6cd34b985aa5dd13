// Every message between the primary and the workers, as one union dispatched by `type`. Types are
// namespaced so they never collide with node:cluster's or prom-client's own messages on the channel.
import type { Snapshot } from './snapshot.js';

export type PrimaryMessage =
  | { type: 'llm-proxy:snapshot'; snapshot: Snapshot }
  | { type: 'llm-proxy:shutdown'; deadlineMs: number };

export type WorkerMessage =
  /** Sent once the worker's message handler exists; anything sent before it would be lost. */
  | { type: 'llm-proxy:hello' }
  | { type: 'llm-proxy:listening'; version: number; address: { host: string; port: number } }
  | { type: 'llm-proxy:snapshot-applied'; version: number }
  | { type: 'llm-proxy:fatal'; message: string };

type Handlers<M extends { type: string }> = { [T in M['type']]?: (message: Extract<M, { type: T }>) => void };

/** Dispatches one raw IPC value to the handler for its type; foreign messages are ignored. */
export function dispatchMessage<M extends { type: string }>(raw: unknown, handlers: Handlers<M>): void {
  if (raw === null || typeof raw !== 'object') return;
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string' || !type.startsWith('llm-proxy:')) return;
  const handler = (handlers as Record<string, ((message: M) => void) | undefined>)[type];
  handler?.(raw as M);
}
