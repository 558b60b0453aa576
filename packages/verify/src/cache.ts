/** One cached token: its frozen claims, its expiry, and the key it was signed with. */
export interface CachedToken<C> {
  readonly claims: C;
  readonly exp: number;
  readonly kid: string;
}

/** The fingerprint `admits` takes: the first four bytes of a decoded signature, big-endian. */
export function signatureFingerprint(sig: Uint8Array): number {
  return ((sig[0]! << 24) | (sig[1]! << 16) | (sig[2]! << 8) | sig[3]!) >>> 0;
}

/**
 * Already-verified tokens, keyed on the exact token string. Bounded; oldest entries go first.
 * The caller re-checks expiry and revocation on every hit, and flushes when a key is retired.
 *
 * A token enters at its second verification. The first only marks the token's fingerprint (32
 * bits of its signature) in a fixed table of numbers, so a token presented once costs the heap
 * nothing: where each request brings a token never seen before, keeping every one of them (its
 * string, its claims, the entry) until it is pushed out cost more than the lookups ever saved.
 * A fingerprint shared by two tokens only lets the second in a verification early: admission is
 * never a security decision, every entry is a token whose every check passed.
 */
export class VerifiedTokenCache<C> {
  readonly #map = new Map<string, CachedToken<C>>();
  /** Fingerprints of tokens verified once, one slot per low bits: at least `max` slots. */
  readonly #seen: Uint32Array;
  readonly #mask: number;
  readonly max: number;

  constructor(max: number) {
    this.max = max;
    let slots = 1;
    while (slots < max) slots *= 2;
    this.#seen = new Uint32Array(slots);
    this.#mask = slots - 1;
  }

  get size(): number {
    return this.#map.size;
  }

  get(token: string): CachedToken<C> | undefined {
    return this.#map.get(token);
  }

  /**
   * True when a token with this fingerprint was verified before (it may be cached now); otherwise
   * remembers the fingerprint, in place of whichever one held its slot, and answers false.
   */
  admits(fingerprint: number): boolean {
    const slot = fingerprint & this.#mask;
    if (this.#seen[slot] === fingerprint) return true;
    this.#seen[slot] = fingerprint;
    return false;
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
    this.#seen.fill(0);
  }
}
