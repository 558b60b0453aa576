import { Redis } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import type { Backend, Counters } from './ports.js';
import type {
  AuditEvent,
  AuditQuery,
  NewAuditEvent,
  NewRevocation,
  RefreshTokenRecord,
  RevocationEntry,
  SessionRecord,
  SigningKeyRecord,
  UserRecord,
} from './types.js';

type RotateOutcome =
  /** The caller won: the token is now used and the successor stored. */
  | { outcome: 'rotated' }
  /** Used before, within the grace window: the caller answers with the same successor. */
  | { outcome: 'grace' }
  /** Used before, outside the grace window: the whole family has been revoked. */
  | { outcome: 'reused'; sessionId: string }
  /** No such live token (unknown, expired, or its session is gone). */
  | { outcome: 'invalid' };

interface RotateRequest {
  id: string;
  successor: RefreshTokenRecord;
  now: number;
  graceMs: number;
  /** New idle end for the family session. */
  sessionIdleExpiresAt: number;
}

/*
 * Key layout, under `prefix`:
 *   u:<id>        hash  user             un:<username>  string  user id      users  zset  createdAt → id
 *   s:<id>        hash  session          us:<userId>    zset    createdAt → session id
 *   rt:<id>       hash  refresh token
 *   k:<kid>       hash  signing key      kids           set     kids of the ring
 *   rev           zset  seq → "seq|json" revx           zset    expiresAt → same member    revseq  counter
 *   c:<key>       hash  counter {n, end} l:<key>        string  lock end
 * Absent hash fields stand for null. Every change that must be atomic is one Lua script; scripts
 * only copy numbers they were given as strings, never print Lua doubles, so ms times stay exact.
 * Scripts that follow a reference (token → session) build that key from the prefix in ARGV:
 * fine on one Redis, not Redis Cluster.
 */

const LIB = `
local function session_live(key, now)
  local v = redis.call('HMGET', key, 'revokedAt', 'expiresAt', 'idleExpiresAt')
  if not v[2] or v[1] then return false end
  return tonumber(v[2]) > now and tonumber(v[3]) > now
end
local function revoke(key, now, reason)
  redis.call('HSET', key, 'revokedAt', now, 'revokeReason', reason)
end
`;

const SCRIPTS = {
  // KEYS: u:<id>, un:<username>, users. ARGV: id, username, createdAt, then the user's fields.
  createUser: `
    if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
    redis.call('SET', KEYS[2], ARGV[1])
    redis.call('HSET', KEYS[1], unpack(ARGV, 4))
    redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
    return 1`,
  // KEYS: hash. ARGV: field/value pairs. Never creates a partial record.
  updateIfExists: `
    if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
    redis.call('HSET', KEYS[1], unpack(ARGV))
    return 1`,
  // KEYS: any hashes. Returns each as a flat field/value list (empty when missing).
  hgetallMany: `
    local out = {}
    for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
    return out`,
  // KEYS: s:<id>, us:<userId>, u:<userId>. ARGV: ttlMs, createdAt, id, then the session's fields.
  createSession: `
    if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ERR tessera: session id exists') end
    if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('ERR tessera: no such user') end
    redis.call('HSET', KEYS[1], unpack(ARGV, 4))
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
    return 1`,
  // KEYS: s:<id>. ARGV: lastSeenAt, idleExpiresAt.
  touchSession: `
    local v = redis.call('HMGET', KEYS[1], 'revokedAt', 'lastSeenAt', 'idleExpiresAt', 'expiresAt')
    if not v[2] or v[1] then return 0 end
    local last, idle = v[2], v[3]
    if tonumber(ARGV[1]) > tonumber(last) then last = ARGV[1] end
    if tonumber(ARGV[2]) > tonumber(idle) then idle = ARGV[2] end
    if tonumber(idle) > tonumber(v[4]) then idle = v[4] end
    redis.call('HSET', KEYS[1], 'lastSeenAt', last, 'idleExpiresAt', idle)
    return 1`,
  // KEYS: us:<userId>. ARGV: session key prefix. Drops index entries whose session has expired away.
  listSessions: `
    local out = {}
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      local h = redis.call('HGETALL', ARGV[1] .. id)
      if #h == 0 then redis.call('ZREM', KEYS[1], id) else table.insert(out, h) end
    end
    return out`,
  // KEYS: s:<id>. ARGV: now, reason.
  revokeSession: `${LIB}
    if not session_live(KEYS[1], tonumber(ARGV[1])) then return 0 end
    revoke(KEYS[1], ARGV[1], ARGV[2])
    return 1`,
  // KEYS: us:<userId>. ARGV: now, reason, exceptId, session key prefix.
  revokeUserSessions: `${LIB}
    local out = {}
    local now = tonumber(ARGV[1])
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      local key = ARGV[4] .. id
      if redis.call('EXISTS', key) == 0 then
        redis.call('ZREM', KEYS[1], id)
      elseif id ~= ARGV[3] and session_live(key, now) then
        revoke(key, ARGV[1], ARGV[2])
        table.insert(out, id)
      end
    end
    return out`,
  // KEYS: rt:<id>, s:<sessionId>. ARGV: ttlMs, then the token's fields.
  insertRefreshToken: `
    if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ERR tessera: refresh token id exists') end
    if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('ERR tessera: no such session') end
    redis.call('HSET', KEYS[1], unpack(ARGV, 2))
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    return 1`,
  // KEYS: rt:<id>, rt:<successorId>. ARGV: now, graceMs, sessionIdleExpiresAt, session key prefix,
  // successor ttlMs, then the successor's fields.
  rotateRefreshToken: `${LIB}
    local t = redis.call('HMGET', KEYS[1], 'sessionId', 'expiresAt', 'usedAt')
    if not t[1] then return {'invalid'} end
    local now = tonumber(ARGV[1])
    local skey = ARGV[4] .. t[1]
    if tonumber(t[2]) <= now or not session_live(skey, now) then return {'invalid'} end
    if not t[3] then
      redis.call('HSET', KEYS[1], 'usedAt', ARGV[1])
      if redis.call('EXISTS', KEYS[2]) == 0 then
        redis.call('HSET', KEYS[2], unpack(ARGV, 6))
        redis.call('PEXPIRE', KEYS[2], ARGV[5])
      end
      local idle = ARGV[3]
      local exp = redis.call('HGET', skey, 'expiresAt')
      if tonumber(idle) > tonumber(exp) then idle = exp end
      redis.call('HSET', skey, 'lastSeenAt', ARGV[1], 'idleExpiresAt', idle)
      return {'rotated'}
    end
    if now - tonumber(t[3]) <= tonumber(ARGV[2]) then return {'grace'} end
    revoke(skey, ARGV[1], 'refresh_reuse')
    return {'reused', t[1]}`,
  // KEYS: kids. ARGV: key prefix.
  listSigningKeys: `
    local out = {}
    for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1])) do table.insert(out, redis.call('HGETALL', ARGV[1] .. kid)) end
    return out`,
  // KEYS: kids. ARGV: key prefix, then per key: kid, field count, fields.
  initSigningKeys: `
    if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
    local i = 2
    while i <= #ARGV do
      local kid, n = ARGV[i], tonumber(ARGV[i + 1])
      redis.call('HSET', ARGV[1] .. kid, unpack(ARGV, i + 2, i + 1 + n))
      redis.call('SADD', KEYS[1], kid)
      i = i + 2 + n
    end
    return 1`,
  // KEYS: kids. ARGV: key prefix, expected current kid ('' for none), retireUntil, new kid, its fields.
  rotateSigningKeys: `
    local current, nexts, cur = {}, {}, ''
    for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
      local st = redis.call('HGET', ARGV[1] .. kid, 'state')
      if st == 'current' then table.insert(current, kid); cur = kid elseif st == 'next' then table.insert(nexts, kid) end
    end
    if cur ~= ARGV[2] then return 0 end
    if redis.call('EXISTS', ARGV[1] .. ARGV[4]) == 1 then return redis.error_reply('ERR tessera: kid exists') end
    for _, kid in ipairs(current) do redis.call('HSET', ARGV[1] .. kid, 'state', 'retired', 'retireUntil', ARGV[3], 'privateKeyEnc', '') end
    for _, kid in ipairs(nexts) do redis.call('HSET', ARGV[1] .. kid, 'state', 'current') end
    redis.call('HSET', ARGV[1] .. ARGV[4], unpack(ARGV, 5))
    redis.call('SADD', KEYS[1], ARGV[4])
    return 1`,
  // KEYS: kids. ARGV: key prefix, now.
  deleteRetiredKeys: `
    local n = 0
    for _, kid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
      local v = redis.call('HMGET', ARGV[1] .. kid, 'state', 'retireUntil')
      if v[1] == 'retired' and v[2] and tonumber(v[2]) <= tonumber(ARGV[2]) then
        redis.call('DEL', ARGV[1] .. kid)
        redis.call('SREM', KEYS[1], kid)
        n = n + 1
      end
    end
    return n`,
  // KEYS: revseq, rev, revx. ARGV: per entry expiresAt, json. Returns the seqs, in order.
  appendRevocations: `
    local out = {}
    for i = 1, #ARGV, 2 do
      local seq = redis.call('INCR', KEYS[1])
      local member = seq .. '|' .. ARGV[i + 1]
      redis.call('ZADD', KEYS[2], seq, member)
      redis.call('ZADD', KEYS[3], ARGV[i], member)
      table.insert(out, seq)
    end
    return out`,
  // KEYS: rev, revx. ARGV: afterSeq, nowSeconds, limit.
  listRevocations: `
    local out, offset = {}, 0
    local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
    while #out < limit do
      local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', offset, 256)
      if #batch == 0 then break end
      for _, m in ipairs(batch) do
        local exp = redis.call('ZSCORE', KEYS[2], m)
        if exp and tonumber(exp) > now then
          table.insert(out, m)
          if #out >= limit then break end
        end
      end
      offset = offset + #batch
    end
    return out`,
  // KEYS: auditseq, audit. ARGV: event json (without seq). An append-only list, newest first.
  appendAuditEvent: `
    local seq = redis.call('INCR', KEYS[1])
    redis.call('LPUSH', KEYS[2], seq .. '|' .. ARGV[1])
    return seq`,
  // KEYS: rev, revx. ARGV: nowSeconds.
  pruneRevocations: `
    local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
    for _, m in ipairs(gone) do
      redis.call('ZREM', KEYS[1], m)
      redis.call('ZREM', KEYS[2], m)
    end
    return #gone`,
  // KEYS: c:<key>. ARGV: now, window end for a new window, ttlMs, by.
  hitCounter: `
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
  // KEYS: l:<key>. ARGV: until, ttlMs. A lock only ever grows.
  setLock: `
    local cur = redis.call('GET', KEYS[1])
    if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type Arg = string | number;
type ScriptFns = Record<ScriptName, (...args: Arg[]) => Promise<unknown>>;

export interface RedisStoreOptions {
  /** Prepended to every key; tests use a random one per run. */
  prefix?: string;
  connectTimeoutMillis?: number;
  /** A command that gets no answer within this rejects with StoreUnavailableError. */
  commandTimeoutMillis?: number;
  /** How long records are kept past their own expiry (clock skew, audit of late reuse). */
  retainMs?: number;
  /** CLIENT SETNAME, to find this store's connections in CLIENT LIST. */
  connectionName?: string;
}

/** Reply errors that mean "this Redis can't serve now", not "the script is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|OOM|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/;

function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return UNAVAILABLE_REPLY.test(err.message);
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError) return false;
  // Connection refused or reset, "Stream isn't writeable", "Connection is closed", command
  // timeouts and MaxRetriesPerRequestError: all mean Redis is not answering.
  return true;
}

function wrap(err: unknown): unknown {
  return isUnavailable(err) ? new StoreUnavailableError(err) : err;
}

/** Field/value list of a record, leaving nulls out. */
function fields(record: Record<string, string | number | boolean | null>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (v === null) continue;
    out.push(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  return out;
}

function toMap(flat: unknown): Map<string, string> {
  const list = flat as string[];
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) m.set(list[i]!, list[i + 1]!);
  return m;
}

const str = (m: Map<string, string>, k: string): string => m.get(k) ?? '';
const num = (m: Map<string, string>, k: string): number => Number(m.get(k));
const optStr = (m: Map<string, string>, k: string): string | null => m.get(k) ?? null;
const optNum = (m: Map<string, string>, k: string): number | null => (m.has(k) ? Number(m.get(k)) : null);

function userFields(u: UserRecord): string[] {
  return fields({
    id: u.id,
    username: u.username,
    passwordHash: u.passwordHash,
    roles: JSON.stringify(u.roles),
    disabled: u.disabled,
    createdAt: u.createdAt,
    passwordChangedAt: u.passwordChangedAt,
  });
}

function toUser(m: Map<string, string>): UserRecord {
  return {
    id: str(m, 'id'),
    username: str(m, 'username'),
    passwordHash: str(m, 'passwordHash'),
    roles: JSON.parse(m.get('roles') ?? '[]') as string[],
    disabled: m.get('disabled') === '1',
    createdAt: num(m, 'createdAt'),
    passwordChangedAt: num(m, 'passwordChangedAt'),
  };
}

function toSession(m: Map<string, string>): SessionRecord {
  return {
    id: str(m, 'id'),
    userId: str(m, 'userId'),
    mode: str(m, 'mode') as SessionRecord['mode'],
    secretHash: optStr(m, 'secretHash'),
    createdAt: num(m, 'createdAt'),
    lastSeenAt: num(m, 'lastSeenAt'),
    expiresAt: num(m, 'expiresAt'),
    idleExpiresAt: num(m, 'idleExpiresAt'),
    userAgent: optStr(m, 'userAgent'),
    ip: optStr(m, 'ip'),
    revokedAt: optNum(m, 'revokedAt'),
    revokeReason: optStr(m, 'revokeReason'),
  };
}

function refreshFields(t: RefreshTokenRecord): string[] {
  return fields({ ...t });
}

function toRefresh(m: Map<string, string>): RefreshTokenRecord {
  return {
    id: str(m, 'id'),
    sessionId: str(m, 'sessionId'),
    secretHash: str(m, 'secretHash'),
    parentId: optStr(m, 'parentId'),
    createdAt: num(m, 'createdAt'),
    expiresAt: num(m, 'expiresAt'),
    usedAt: optNum(m, 'usedAt'),
  };
}

function keyFields(k: SigningKeyRecord): string[] {
  return fields({ ...k, publicJwk: JSON.stringify(k.publicJwk) });
}

function toKey(m: Map<string, string>): SigningKeyRecord {
  return {
    kid: str(m, 'kid'),
    alg: str(m, 'alg'),
    state: str(m, 'state') as SigningKeyRecord['state'],
    publicJwk: JSON.parse(m.get('publicJwk') ?? '{}') as Record<string, unknown>,
    privateKeyEnc: str(m, 'privateKeyEnc'),
    createdAt: num(m, 'createdAt'),
    retireUntil: optNum(m, 'retireUntil'),
  };
}

/** Members of the revocation log are "seq|json": unique, and carrying their own cursor. */
function toRevocation(member: string): RevocationEntry {
  const bar = member.indexOf('|');
  const e = JSON.parse(member.slice(bar + 1)) as NewRevocation;
  return {
    seq: Number(member.slice(0, bar)),
    sid: e.sid,
    sub: e.sub,
    notBefore: e.notBefore,
    expiresAt: e.expiresAt,
    reason: e.reason,
  };
}

/**
 * The whole Store on Redis alone. Reads are plain commands; every multi-step change is one Lua
 * script, so concurrent instances never interleave inside it. A Redis that does not answer turns
 * into a prompt StoreUnavailableError (no offline queue, one retry, command timeout), and the
 * client reconnects on its own when Redis is back.
 */
export class RedisStore implements Counters, Backend {
  readonly kind = 'redis';
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly retainMs: number;

  private constructor(redis: Redis, prefix: string, retainMs: number) {
    this.redis = redis;
    this.prefix = prefix;
    this.retainMs = retainMs;
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
  }

  /** Connects; rejects with StoreUnavailableError when Redis cannot be reached. */
  static async open(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const redis = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: options.connectTimeoutMillis ?? 2000,
      commandTimeout: options.commandTimeoutMillis ?? 2000,
      retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
      // After a failed connect ioredis keeps a timer this long for a socket that is already gone.
      disconnectTimeout: 200,
      ...(options.connectionName ? { connectionName: options.connectionName } : {}),
    });
    // Errors reach callers as rejected commands; without a listener ioredis would log each one.
    redis.on('error', () => {});
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw new StoreUnavailableError(err);
    }
    return new RedisStore(redis, options.prefix ?? 'tessera:', options.retainMs ?? 3_600_000);
  }

  private k(...parts: string[]): string {
    return this.prefix + parts.join('');
  }

  /** Time to live for a record whose own end is `until` (ms since the epoch), with some retention after it. */
  private ttl(until: number): number {
    return Math.max(0, Math.ceil(until - Date.now())) + this.retainMs;
  }

  private async script<T>(name: ScriptName, keys: string[], args: Arg[]): Promise<T> {
    try {
      return (await (this.redis as unknown as ScriptFns)[name](keys.length, ...keys, ...args)) as T;
    } catch (err) {
      throw wrap(err);
    }
  }

  private async cmd<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    try {
      return await fn(this.redis);
    } catch (err) {
      throw wrap(err);
    }
  }

  private async hashes(keys: string[]): Promise<Map<string, string>[]> {
    if (keys.length === 0) return [];
    const rows = await this.script<unknown[]>('hgetallMany', keys, []);
    return rows.map(toMap).filter((m) => m.size > 0);
  }

  async createUser(u: UserRecord): Promise<UserRecord | null> {
    const ok = await this.script<number>(
      'createUser',
      [this.k('u:', u.id), this.k('un:', u.username), this.k('users')],
      [u.id, u.username, u.createdAt, ...userFields(u)],
    );
    return ok === 1 ? u : null;
  }

  async getUserById(id: string): Promise<UserRecord | null> {
    const [m] = await this.hashes([this.k('u:', id)]);
    return m ? toUser(m) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const id = await this.cmd((r) => r.get(this.k('un:', username)));
    return id === null ? null : this.getUserById(id);
  }

  async listUsers(limit: number, offset: number): Promise<UserRecord[]> {
    if (limit <= 0) return [];
    // Equal scores order by member, so this is ORDER BY created_at, id.
    const ids = await this.cmd((r) => r.zrange(this.k('users'), offset, offset + limit - 1));
    return (await this.hashes(ids.map((id) => this.k('u:', id)))).map(toUser);
  }

  async setPasswordHash(userId: string, passwordHash: string, changedAt: number): Promise<void> {
    await this.script(
      'updateIfExists',
      [this.k('u:', userId)],
      fields({ passwordHash, passwordChangedAt: changedAt }),
    );
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<boolean> {
    return (await this.script<number>('updateIfExists', [this.k('u:', userId)], fields({ disabled }))) === 1;
  }

  async createSession(s: SessionRecord): Promise<void> {
    await this.script(
      'createSession',
      [this.k('s:', s.id), this.k('us:', s.userId), this.k('u:', s.userId)],
      [this.ttl(s.expiresAt), s.createdAt, s.id, ...fields({ ...s })],
    );
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const [m] = await this.hashes([this.k('s:', id)]);
    return m ? toSession(m) : null;
  }

  async touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    await this.script('touchSession', [this.k('s:', id)], [lastSeenAt, idleExpiresAt]);
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const rows = await this.script<unknown[]>('listSessions', [this.k('us:', userId)], [this.k('s:')]);
    return rows
      .map((h) => toSession(toMap(h)))
      .filter((s) => s.revokedAt === null && s.expiresAt > now && s.idleExpiresAt > now)
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    return (await this.script<number>('revokeSession', [this.k('s:', id)], [now, reason])) === 1;
  }

  revokeUserSessions(userId: string, now: number, reason: string, exceptId?: string): Promise<string[]> {
    return this.script<string[]>(
      'revokeUserSessions',
      [this.k('us:', userId)],
      [now, reason, exceptId ?? '', this.k('s:')],
    );
  }

  async insertRefreshToken(t: RefreshTokenRecord): Promise<void> {
    await this.script(
      'insertRefreshToken',
      [this.k('rt:', t.id), this.k('s:', t.sessionId)],
      [this.ttl(t.expiresAt), ...refreshFields(t)],
    );
  }

  async getRefreshToken(id: string): Promise<RefreshTokenRecord | null> {
    const [m] = await this.hashes([this.k('rt:', id)]);
    return m ? toRefresh(m) : null;
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateOutcome> {
    const s = req.successor;
    const [outcome, sessionId] = await this.script<[string, string | undefined]>(
      'rotateRefreshToken',
      [this.k('rt:', req.id), this.k('rt:', s.id)],
      [
        req.now,
        req.graceMs,
        req.sessionIdleExpiresAt,
        this.k('s:'),
        this.ttl(s.expiresAt),
        ...refreshFields({ ...s, usedAt: null }),
      ],
    );
    switch (outcome) {
      case 'rotated':
        return { outcome: 'rotated' };
      case 'grace':
        return { outcome: 'grace' };
      case 'reused':
        return { outcome: 'reused', sessionId: sessionId ?? '' };
      default:
        return { outcome: 'invalid' };
    }
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const rows = await this.script<unknown[]>('listSigningKeys', [this.k('kids')], [this.k('k:')]);
    return rows
      .map((h) => toKey(toMap(h)))
      .sort((a, b) => a.createdAt - b.createdAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
  }

  async initSigningKeys(keys: SigningKeyRecord[]): Promise<boolean> {
    const args: Arg[] = [this.k('k:')];
    for (const key of keys) {
      const f = keyFields(key);
      args.push(key.kid, f.length, ...f);
    }
    return (await this.script<number>('initSigningKeys', [this.k('kids')], args)) === 1;
  }

  async rotateSigningKeys(
    newNext: SigningKeyRecord,
    expectedCurrent: string | null,
    _now: number,
    retireUntil: number,
  ): Promise<boolean> {
    const ok = await this.script<number>(
      'rotateSigningKeys',
      [this.k('kids')],
      [
        this.k('k:'),
        expectedCurrent ?? '',
        retireUntil,
        newNext.kid,
        ...keyFields({ ...newNext, state: 'next', retireUntil: null }),
      ],
    );
    return ok === 1;
  }

  deleteRetiredKeys(now: number): Promise<number> {
    return this.script<number>('deleteRetiredKeys', [this.k('kids')], [this.k('k:'), now]);
  }

  async appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]> {
    if (entries.length === 0) return [];
    const args: Arg[] = [];
    for (const e of entries) {
      const body: NewRevocation = {
        sid: e.sid,
        sub: e.sub,
        notBefore: e.notBefore,
        expiresAt: e.expiresAt,
        reason: e.reason,
      };
      args.push(e.expiresAt, JSON.stringify(body));
    }
    const seqs = await this.script<number[]>(
      'appendRevocations',
      [this.k('revseq'), this.k('rev'), this.k('revx')],
      args,
    );
    return entries.map((e, i) => ({
      seq: seqs[i]!,
      sid: e.sid,
      sub: e.sub,
      notBefore: e.notBefore,
      expiresAt: e.expiresAt,
      reason: e.reason,
    }));
  }

  async listRevocations(afterSeq: number, nowSeconds: number, limit: number): Promise<RevocationEntry[]> {
    if (limit <= 0) return [];
    const members = await this.script<string[]>(
      'listRevocations',
      [this.k('rev'), this.k('revx')],
      [afterSeq, nowSeconds, limit],
    );
    return members.map(toRevocation);
  }

  pruneRevocations(nowSeconds: number): Promise<number> {
    return this.script<number>('pruneRevocations', [this.k('rev'), this.k('revx')], [nowSeconds]);
  }

  async appendAuditEvent(e: NewAuditEvent): Promise<void> {
    await this.script<number>('appendAuditEvent', [this.k('auditseq'), this.k('audit')], [JSON.stringify(e)]);
  }

  /** Filters in Node over the newest events, 1,000 at a time. */
  async listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    for (let start = 0; out.length < query.limit; start += 1000) {
      const batch = await this.cmd((r) => r.lrange(this.k('audit'), start, start + 999));
      if (batch.length === 0) break;
      for (const item of batch) {
        const bar = item.indexOf('|');
        const event = {
          seq: Number(item.slice(0, bar)),
          ...(JSON.parse(item.slice(bar + 1)) as NewAuditEvent),
        };
        if (query.beforeSeq !== undefined && event.seq >= query.beforeSeq) continue;
        if (query.userId !== undefined && event.userId !== query.userId) continue;
        if (query.type !== undefined && event.type !== query.type) continue;
        out.push(event);
        if (out.length >= query.limit) break;
      }
    }
    return out;
  }

  hitCounter(key: string, windowMs: number, now: number, by = 1): Promise<number> {
    return this.script<number>('hitCounter', [this.k('c:', key)], [now, now + windowMs, windowMs + 1000, by]);
  }

  async getCounter(key: string, now: number): Promise<number> {
    const [n, end] = await this.cmd((r) => r.hmget(this.k('c:', key), 'n', 'end'));
    return n != null && end != null && Number(end) > now ? Number(n) : 0;
  }

  async resetCounter(key: string): Promise<void> {
    await this.cmd((r) => r.del(this.k('c:', key)));
  }

  async setLock(key: string, until: number): Promise<void> {
    await this.script('setLock', [this.k('l:', key)], [until, this.ttl(until)]);
  }

  async getLock(key: string, now: number): Promise<number> {
    const v = await this.cmd((r) => r.get(this.k('l:', key)));
    return v !== null && Number(v) > now ? Number(v) : 0;
  }

  async ping(): Promise<void> {
    await this.cmd((r) => r.ping());
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
