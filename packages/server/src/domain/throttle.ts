import { isIPv6 } from 'node:net';
import type { Config } from '../config.js';
import { TesseraError } from '../errors.js';
import type { Counters } from '../store/ports.js';

const WINDOW_MS = 15 * 60_000;
/** Invalid refresh tokens one IP may send in a window before it is locked out. */
const REFRESH_FAILURES_PER_IP = 100;

/**
 * The client a per-address limit counts: an IPv4 address as it is, an IPv6 one by its /64 (one
 * subscriber or host usually gets a whole /64, so its addresses are one client), an IPv4-mapped
 * IPv6 one as its IPv4 address.
 */
export function addressKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const [head = '', tail] = ip.split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? front : [...front, ...Array(8 - width(front) - width(back)).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** What one attempt holds while its password (or token) is checked. */
export interface Reservation {
  /** Counter keys this attempt added one to. */
  readonly keys: readonly string[];
  /** Which reserved key reached its limit with this attempt, for the lock and the audit note. */
  readonly atLimit: readonly { key: string; count: number }[];
}

interface Limit {
  key: string;
  max: number;
}

/**
 * Throttling for password checks and refresh tokens, per account and per IP, with the counters
 * port shared by every instance of a cluster, so they count together.
 *
 * An attempt reserves its place in every counter atomically before any password work, so
 * however many requests arrive at once, at most `max` of them are ever checked per window;
 * the rest get `too_many_attempts` at once and give their place back. A failure keeps its place;
 * the failure that fills a counter locks the key for the rest of the window. A success gives its
 * place back (or clears the account's count).
 */
export class Throttle {
  constructor(
    private readonly counters: Counters,
    private readonly config: Pick<Config, 'loginMaxFailuresPerAccount' | 'loginMaxFailuresPerIp'>,
    private readonly now: () => number,
  ) {}

  /** Reserves a login (or current-password) check; throws too_many_attempts when over a limit. */
  reserveLogin(account: string, ip: string | null): Promise<Reservation> {
    const limits: Limit[] = [{ key: `login:acct:${account}`, max: this.config.loginMaxFailuresPerAccount }];
    if (ip) limits.push({ key: `login:ip:${addressKey(ip)}`, max: this.config.loginMaxFailuresPerIp });
    return this.reserve(limits, 'Too many failed attempts; try again later.');
  }

  /** A checked password was wrong: its places stay taken; a full counter locks its key. */
  async loginFailed(reservation: Reservation): Promise<string | undefined> {
    const until = this.now() + WINDOW_MS;
    const notes: string[] = [];
    for (const { key, count } of reservation.atLimit) {
      await this.counters.setLock(key, until);
      notes.push(`${key.startsWith('login:ip:') ? 'ip' : 'account'} locked after ${count} failures`);
    }
    return notes.length > 0 ? notes.join('; ') : undefined;
  }

  /** The password was right: the account starts over and the IP gets its place back. */
  async loginSucceeded(reservation: Reservation): Promise<void> {
    const [account, ...others] = reservation.keys;
    if (account) await this.counters.resetCounter(account);
    await this.release(others);
  }

  /** Reserves a refresh-token check for a client address (none without an address). */
  reserveRefresh(ip: string | null): Promise<Reservation> {
    if (!ip) return Promise.resolve({ keys: [], atLimit: [] });
    return this.reserve(
      [{ key: `refresh:ip:${addressKey(ip)}`, max: REFRESH_FAILURES_PER_IP }],
      'Too many invalid refresh tokens; try again later.',
    );
  }

  /** A valid refresh token: its place is given back, so only invalid ones fill the counter. */
  refreshSucceeded(reservation: Reservation): Promise<void> {
    return this.release(reservation.keys);
  }

  async refreshFailed(reservation: Reservation): Promise<void> {
    const until = this.now() + WINDOW_MS;
    for (const { key } of reservation.atLimit) await this.counters.setLock(key, until);
  }

  /** A plain fixed-window limit (registration): throws too_many_attempts past `max`. */
  async limit(key: string, max: number, windowMs: number): Promise<void> {
    const now = this.now();
    const count = await this.counters.hitCounter(key, windowMs, now);
    if (count > max) {
      throw new TesseraError('too_many_attempts', 'Too many requests; try again later.', {
        retryAfterSeconds: Math.ceil(windowMs / 1000),
      });
    }
  }

  private async reserve(limits: Limit[], message: string): Promise<Reservation> {
    const now = this.now();
    const locks = await Promise.all(limits.map((l) => this.counters.getLock(l.key, now)));
    const lockedUntil = Math.max(0, ...locks);
    if (lockedUntil > now) throw tooMany(message, lockedUntil - now);
    const counts = await Promise.all(limits.map((l) => this.counters.hitCounter(l.key, WINDOW_MS, now)));
    const keys = limits.map((l) => l.key);
    if (counts.some((count, i) => count > limits[i]!.max)) {
      // Over the limit only because others are in flight: give the places back, refuse this one.
      await this.release(keys);
      throw tooMany(message, 1000);
    }
    const atLimit = limits.flatMap((l, i) => (counts[i] === l.max ? [{ key: l.key, count: l.max }] : []));
    return { keys, atLimit };
  }

  private async release(keys: readonly string[]): Promise<void> {
    const now = this.now();
    await Promise.all(keys.map((key) => this.counters.hitCounter(key, WINDOW_MS, now, -1)));
  }
}

function tooMany(message: string, waitMs: number): TesseraError {
  return new TesseraError('too_many_attempts', message, {
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  });
}
