// A token bucket that holds a per-minute budget: it refills continuously at capacity per minute up to
// capacity, so a full minute's worth may be spent at once and then capacity/60 a second. Its level may
// go below zero when tokens are charged after the fact (a response reports more than was leased).
export class TokenBucket {
  #capacity: number;
  #level: number;
  #at: number;

  constructor(capacity: number, now: number) {
    this.#capacity = capacity;
    this.#level = capacity;
    this.#at = now;
  }

  get capacity(): number {
    return this.#capacity;
  }

  level(now: number): number {
    this.#refill(now);
    return this.#level;
  }

  /** Takes up to `want` whole tokens; returns how many. */
  take(want: number, now: number): number {
    this.#refill(now);
    const granted = Math.max(0, Math.min(want, Math.floor(this.#level)));
    this.#level -= granted;
    return granted;
  }

  charge(amount: number, now: number): void {
    this.#refill(now);
    this.#level -= amount;
  }

  give(amount: number, now: number): void {
    this.#refill(now);
    this.#level = Math.min(this.#capacity, this.#level + amount);
  }

  /** Milliseconds until `amount` tokens are there (0 if they are now). */
  msUntil(amount: number, now: number): number {
    this.#refill(now);
    return this.#level >= amount ? 0 : Math.ceil(((amount - this.#level) * 60_000) / this.#capacity);
  }

  /** Milliseconds until the bucket is full again (what x-ratelimit-reset-* reports). */
  msUntilFull(now: number): number {
    return this.msUntil(this.#capacity, now);
  }

  /**
   * A reload changed the limit: the level moves by the change, so raising a limit frees the extra at
   * once and lowering it takes the difference away from what is left.
   */
  resize(capacity: number, now: number): void {
    this.#refill(now);
    this.#level = Math.min(capacity, this.#level + capacity - this.#capacity);
    this.#capacity = capacity;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#level = Math.min(this.#capacity, this.#level + ((now - this.#at) * this.#capacity) / 60_000);
    }
    this.#at = Math.max(this.#at, now);
  }
}
