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
 * A token enters at its second verification. The first only sets one bit, chosen by the token's
 * fingerprint (32 bits of its signature), in a fixed bit table, so a token presented once costs
 * the heap nothing: where each request brings a token never seen before, keeping every one of
 * them (its string, its claims, the entry) until it was pushed out cost more than all the lookups
 * saved. The table has 16 bits per entry of `max` and is cleared after every 2 × `max` first
 * sightings, so at most one bit in eight is set. A bit set by another token only lets a token in
 * at its first verification: admission is never a security decision, every entry is a token
 * whose every check passed.
 */
export class VerifiedTokenCache<C> {
  readonly #map = new Map<string, CachedToken<C>>();
  readonly #seen: Uint32Array;
  readonly #mask: number;
  readonly #clearAfter: number;
  #marks = 0;
  readonly max: number;

  constructor(max: number) {
    this.max = max;
    let bits = 64;
    while (bits < 16 * max) bits *= 2;
    this.#seen = new Uint32Array(bits / 32);
    this.#mask = bits - 1;
    this.#clearAfter = 2 * max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(token: string): CachedToken<C> | undefined {
    return this.#map.get(token);
  }

  /**
   * True when the fingerprint's bit is set (a token with it was verified before, and may be
   * cached now); otherwise sets the bit and answers false.
   */
  admits(fingerprint: number): boolean {
    const bit = fingerprint & this.#mask;
    const word = bit >>> 5;
    const flag = 1 << (bit & 31);
    if ((this.#seen[word]! & flag) !== 0) return true;
    if (++this.#marks > this.#clearAfter) {
      this.#seen.fill(0);
      this.#marks = 1;
    }
    this.#seen[word]! |= flag;
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
    this.#marks = 0;
  }
}
