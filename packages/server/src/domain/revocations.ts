import { EventEmitter } from 'node:events';
import { type RevocableClaims, RevocationSet } from '@tessera/verify';
import type { RevocationLog } from '../store/ports.js';
import type { NewRevocation, RevocationEntry } from '../store/types.js';

/** What the feed serves: the HTTP reference's `{sid or sub, not_before?, expires_at}` plus the cursor. */
export interface FeedEntry {
  cursor: number;
  sid?: string;
  sub?: string;
  not_before?: number;
  expires_at: number;
}

export function toFeedEntry(e: RevocationEntry): FeedEntry {
  const out: FeedEntry = { cursor: e.seq, expires_at: e.expiresAt };
  if (e.sid !== null) out.sid = e.sid;
  if (e.sub !== null) out.sub = e.sub;
  if (e.notBefore !== null) out.not_before = e.notBefore;
  return out;
}

/**
 * Fans revocations out to live stream subscribers. In a cluster a bridge (Redis pub/sub)
 * calls `deliver` with entries other instances recorded, so every instance's streams carry all.
 */
export class RevocationHub {
  private readonly events = new EventEmitter();
  /** Set by a cluster bridge: publishes locally recorded entries to the other instances. */
  broadcast: ((entries: RevocationEntry[]) => Promise<void>) | undefined;
  /** Told of every entry recorded on this instance (metrics). */
  onRecorded: ((entries: RevocationEntry[]) => void) | undefined;

  constructor() {
    this.events.setMaxListeners(0);
  }

  subscribe(listener: (entries: RevocationEntry[]) => void): () => void {
    this.events.on('entries', listener);
    return () => this.events.off('entries', listener);
  }

  deliver(entries: RevocationEntry[]): void {
    if (entries.length > 0) this.events.emit('entries', entries);
  }

  get subscribers(): number {
    return this.events.listenerCount('entries');
  }
}

/** Records revocations: in the store (the snapshot's source) and on the hub (the live stream). */
export class Revocations {
  /** The feed as API servers hold it, for the checks this server makes itself (introspection…). */
  private readonly applied: RevocationSet;
  private cursor = 0;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: RevocationLog,
    readonly hub: RevocationHub,
    /** How long an entry must live: the longest access token it could affect, plus skew. */
    private readonly entryTtlSeconds: number,
    clock: () => number = Date.now,
  ) {
    this.applied = new RevocationSet({ clock });
  }

  /**
   * True when the feed revokes these claims (their `sid`, or their `sub` before a user-wide
   * `not_before`), by the same rule as API servers. Reads what the store added since the last
   * call first (seqs become visible in order), so every instance sees every entry.
   */
  async isRevoked(claims: RevocableClaims, now = Date.now()): Promise<boolean> {
    // One read at a time, each after the call began: an entry recorded before it is never missed.
    const read = this.reading.then(() => this.catchUp(now));
    this.reading = read.catch(() => undefined);
    await read;
    return this.applied.isRevoked(claims);
  }

  private async catchUp(now: number): Promise<void> {
    for (;;) {
      const batch = await this.log.listRevocations(this.cursor, Math.floor(now / 1000), 10_000);
      for (const e of batch) this.applied.add(toFeedEntry(e));
      if (batch.length > 0) this.cursor = batch[batch.length - 1]!.seq;
      if (batch.length < 10_000) return;
    }
  }

  async revokeSessions(sids: string[], reason: string, now = Date.now()): Promise<RevocationEntry[]> {
    const expiresAt = Math.ceil(now / 1000) + this.entryTtlSeconds;
    return this.record(sids.map((sid) => ({ sid, sub: null, notBefore: null, expiresAt, reason })));
  }

  /** Every token of `sub` issued before `now` dies. */
  async revokeUser(sub: string, reason: string, now = Date.now()): Promise<RevocationEntry[]> {
    const nowSeconds = Math.ceil(now / 1000);
    return this.record([
      { sid: null, sub, notBefore: nowSeconds, expiresAt: nowSeconds + this.entryTtlSeconds, reason },
    ]);
  }

  private async record(entries: NewRevocation[]): Promise<RevocationEntry[]> {
    if (entries.length === 0) return [];
    const stored = await this.log.appendRevocations(entries);
    this.hub.onRecorded?.(stored);
    this.hub.deliver(stored);
    await this.hub.broadcast?.(stored).catch(() => undefined);
    return stored;
  }

  /** The live entries recorded after `afterCursor`, in seq order (at most 100,000). */
  after(afterCursor: number, now = Date.now()): Promise<RevocationEntry[]> {
    return this.log.listRevocations(afterCursor, Math.floor(now / 1000), 100_000);
  }

  async snapshot(afterCursor: number, now = Date.now()): Promise<{ cursor: number; entries: FeedEntry[] }> {
    const entries = await this.after(afterCursor, now);
    const cursor = entries.length > 0 ? entries[entries.length - 1]!.seq : afterCursor;
    return { cursor, entries: entries.map(toFeedEntry) };
  }
}
