import type { Config } from '../config.js';
import { TesseraError } from '../errors.js';
import type { Store } from '../store/types.js';

const WINDOW_MS = 15 * 60_000;
const MAX_LOCK_MS = 15 * 60_000;
/** Invalid refresh tokens one IP may send in a window before it is locked out. */
const REFRESH_FAILURES_PER_IP = 100;

/**
 * Login throttling with exponential lockout, per account and per IP. Counters live in the
 * store, so every instance of a cluster counts together.
 */
export class Throttle {
  constructor(
    private readonly store: Store,
    private readonly config: Pick<Config, 'loginMaxFailuresPerAccount' | 'loginMaxFailuresPerIp'>,
    private readonly now: () => number,
  ) {}

  async checkLogin(account: string, ip: string | null): Promise<void> {
    const now = this.now();
    const [accountLock, ipLock] = await Promise.all([
      this.store.getLock(`login:acct:${account}`, now),
      ip ? this.store.getLock(`login:ip:${ip}`, now) : Promise.resolve(0),
    ]);
    const until = Math.max(accountLock, ipLock);
    if (until > now) {
      throw new TesseraError('too_many_attempts', 'Too many failed attempts; try again later.', {
        retryAfterSeconds: Math.ceil((until - now) / 1000),
      });
    }
  }

  /** Counts a failure; returns a note when it set a lock (for the audit trail), else undefined. */
  async loginFailed(account: string, ip: string | null): Promise<string | undefined> {
    const now = this.now();
    const notes: string[] = [];
    const failures = await this.store.hitCounter(`login:acct:${account}`, WINDOW_MS, now);
    const over = failures - this.config.loginMaxFailuresPerAccount;
    if (over >= 0) {
      await this.store.setLock(`login:acct:${account}`, now + lockMs(over));
      notes.push(`account locked ${lockMs(over) / 1000} s after ${failures} failures`);
    }
    if (ip) {
      const ipFailures = await this.store.hitCounter(`login:ip:${ip}`, WINDOW_MS, now);
      const ipOver = ipFailures - this.config.loginMaxFailuresPerIp;
      if (ipOver >= 0) {
        await this.store.setLock(`login:ip:${ip}`, now + lockMs(ipOver));
        notes.push(`ip locked ${lockMs(ipOver) / 1000} s after ${ipFailures} failures`);
      }
    }
    return notes.length > 0 ? notes.join('; ') : undefined;
  }

  async loginSucceeded(account: string): Promise<void> {
    await this.store.resetCounter(`login:acct:${account}`);
  }

  /** Refuses a client that has sent too many invalid refresh tokens lately. */
  async checkRefresh(ip: string | null): Promise<void> {
    if (!ip) return;
    const now = this.now();
    const until = await this.store.getLock(`refresh:ip:${ip}`, now);
    if (until > now) {
      throw new TesseraError('too_many_attempts', 'Too many invalid refresh tokens; try again later.', {
        retryAfterSeconds: Math.ceil((until - now) / 1000),
      });
    }
  }

  async refreshFailed(ip: string | null): Promise<void> {
    if (!ip) return;
    const now = this.now();
    const failures = await this.store.hitCounter(`refresh:ip:${ip}`, WINDOW_MS, now);
    const over = failures - REFRESH_FAILURES_PER_IP;
    if (over >= 0) await this.store.setLock(`refresh:ip:${ip}`, now + lockMs(over));
  }

  /** A plain fixed-window limit (registration, refresh): throws too_many_attempts past `max`. */
  async limit(key: string, max: number, windowMs: number): Promise<void> {
    const now = this.now();
    const count = await this.store.hitCounter(key, windowMs, now);
    if (count > max) {
      throw new TesseraError('too_many_attempts', 'Too many requests; try again later.', {
        retryAfterSeconds: Math.ceil(windowMs / 1000),
      });
    }
  }
}

/** 1 s after the limit, doubling with each further failure, capped at 15 minutes. */
export function lockMs(over: number): number {
  return Math.min(MAX_LOCK_MS, 1000 * 2 ** Math.min(over, 20));
}
