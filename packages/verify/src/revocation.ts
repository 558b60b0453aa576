/**
 * Revocations held in memory, fed by the account server's revocation feed.
 * Lookups are two map reads per token; entries are dropped once no token that could carry them
 * can still be accepted.
 */

/** One entry of the feed: a session (`sid`), a token (`jti`), or a user-wide "not before" (`sub`). */
export type RevocationEntry =
  | { sid: string; expires_at: number }
  | { jti: string; expires_at: number }
  | { sub: string; not_before: number; expires_at: number };

/** What the verifier needs from a revocation source. `now` is in milliseconds. */
export interface RevocationChecker {
  check(claims: RevocableClaims, nowMs: number): 'token_revoked' | 'feed_stale' | null;
}

export interface RevocableClaims {
  readonly sub?: unknown;
  readonly sid?: unknown;
  readonly jti?: unknown;
  readonly iat?: unknown;
}

export interface RevocationSetOptions {
  /**
   * Fail closed: when nothing (snapshot, event, heartbeat) arrived for longer than this, every
   * check answers `feed_stale`. Unset: never stale (a set fed by hand).
   */
  maxStalenessMs?: number;
  /** Entries are kept this long past their `expires_at`, to cover verifiers' clock skew. */
  retentionMarginSeconds?: number;
  clock?: () => number;
}

const MAX_ID_LENGTH = 512;

function validId(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= MAX_ID_LENGTH;
}

function validTime(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/**
 * Checks that `x` has the shape of a feed entry. An entry may name several things at once
 * (e.g. `sid` and `sub` + `not_before`); each is returned as its own entry.
 */
export function parseRevocationEntries(x: unknown): RevocationEntry[] {
  if (typeof x !== 'object' || x === null) return [];
  const e = x as Record<string, unknown>;
  if (!validTime(e['expires_at'])) return [];
  const expires_at = e['expires_at'];
  const out: RevocationEntry[] = [];
  if (validId(e['sid'])) out.push({ sid: e['sid'], expires_at });
  if (validId(e['jti'])) out.push({ jti: e['jti'], expires_at });
  if (validId(e['sub']) && validTime(e['not_before'])) {
    out.push({ sub: e['sub'], not_before: e['not_before'], expires_at });
  }
  return out;
}

/** The first entry of `parseRevocationEntries`, or undefined when `x` is not a feed entry. */
export function parseRevocationEntry(x: unknown): RevocationEntry | undefined {
  return parseRevocationEntries(x)[0];
}

export class RevocationSet implements RevocationChecker {
  readonly #sids = new Map<string, number>();
  readonly #jtis = new Map<string, number>();
  /** sub -> [not_before, expires_at] */
  readonly #subs = new Map<string, [number, number]>();
  readonly #maxStalenessMs: number | undefined;
  readonly #marginSec: number;
  readonly #clock: () => number;
  #lastEventAt = 0;
  #nextPruneAt = 0;

  constructor(options: RevocationSetOptions = {}) {
    if (options.maxStalenessMs !== undefined && !(options.maxStalenessMs > 0)) {
      throw new TypeError('maxStalenessMs must be positive');
    }
    this.#maxStalenessMs = options.maxStalenessMs;
    this.#marginSec = options.retentionMarginSeconds ?? 300;
    this.#clock = options.clock ?? Date.now;
  }

  get size(): number {
    return this.#sids.size + this.#jtis.size + this.#subs.size;
  }

  /** When the feed last proved it is alive (ms since epoch); 0 if never. */
  get lastEventAt(): number {
    return this.#lastEventAt;
  }

  /** Records that the feed is alive (snapshot loaded, event or heartbeat received). */
  touch(nowMs: number = this.#clock()): void {
    this.#lastEventAt = nowMs;
  }

  isStale(nowMs: number = this.#clock()): boolean {
    return this.#maxStalenessMs !== undefined && nowMs - this.#lastEventAt > this.#maxStalenessMs;
  }

  /** Adds an entry; returns false for malformed or already-expired entries. */
  add(entry: RevocationEntry | unknown): boolean {
    const parts = parseRevocationEntries(entry);
    if (parts.length === 0) return false;
    const nowMs = this.#clock();
    if (parts[0]!.expires_at + this.#marginSec < nowMs / 1000) return false;
    if (nowMs >= this.#nextPruneAt) this.prune(nowMs);
    for (const e of parts) {
      if ('sid' in e) {
        this.#sids.set(e.sid, Math.max(e.expires_at, this.#sids.get(e.sid) ?? 0));
      } else if ('jti' in e) {
        this.#jtis.set(e.jti, Math.max(e.expires_at, this.#jtis.get(e.jti) ?? 0));
      } else {
        const old = this.#subs.get(e.sub);
        this.#subs.set(e.sub, [Math.max(e.not_before, old?.[0] ?? 0), Math.max(e.expires_at, old?.[1] ?? 0)]);
      }
    }
    return true;
  }

  /** True when the claims name a revoked session, token, or predate the user's "not before". */
  isRevoked(claims: RevocableClaims): boolean {
    const { sid, jti, sub } = claims;
    if (typeof sid === 'string' && this.#sids.has(sid)) return true;
    if (typeof jti === 'string' && this.#jtis.size > 0 && this.#jtis.has(jti)) return true;
    if (typeof sub === 'string' && this.#subs.size > 0) {
      const nb = this.#subs.get(sub);
      // A token without a numeric iat cannot prove it is newer than the cut-off.
      if (nb !== undefined && !(typeof claims.iat === 'number' && claims.iat >= nb[0])) return true;
    }
    return false;
  }

  /** Alias of isRevoked, for callers who think of it as a set. */
  has(claims: RevocableClaims): boolean {
    return this.isRevoked(claims);
  }

  check(claims: RevocableClaims, nowMs: number = this.#clock()): 'token_revoked' | 'feed_stale' | null {
    if (this.#maxStalenessMs !== undefined && nowMs - this.#lastEventAt > this.#maxStalenessMs) {
      return 'feed_stale';
    }
    return this.isRevoked(claims) ? 'token_revoked' : null;
  }

  /** Drops entries whose tokens have all expired (plus the retention margin). */
  prune(nowMs: number = this.#clock()): number {
    const cutoff = nowMs / 1000 - this.#marginSec;
    let removed = 0;
    for (const [k, exp] of this.#sids) if (exp < cutoff && this.#sids.delete(k)) removed++;
    for (const [k, exp] of this.#jtis) if (exp < cutoff && this.#jtis.delete(k)) removed++;
    for (const [k, v] of this.#subs) if (v[1] < cutoff && this.#subs.delete(k)) removed++;
    this.#nextPruneAt = nowMs + 60_000;
    return removed;
  }
}
