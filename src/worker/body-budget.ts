// The worker's budget over buffered request bodies (`limits.max_buffered_bytes`). Each body is held
// whole (it makes failover possible, DESIGN 4.7) and may be up to max_body_bytes; without a budget
// over all of them, a few thousand long streams with large prompts would exhaust the worker. Bytes are
// taken as they arrive and given back once the proxy no longer holds the body.

export interface BodyBudget {
  /** Bytes of request bodies held now. */
  readonly used: number;
  /** Takes `bytes` if that keeps the total within `limit`; false, taking nothing, otherwise. */
  take(bytes: number, limit: number): boolean;
  give(bytes: number): void;
}

export function createBodyBudget(): BodyBudget {
  let used = 0;
  return {
    get used() {
      return used;
    },
    take(bytes, limit) {
      if (used + bytes > limit) return false;
      used += bytes;
      return true;
    },
    give(bytes) {
      used = Math.max(0, used - bytes);
    },
  };
}

/** The share of the budget one held body takes, given back once, whichever path lets go of it first. */
export class BodyHold {
  #bytes: number;

  constructor(
    readonly budget: BodyBudget,
    bytes: number,
  ) {
    this.#bytes = bytes;
  }

  release(): void {
    if (this.#bytes === 0) return;
    this.budget.give(this.#bytes);
    this.#bytes = 0;
  }
}
