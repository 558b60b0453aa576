import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveSession, RotateRequest, RotateResult, SessionStore, SessionUser } from './ports.js';
import type { RefreshTokenRecord, SessionRecord } from './types.js';

/**
 * Live sessions held in process for a short lease, in front of any session store, without ever
 * answering for a session that has been ended.
 *
 * An entry is read from the store at time r and used only until r + lease (this process's
 * monotonic clock). Ending a session (revoke, revoke-all, a refresh-token reuse) writes to the
 * store; `settle()`, which the caller awaits before it answers (after telling the revocation feed,
 * so API servers hear at once), lasts until one lease after that write. Whatever instance cached
 * the session read it before the write, so its entry has run out by the time the ending is
 * answered, and any read after the write sees the session ended. The guarantee holds across instances as long as every
 * instance and every `tessera` command that ends sessions uses the same lease; ends are the rare
 * operation, and they pay for it, not every request.
 *
 * Everything the entry says is checked again on each use: the idle and absolute ends at the
 * caller's `now`. An entry never extends a session: one judged over locally is read again, since
 * another instance may have pushed its idle end on.
 */
export class SessionCache implements SessionStore {
  readonly #entries = new Map<string, { live: LiveSession; until: number }>();
  /** When the latest write that ended a session returned (the lease clock). */
  #endedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: SessionStore,
    readonly leaseMs: number,
    private readonly max = 10_000,
    /** The monotonic clock of the leases (tests may pass their own). */
    private readonly clock: () => number = performance.now.bind(performance),
  ) {
    if (!(leaseMs > 0)) throw new Error('a session cache needs a lease above 0 ms');
  }

  get size(): number {
    return this.#entries.size;
  }

  async getLiveSession(id: string, now: number): Promise<LiveSession | null> {
    const readAt = this.clock();
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      const { session } = entry.live;
      if (readAt < entry.until && session.expiresAt > now && session.idleExpiresAt > now) return entry.live;
      this.#entries.delete(id);
    }
    const live = await this.store.getLiveSession(id, now);
    if (live !== null) {
      if (this.#entries.size >= this.max) {
        // Insertion order is age order: the oldest lease goes first.
        const oldest = this.#entries.keys().next();
        if (!oldest.done) this.#entries.delete(oldest.value);
      }
      this.#entries.set(id, { live, until: readAt + this.leaseMs });
    }
    return live;
  }

  async touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    await this.store.touchSession(id, lastSeenAt, idleExpiresAt);
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      entry.live.session.lastSeenAt = lastSeenAt;
      entry.live.session.idleExpiresAt = idleExpiresAt;
    }
  }

  async revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    const wasLive = await this.store.revokeSession(id, now, reason);
    this.#entries.delete(id);
    // Even when another instance ended it first: the caller answers after settle(), and a third
    // instance may still hold a copy read before that other ending.
    this.#endedAt = this.clock();
    return wasLive;
  }

  async revokeUserSessions(
    userId: string,
    now: number,
    reason: string,
    exceptId?: string,
  ): Promise<string[]> {
    const ids = await this.store.revokeUserSessions(userId, now, reason, exceptId);
    for (const id of ids) this.#entries.delete(id);
    this.#endedAt = this.clock(); // an empty list may mean another instance ended them just now
    return ids;
  }

  async rotateRefreshToken(request: RotateRequest): Promise<RotateResult> {
    const result = await this.store.rotateRefreshToken(request);
    if (result.outcome === 'reused') {
      this.#entries.delete(result.sessionId);
      this.#endedAt = this.clock();
    }
    return result;
  }

  createSession(session: SessionRecord, user: SessionUser, firstRefresh?: RefreshTokenRecord): Promise<void> {
    return this.store.createSession(session, user, firstRefresh);
  }

  getSession(id: string): Promise<SessionRecord | null> {
    return this.store.getSession(id);
  }

  listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    return this.store.listSessions(userId, now);
  }

  sessionOfRefreshToken(
    id: string,
    secretHash: string,
    now: number,
    graceMs: number,
  ): Promise<SessionRecord | null> {
    return this.store.sessionOfRefreshToken(id, secretHash, now, graceMs);
  }

  /** Only sessions that ended go, so no cached copy (of a live session) is touched. */
  pruneSessions(endedBefore: number): Promise<number> {
    return this.store.pruneSessions(endedBefore);
  }

  /** Every copy any instance holds of a session this one has ended has run out. */
  async settle(): Promise<void> {
    // Timers run on the event loop's cached clock and may fire a little early: wait on our own.
    const end = this.#endedAt + this.leaseMs;
    for (let left = end - this.clock(); left > 0; left = end - this.clock()) await sleep(Math.ceil(left));
  }
}
