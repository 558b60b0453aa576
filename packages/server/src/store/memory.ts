import type { Counters } from './ports.js';

interface Window {
  count: number;
  end: number;
}

/**
 * Rate-limit counters and lockouts in the process, for the embedded deployment (one serving
 * process owns the SQLite file, which it holds locked: see lockDataFolder, so nothing else needs
 * to see them). Every step is synchronous, so each one is atomic on the event loop; a restart
 * forgets them, as Redis forgets its own. Entries leave at the end of their window: a sweep runs
 * every `sweepMs`, so memory stays bounded by what the rate limits let in during one window.
 */
export class MemoryCounters implements Counters {
  readonly kind = 'memory';
  private readonly counters = new Map<string, Window>();
  private readonly locks = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: { sweepMs?: number; now?: () => number } = {}) {
    const now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(now()), options.sweepMs ?? 60_000);
    this.sweeper.unref();
  }

  hitCounter(key: string, windowMs: number, now: number, by = 1): Promise<number> {
    const live = this.counters.get(key);
    if (!live || live.end <= now) {
      const count = Math.max(0, by);
      this.counters.set(key, { count, end: now + windowMs });
      return Promise.resolve(count);
    }
    live.count = Math.max(0, live.count + by);
    return Promise.resolve(live.count);
  }

  getCounter(key: string, now: number): Promise<number> {
    const live = this.counters.get(key);
    return Promise.resolve(live && live.end > now ? live.count : 0);
  }

  resetCounter(key: string): Promise<void> {
    this.counters.delete(key);
    return Promise.resolve();
  }

  setLock(key: string, until: number): Promise<void> {
    if ((this.locks.get(key) ?? 0) < until) this.locks.set(key, until);
    return Promise.resolve();
  }

  getLock(key: string, now: number): Promise<number> {
    const until = this.locks.get(key) ?? 0;
    return Promise.resolve(until > now ? until : 0);
  }

  /** Drops every counter and lock whose end has passed. */
  sweep(now: number): void {
    for (const [key, w] of this.counters) if (w.end <= now) this.counters.delete(key);
    for (const [key, until] of this.locks) if (until <= now) this.locks.delete(key);
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    this.counters.clear();
    this.locks.clear();
    return Promise.resolve();
  }
}
