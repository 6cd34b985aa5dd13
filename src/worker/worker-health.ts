// The worker's copy of the primary's health decisions: which instances to skip, and which half-open
// instances this worker may send its one trial request to. A grant nobody uses is handed back, so
// the primary can offer it to a worker that has traffic for that route.
import type { HealthTable } from '../shared/ipc.js';

export interface WorkerHealth {
  /** False for a table older than the one held. */
  update(table: HealthTable): boolean;
  /** 0 when known down until a probe succeeds, an epoch-ms time when it has an end, undefined when up. */
  downUntil(id: string): number | undefined;
  /** Down only because its upstream said 429 with a Retry-After. */
  isCoolingOnly(id: string): boolean;
  /** Offered trials not yet used. */
  isOffered(id: string): boolean;
  /** Uses a trial grant; false when it was already used or withdrawn. */
  takeTrial(id: string): boolean;
  /** A taken trial came to nothing (its client left): a grant for it may be offered again. */
  releaseTrial(id: string): void;
  /**
   * Cools an instance here at once, on this worker's own 429: the primary's table, which tells every
   * worker, is a round trip away, and this worker's next request must not go to that key meanwhile.
   */
  coolLocally(id: string, until: number): void;
}

// Long enough for a busy route to send a request, short enough that an idle worker does not sit on a
// grant another worker could use.
const grantMs = 1_000;

export function createWorkerHealth(decline: (id: string) => void): WorkerHealth {
  let seq = -1;
  let down = new Map<string, number>();
  let cooling = new Set<string>();
  const localCooling = new Map<string, number>();
  const localUntil = (id: string) => {
    const until = localCooling.get(id);
    return until !== undefined && until > Date.now() ? until : undefined;
  };
  const offered = new Map<string, NodeJS.Timeout>();
  const taken = new Set<string>();

  return {
    update(table) {
      if (table.seq <= seq) return false;
      seq = table.seq;
      down = new Map(table.down.map(([id, until]) => [id, until]));
      cooling = new Set(table.down.filter((entry) => entry[2] === 1).map(([id]) => id));
      const now = Date.now();
      for (const [id, until] of localCooling) if (until <= now || down.has(id)) localCooling.delete(id);
      const granted = new Set(table.trials);
      for (const [id, timer] of offered) {
        if (granted.has(id)) continue;
        clearTimeout(timer);
        offered.delete(id);
      }
      for (const id of taken) if (!granted.has(id)) taken.delete(id);
      for (const id of granted) {
        if (offered.has(id) || taken.has(id)) continue;
        const timer = setTimeout(() => {
          offered.delete(id);
          decline(id);
        }, grantMs);
        timer.unref();
        offered.set(id, timer);
      }
      return true;
    },
    downUntil: (id) => down.get(id) ?? localUntil(id),
    isCoolingOnly: (id) => cooling.has(id) || (!down.has(id) && localUntil(id) !== undefined),
    isOffered: (id) => offered.has(id),
    takeTrial(id) {
      const timer = offered.get(id);
      if (timer === undefined) return false;
      clearTimeout(timer);
      offered.delete(id);
      taken.add(id);
      return true;
    },
    releaseTrial(id) {
      taken.delete(id);
    },
    coolLocally(id, until) {
      localCooling.set(id, until);
    },
  };
}
