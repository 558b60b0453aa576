import type { Counters } from './ports.js';
import type { RedisBackend } from './redis.js';

/*
 * Counters and locks on Redis, under the deployment's prefix P:
 *
 *   P c:{<key>}   hash    {n, end}: the count and the end of its window
 *   P l:{<key>}   string  the lock's end
 *
 * Each key is its own hash tag: every step touches one key, so on a Redis Cluster counters spread
 * over the nodes. Keys expire a little after their window or lock ends.
 */

const SCRIPTS = {
  // KEYS: counter. ARGV: now, window end for a new window, ttlMs, by.
  countersHit: `
    local by = tonumber(ARGV[4])
    local v = redis.call('HMGET', KEYS[1], 'n', 'end')
    if not v[1] or tonumber(v[2]) <= tonumber(ARGV[1]) then
      local n = math.max(0, by)
      redis.call('HSET', KEYS[1], 'n', n, 'end', ARGV[2])
      redis.call('PEXPIRE', KEYS[1], ARGV[3])
      return n
    end
    local n = redis.call('HINCRBY', KEYS[1], 'n', by)
    if n < 0 then
      redis.call('HSET', KEYS[1], 'n', 0)
      return 0
    end
    return n`,
  // KEYS: lock. ARGV: until, ttlMs. A lock only ever grows.
  countersLock: `
    local cur = redis.call('GET', KEYS[1])
    if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1`,
} as const;

/** Rate-limit counters and lockouts, each key one atomic script or command. */
export class RedisCounters implements Counters {
  constructor(private readonly redis: RedisBackend) {
    redis.define(SCRIPTS);
  }

  counterKey(key: string): string {
    return `${this.redis.prefix}c:{${key}}`;
  }

  lockKey(key: string): string {
    return `${this.redis.prefix}l:{${key}}`;
  }

  hitCounter(key: string, windowMs: number, now: number, by = 1): Promise<number> {
    return this.redis.script<number>(
      'countersHit',
      [this.counterKey(key)],
      [now, now + windowMs, windowMs + 1000, by],
    );
  }

  async getCounter(key: string, now: number): Promise<number> {
    const [n, end] = await this.redis.cmd((r) => r.hmget(this.counterKey(key), 'n', 'end'));
    return n != null && end != null && Number(end) > now ? Number(n) : 0;
  }

  async resetCounter(key: string): Promise<void> {
    await this.redis.cmd((r) => r.del(this.counterKey(key)));
  }

  async setLock(key: string, until: number): Promise<void> {
    await this.redis.script('countersLock', [this.lockKey(key)], [until, this.redis.ttl(until)]);
  }

  async getLock(key: string, now: number): Promise<number> {
    const v = await this.redis.cmd((r) => r.get(this.lockKey(key)));
    return v !== null && Number(v) > now ? Number(v) : 0;
  }
}
