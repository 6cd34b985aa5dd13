// How long the supervisor waits before replacing a worker that died: at once for one that had been
// serving a while, and with a delay doubling from 100 ms (to 10 s) while they keep dying young, so a
// config or host that kills every worker at start does not fork in a tight loop.

const youngDeathMs = 10_000;
const maxBackoffMs = 10_000;

export class RestartBackoff {
  #rapidDeaths = 0;
  #restarts = 0;

  /** Replacements so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Counts one replacement of a worker that lived `livedMs`; the delay before forking it. */
  next(livedMs: number): number {
    this.#rapidDeaths = livedMs < youngDeathMs ? this.#rapidDeaths + 1 : 0;
    this.#restarts += 1;
    return this.#rapidDeaths === 0 ? 0 : Math.min(maxBackoffMs, 100 * 2 ** (this.#rapidDeaths - 1));
  }
}
