import {
  ANY_USE,
  type LiveSession,
  type RotateRequest,
  type RotateResult,
  type SessionStore,
  type SessionUser,
  sessionIdOfRefreshToken,
} from './ports.js';
import { fields, num, optNum, optStr, type RedisBackend, str, toMap } from './redis.js';
import type { RefreshTokenRecord, SessionRecord } from './types.js';

/*
 * Sessions on Redis, the source of truth for them (each instance may hold a read for a short
 * lease, store/session-cache.ts). Key layout, under the
 * deployment's prefix P:
 *
 *   P s:{<sid>}              hash    the session, and the snapshot of its user (fields u.*)
 *   P s:{<sid>}:rt:<rid>     hash    a refresh token of that session: secretHash, parentId,
 *                                    createdAt, expiresAt, usedAt
 *   P s:{<sid>}:used         string  21 bytes per used refresh token of the session: a digest of
 *                                    its secret's hash, so a replay long after the token was used
 *                                    still counts as reuse while the full record is gone
 *   P u:{<uid>}:sessions     zset    absolute end → session id, the user's index
 *
 * Redis Cluster: a session and its refresh tokens share the hash tag {<sid>}, so they live in one
 * slot and every script below runs on one node. A refresh token is presented by its own id, and
 * that id begins with its session's id (ports.ts, refreshTokenId), so the rotate script's keys
 * (session, token, successor) are all known before the one round trip; different sessions spread
 * over the slots. The user's index has a tag of its own and is written before the session (so a
 * revoke-all that reads it sees every session that exists); entries whose session has ended are
 * dropped as the index is read and written.
 *
 * Lifetimes: a session key (and its digests) lives until its idle end plus the retention, pushed
 * on by every touch and rotation; an unused refresh token until its own end plus the retention, a
 * used one for its grace window plus the retention (a session refreshed every five minutes keeps
 * a dozen full tokens, not a week of them); the index until the latest absolute end of its
 * sessions plus the retention. Redis never grows without bound.
 *
 * Round trips: getLiveSession and getSession one (HGETALL); rotateRefreshToken,
 * sessionOfRefreshToken, touchSession and revokeSession one script; createSession two (index,
 * then session with its first refresh token); listSessions and revokeUserSessions two (the index,
 * then every session at once; listSessions a third to drop index entries of sessions gone).
 */

const LIB = `
local function live(v, now)
  return v[2] and not v[1] and tonumber(v[2]) > now and tonumber(v[3]) > now
end
-- What is kept of a used refresh token once its grace window is over: '.' and 20 hex digits
-- (80 bits) of a hash of its secret's hash. '.' is no hex digit, so a match is a whole digest.
local function digest(secretHash)
  return '.' .. string.sub(redis.sha1hex(secretHash), 1, 20)
end
local function ttl(untilMs, clock, retain)
  local t = math.ceil(tonumber(untilMs) - tonumber(clock))
  if t < 0 then t = 0 end
  return string.format('%.0f', t + tonumber(retain))
end
`;

const SCRIPTS = {
  // KEYS: index. ARGV: absolute end, session id, ttlMs, now.
  sessionsIndex: `
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
    if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
    return 1`,
  // KEYS: session[, first refresh token]. ARGV: session ttlMs, token ttlMs, n, n session fields, token fields.
  sessionsCreate: `
    if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ERR tessera: session id exists') end
    local n = tonumber(ARGV[3])
    redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + n))
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    if KEYS[2] then
      redis.call('HSET', KEYS[2], unpack(ARGV, 4 + n))
      redis.call('PEXPIRE', KEYS[2], ARGV[2])
    end
    return 1`,
  // KEYS: session. ARGV: lastSeenAt, idleExpiresAt, clock, retainMs.
  sessionsTouch: `${LIB}
    local v = redis.call('HMGET', KEYS[1], 'revokedAt', 'lastSeenAt', 'idleExpiresAt', 'expiresAt')
    if not v[2] or v[1] then return 0 end
    -- A session already over (idle or absolute end) at the touch's time stays over.
    if tonumber(v[3]) <= tonumber(ARGV[1]) or tonumber(v[4]) <= tonumber(ARGV[1]) then return 0 end
    local last, idle = v[2], v[3]
    if tonumber(ARGV[1]) > tonumber(last) then last = ARGV[1] end
    if tonumber(ARGV[2]) > tonumber(idle) then idle = ARGV[2] end
    if tonumber(idle) > tonumber(v[4]) then idle = v[4] end
    redis.call('HSET', KEYS[1], 'lastSeenAt', last, 'idleExpiresAt', idle)
    redis.call('PEXPIRE', KEYS[1], ttl(idle, ARGV[3], ARGV[4]))
    return 1`,
  // KEYS: session. ARGV: now, reason.
  sessionsRevoke: `${LIB}
    local v = redis.call('HMGET', KEYS[1], 'revokedAt', 'expiresAt', 'idleExpiresAt')
    if not live(v, tonumber(ARGV[1])) then return 0 end
    redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1], 'revokeReason', ARGV[2])
    return 1`,
  // KEYS: session, refresh token, used digests. ARGV: secretHash, now, graceMs, any use ('1' or
  // '0'). Unused and unexpired, or used within the grace window (store/ports.ts,
  // sessionOfRefreshToken). A token of which only the digest is left was used longer ago than any
  // grace window: it counts only for any use (its family's, for sign-out), as the SQL stores keep
  // it whole.
  sessionsOfRefresh: `${LIB}
    local t = redis.call('HMGET', KEYS[2], 'secretHash', 'expiresAt', 'usedAt')
    if not t[1] and ARGV[4] == '1' then
      local used = redis.call('GET', KEYS[3])
      if used and string.find(used, digest(ARGV[1]), 1, true) then return redis.call('HGETALL', KEYS[1]) end
      return {}
    end
    if t[1] ~= ARGV[1] then return {} end
    local now = tonumber(ARGV[2])
    if t[3] then
      local grace = tonumber(ARGV[3])
      if grace < 0 or now - tonumber(t[3]) > grace then return {} end
    elseif tonumber(t[2]) <= now then return {} end
    return redis.call('HGETALL', KEYS[1])`,
  // KEYS: session, refresh token, successor, used digests. ARGV: secretHash, now, graceMs,
  // idleTtlMs, clock, retainMs, successor secret hash, parent id.
  sessionsRotate: `${LIB}
    local now = tonumber(ARGV[2])
    local v = redis.call('HMGET', KEYS[1], 'revokedAt', 'expiresAt', 'idleExpiresAt', 'userId')
    local t = redis.call('HMGET', KEYS[2], 'secretHash', 'expiresAt', 'usedAt')
    if not t[1] then
      -- Used long enough ago that only its digest is kept: a replay is reuse.
      local used = redis.call('GET', KEYS[4])
      if used and live(v, now) and string.find(used, digest(ARGV[1]), 1, true) then
        redis.call('HSET', KEYS[1], 'revokedAt', ARGV[2], 'revokeReason', 'refresh_reuse')
        return {'reused', v[4]}
      end
      return {'invalid'}
    end
    if t[1] ~= ARGV[1] or not live(v, now) then return {'invalid'} end
    if not t[3] then
      -- Only an unused token's own expiry counts: a spent one replayed later is reuse.
      if tonumber(t[2]) <= now then return {'invalid'} end
      local idle = v[2]
      local slide = now + tonumber(ARGV[4])
      if slide < tonumber(idle) then idle = string.format('%.0f', slide) end
      local keep = ttl(idle, ARGV[5], ARGV[6])
      redis.call('HSET', KEYS[2], 'usedAt', ARGV[2])
      redis.call('PEXPIRE', KEYS[2], string.format('%.0f', tonumber(ARGV[3]) + tonumber(ARGV[6])))
      redis.call('APPEND', KEYS[4], digest(ARGV[1]))
      redis.call('PEXPIRE', KEYS[4], keep)
      if redis.call('EXISTS', KEYS[3]) == 0 then
        redis.call('HSET', KEYS[3], 'secretHash', ARGV[7], 'parentId', ARGV[8], 'createdAt', ARGV[2], 'expiresAt', idle)
        redis.call('PEXPIRE', KEYS[3], keep)
      end
      redis.call('HSET', KEYS[1], 'lastSeenAt', ARGV[2], 'idleExpiresAt', idle)
      redis.call('PEXPIRE', KEYS[1], keep)
      return {'rotated', redis.call('HGETALL', KEYS[1]), redis.call('HGET', KEYS[3], 'expiresAt')}
    end
    if now - tonumber(t[3]) <= tonumber(ARGV[3]) then
      -- A retry of a lost answer gets the same successor; one whose successor is spent too is reuse.
      local e = redis.call('HMGET', KEYS[3], 'expiresAt', 'usedAt')
      if not e[1] then return {'invalid'} end
      if not e[2] then return {'grace', redis.call('HGETALL', KEYS[1]), e[1]} end
    end
    redis.call('HSET', KEYS[1], 'revokedAt', ARGV[2], 'revokeReason', 'refresh_reuse')
    return {'reused', v[4]}`,
} as const;

type ScriptName = keyof typeof SCRIPTS;

function sessionFields(s: SessionRecord, u: SessionUser): string[] {
  return fields({
    ...s,
    'u.username': u.username,
    'u.roles': JSON.stringify(u.roles),
    'u.disabled': u.disabled,
  });
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

function toUser(m: Map<string, string>): SessionUser {
  return {
    id: str(m, 'userId'),
    username: str(m, 'u.username'),
    roles: JSON.parse(m.get('u.roles') ?? '[]') as string[],
    disabled: m.get('u.disabled') === '1',
  };
}

const isLive = (s: SessionRecord, now: number): boolean =>
  s.revokedAt === null && s.expiresAt > now && s.idleExpiresAt > now;

/** Sessions and refresh-token families on Redis or a Redis Cluster. */
export class RedisSessionStore implements SessionStore {
  constructor(private readonly redis: RedisBackend) {
    redis.define(SCRIPTS);
  }

  /** The key of a session; its refresh tokens and itself share the hash tag {<sid>}. */
  sessionKey(id: string): string {
    return `${this.redis.prefix}s:{${id}}`;
  }

  /** The key of a refresh token, in its session's slot; null when the id names no session. */
  refreshKey(id: string): string | null {
    const sid = sessionIdOfRefreshToken(id);
    return sid === null ? null : `${this.sessionKey(sid)}:rt:${id}`;
  }

  /** Digests of the session's used refresh tokens, for reuse detection after their grace window. */
  usedKey(sessionId: string): string {
    return `${this.sessionKey(sessionId)}:used`;
  }

  indexKey(userId: string): string {
    return `${this.redis.prefix}u:{${userId}}:sessions`;
  }

  private script<T>(name: ScriptName, keys: string[], args: (string | number)[]): Promise<T> {
    return this.redis.script<T>(name, keys, args);
  }

  private async read(id: string): Promise<Map<string, string> | null> {
    const m = new Map(Object.entries(await this.redis.cmd((r) => r.hgetall(this.sessionKey(id)))));
    return m.size > 0 ? m : null;
  }

  async createSession(
    session: SessionRecord,
    user: SessionUser,
    firstRefresh?: RefreshTokenRecord,
  ): Promise<void> {
    if (user.id !== session.userId) throw new Error('the session user is not the session owner');
    const keys = [this.sessionKey(session.id)];
    let tokenFields: string[] = [];
    if (firstRefresh) {
      if (firstRefresh.sessionId !== session.id || sessionIdOfRefreshToken(firstRefresh.id) !== session.id) {
        throw new Error('a refresh token id begins with the id of its session');
      }
      keys.push(this.refreshKey(firstRefresh.id)!);
      tokenFields = fields({
        secretHash: firstRefresh.secretHash,
        parentId: firstRefresh.parentId,
        createdAt: firstRefresh.createdAt,
        expiresAt: firstRefresh.expiresAt,
        usedAt: firstRefresh.usedAt,
      });
    }
    await this.script(
      'sessionsIndex',
      [this.indexKey(session.userId)],
      [session.expiresAt, session.id, this.redis.ttl(session.expiresAt), session.createdAt],
    );
    const own = sessionFields(session, user);
    await this.script('sessionsCreate', keys, [
      this.redis.ttl(session.idleExpiresAt),
      firstRefresh ? this.redis.ttl(firstRefresh.expiresAt) : 0,
      own.length,
      ...own,
      ...tokenFields,
    ]);
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const m = await this.read(id);
    return m ? toSession(m) : null;
  }

  async getLiveSession(id: string, now: number): Promise<LiveSession | null> {
    const m = await this.read(id);
    if (!m) return null;
    const session = toSession(m);
    return isLive(session, now) ? { session, user: toUser(m) } : null;
  }

  async touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    await this.script(
      'sessionsTouch',
      [this.sessionKey(id)],
      [lastSeenAt, idleExpiresAt, Date.now(), this.redis.retainMs],
    );
  }

  /** The ids in a user's index whose absolute end is after `now`. */
  private async indexed(userId: string, now: number): Promise<string[]> {
    return this.redis.cmd((r) => r.zrangebyscore(this.indexKey(userId), `(${now}`, '+inf'));
  }

  private async dropGone(userId: string, gone: string[]): Promise<void> {
    if (gone.length > 0) await this.redis.cmd((r) => r.zrem(this.indexKey(userId), ...gone));
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const ids = await this.indexed(userId, now);
    const rows = await Promise.all(ids.map((id) => this.read(id)));
    await this.dropGone(
      userId,
      ids.filter((_, i) => rows[i] === null),
    );
    return rows
      .filter((m): m is Map<string, string> => m !== null)
      .map(toSession)
      .filter((s) => isLive(s, now))
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Every session and refresh-token key carries a TTL past its end: Redis drops them itself. */
  pruneSessions(_endedBefore: number): Promise<number> {
    return Promise.resolve(0);
  }

  async revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    return (await this.script<number>('sessionsRevoke', [this.sessionKey(id)], [now, reason])) === 1;
  }

  async revokeUserSessions(
    userId: string,
    now: number,
    reason: string,
    exceptId?: string,
  ): Promise<string[]> {
    const ids = (await this.indexed(userId, now)).filter((id) => id !== exceptId);
    const revoked = await Promise.all(ids.map((id) => this.revokeSession(id, now, reason)));
    return ids.filter((_, i) => revoked[i]);
  }

  async sessionOfRefreshToken(
    id: string,
    secretHash: string,
    now: number,
    graceMs: number,
  ): Promise<SessionRecord | null> {
    const key = this.refreshKey(id);
    if (key === null) return null;
    const sid = sessionIdOfRefreshToken(id)!;
    const flat = await this.script<string[]>(
      'sessionsOfRefresh',
      [this.sessionKey(sid), key, this.usedKey(sid)],
      [secretHash, now, graceMs, graceMs >= ANY_USE ? '1' : '0'],
    );
    const m = toMap(flat);
    if (m.size === 0) return null;
    const session = toSession(m);
    return isLive(session, now) ? session : null;
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const sid = sessionIdOfRefreshToken(req.id);
    // A successor named for another session cannot be stored beside this one: no such family.
    if (sid === null || sessionIdOfRefreshToken(req.successorId) !== sid) return { outcome: 'invalid' };
    const [outcome, a, b] = await this.script<[string, unknown?, string?]>(
      'sessionsRotate',
      [this.sessionKey(sid), this.refreshKey(req.id)!, this.refreshKey(req.successorId)!, this.usedKey(sid)],
      [
        req.secretHash,
        req.now,
        req.graceMs,
        req.idleTtlMs,
        Date.now(),
        this.redis.retainMs,
        req.successorSecretHash,
        req.id,
      ],
    );
    switch (outcome) {
      case 'rotated':
      case 'grace': {
        const m = toMap(a);
        return { outcome, session: toSession(m), user: toUser(m), successorExpiresAt: Number(b) };
      }
      case 'reused':
        return { outcome: 'reused', sessionId: sid, userId: String(a) };
      default:
        return { outcome: 'invalid' };
    }
  }
}
