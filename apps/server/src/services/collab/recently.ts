/**
 * Keys marked within the last `ms` milliseconds (a document another instance writes, a channel
 * told lately). Marks expire in the order they were made, so expired ones are dropped from the
 * front as new ones come; at most `max` are kept (the oldest go first).
 */
export class Recently<K> {
  /** Key → when its mark expires (epoch ms), oldest first. */
  readonly #until = new Map<K, number>();
  readonly #ms: number;
  readonly #max: number;

  constructor(ms: number, max = 10_000) {
    this.#ms = ms;
    this.#max = max;
  }

  mark(key: K): void {
    const now = Date.now();
    this.#until.delete(key); // re-inserted: the map stays oldest first
    this.#until.set(key, now + this.#ms);
    for (const [k, until] of this.#until) {
      if (until > now && this.#until.size <= this.#max) break;
      this.#until.delete(k);
    }
  }

  has(key: K): boolean {
    return (this.#until.get(key) ?? 0) > Date.now();
  }
}
