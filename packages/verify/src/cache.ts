/**
 * Already-verified tokens, keyed on the exact token string. Bounded; oldest entries go first.
 * The caller re-checks expiry and revocation on every hit, and flushes when a key is retired.
 */
export interface CachedToken<C> {
  readonly claims: C;
  readonly exp: number;
  readonly kid: string;
}

export class VerifiedTokenCache<C> {
  readonly #map = new Map<string, CachedToken<C>>();
  readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(token: string): CachedToken<C> | undefined {
    return this.#map.get(token);
  }

  set(token: string, entry: CachedToken<C>): void {
    if (this.#map.size >= this.max) {
      // Insertion order is age order: drop the oldest.
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    this.#map.set(token, entry);
  }

  delete(token: string): void {
    this.#map.delete(token);
  }

  deleteKids(kids: readonly string[]): void {
    const gone = new Set(kids);
    for (const [token, entry] of this.#map) if (gone.has(entry.kid)) this.#map.delete(token);
  }

  clear(): void {
    this.#map.clear();
  }
}
