// Passive health from the data path: each attempt's outcome is counted locally and sent to the
// primary in one message per period, so the hot path never pays for IPC. Order inside a period is
// kept as far as the breaker needs it: failures since the last success.
import type { OutcomeCounts, WorkerMessage } from '../shared/ipc.js';

/** One instance's counts for the current period; the object lives as long as the worker. */
export class OutcomeCounter {
  successes = 0;
  failures = 0;
  trailingFailures = 0;
  dirty = false;

  constructor(readonly id: string) {}
}

export interface OutcomeReporter {
  counterFor(id: string): OutcomeCounter;
  success(counter: OutcomeCounter): void;
  failure(counter: OutcomeCounter): void;
  /**
   * An upstream 429 asked to wait: sent at once, so the other workers stop using that key too.
   * False when an earlier report already covers it.
   */
  cool(id: string, ms: number): boolean;
  /** Forgets counters of instances no snapshot has any more (their last counts are still sent). */
  retainOnly(ids: ReadonlySet<string>): void;
  trial(id: string, result: 'ok' | 'failed' | 'declined'): void;
  flush(): void;
}

const periodMs = 100;

export function createOutcomeReporter(send: (message: WorkerMessage) => void): OutcomeReporter {
  const counters = new Map<string, OutcomeCounter>();
  const dirty: OutcomeCounter[] = [];
  // When each instance's last reported cooling ends: a burst of 429s is one message, not one each.
  const coolingUntil = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (dirty.length === 0) return;
    const counts: OutcomeCounts[] = [];
    for (const counter of dirty) {
      counts.push([counter.id, counter.successes, counter.failures, counter.trailingFailures]);
      counter.successes = 0;
      counter.failures = 0;
      counter.trailingFailures = 0;
      counter.dirty = false;
    }
    dirty.length = 0;
    send({ type: 'llm-proxy:outcomes', counts });
  };
  const mark = (counter: OutcomeCounter) => {
    if (counter.dirty) return;
    counter.dirty = true;
    dirty.push(counter);
    if (timer === undefined) {
      timer = setTimeout(flush, periodMs);
      timer.unref();
    }
  };

  return {
    counterFor(id) {
      let counter = counters.get(id);
      if (counter === undefined) {
        counter = new OutcomeCounter(id);
        counters.set(id, counter);
      }
      return counter;
    },
    success(counter) {
      counter.successes += 1;
      counter.trailingFailures = 0;
      mark(counter);
    },
    failure(counter) {
      counter.failures += 1;
      counter.trailingFailures += 1;
      mark(counter);
    },
    cool(id, ms) {
      const until = Date.now() + ms;
      if (until < (coolingUntil.get(id) ?? 0) + 1_000) return false;
      coolingUntil.set(id, until);
      send({ type: 'llm-proxy:cool', id, ms });
      return true;
    },
    retainOnly(ids) {
      for (const id of counters.keys()) if (!ids.has(id)) counters.delete(id);
      for (const id of coolingUntil.keys()) if (!ids.has(id)) coolingUntil.delete(id);
    },
    trial(id, result) {
      send({ type: 'llm-proxy:trial', id, result });
    },
    flush,
  };
}
