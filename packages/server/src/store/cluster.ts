import { PostgresStore, type PostgresStoreOptions } from './postgres.js';
import { RedisStore, type RedisStoreOptions } from './redis.js';
import type {
  AuditEvent,
  AuditQuery,
  NewAuditEvent,
  NewRevocation,
  RefreshTokenRecord,
  RevocationEntry,
  RotateOutcome,
  RotateRequest,
  SessionRecord,
  SigningKeyRecord,
  Store,
  UserRecord,
} from './types.js';

/**
 * The clustered store: PostgreSQL holds everything durable (users, sessions, refresh tokens,
 * keys, revocations), Redis holds what is hot and disposable (rate-limit counters and lockouts).
 *
 * Sessions stay in PostgreSQL on purpose: refresh rotation must check the session, consume the
 * token and slide or revoke the session in one transaction, and a Redis session cache in front
 * would either break that or serve a revoked session from a stale entry. A cache can come later
 * with versioned entries; until then every session read is one indexed primary-key lookup.
 */
export class ClusterStore implements Store {
  readonly kind = 'cluster';
  private readonly db: PostgresStore;
  private readonly hot: RedisStore;

  constructor(db: PostgresStore, hot: RedisStore) {
    this.db = db;
    this.hot = hot;
  }

  /** Opens both; if either is unreachable, closes the other and rejects with StoreUnavailableError. */
  static async open(
    databaseUrl: string,
    redisUrl: string,
    options: { postgres?: PostgresStoreOptions; redis?: RedisStoreOptions } = {},
  ): Promise<ClusterStore> {
    const [db, hot] = await Promise.allSettled([
      PostgresStore.open(databaseUrl, options.postgres),
      RedisStore.open(redisUrl, options.redis),
    ]);
    if (db.status === 'fulfilled' && hot.status === 'fulfilled') return new ClusterStore(db.value, hot.value);
    if (db.status === 'fulfilled') await db.value.close();
    if (hot.status === 'fulfilled') await hot.value.close();
    throw db.status === 'rejected' ? db.reason : (hot as PromiseRejectedResult).reason;
  }

  createUser(user: UserRecord): Promise<UserRecord | null> {
    return this.db.createUser(user);
  }
  getUserById(id: string): Promise<UserRecord | null> {
    return this.db.getUserById(id);
  }
  getUserByUsername(username: string): Promise<UserRecord | null> {
    return this.db.getUserByUsername(username);
  }
  listUsers(limit: number, offset: number): Promise<UserRecord[]> {
    return this.db.listUsers(limit, offset);
  }
  setPasswordHash(userId: string, passwordHash: string, changedAt: number): Promise<void> {
    return this.db.setPasswordHash(userId, passwordHash, changedAt);
  }
  setUserDisabled(userId: string, disabled: boolean): Promise<boolean> {
    return this.db.setUserDisabled(userId, disabled);
  }

  createSession(session: SessionRecord): Promise<void> {
    return this.db.createSession(session);
  }
  getSession(id: string): Promise<SessionRecord | null> {
    return this.db.getSession(id);
  }
  touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    return this.db.touchSession(id, lastSeenAt, idleExpiresAt);
  }
  listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    return this.db.listSessions(userId, now);
  }
  revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    return this.db.revokeSession(id, now, reason);
  }
  revokeUserSessions(userId: string, now: number, reason: string, exceptId?: string): Promise<string[]> {
    return this.db.revokeUserSessions(userId, now, reason, exceptId);
  }

  insertRefreshToken(token: RefreshTokenRecord): Promise<void> {
    return this.db.insertRefreshToken(token);
  }
  getRefreshToken(id: string): Promise<RefreshTokenRecord | null> {
    return this.db.getRefreshToken(id);
  }
  rotateRefreshToken(request: RotateRequest): Promise<RotateOutcome> {
    return this.db.rotateRefreshToken(request);
  }

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.db.listSigningKeys();
  }
  rotateSigningKeys(
    newNext: SigningKeyRecord,
    expectedCurrent: string | null,
    now: number,
    retireUntil: number,
  ): Promise<boolean> {
    return this.db.rotateSigningKeys(newNext, expectedCurrent, now, retireUntil);
  }
  initSigningKeys(keys: SigningKeyRecord[]): Promise<boolean> {
    return this.db.initSigningKeys(keys);
  }
  deleteRetiredKeys(now: number): Promise<number> {
    return this.db.deleteRetiredKeys(now);
  }

  appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]> {
    return this.db.appendRevocations(entries);
  }
  listRevocations(afterSeq: number, nowSeconds: number, limit: number): Promise<RevocationEntry[]> {
    return this.db.listRevocations(afterSeq, nowSeconds, limit);
  }
  pruneRevocations(nowSeconds: number): Promise<number> {
    return this.db.pruneRevocations(nowSeconds);
  }

  appendAuditEvent(event: NewAuditEvent): Promise<void> {
    return this.db.appendAuditEvent(event);
  }
  listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    return this.db.listAuditEvents(query);
  }

  hitCounter(key: string, windowMs: number, now: number, by = 1): Promise<number> {
    return this.hot.hitCounter(key, windowMs, now, by);
  }
  getCounter(key: string, now: number): Promise<number> {
    return this.hot.getCounter(key, now);
  }
  resetCounter(key: string): Promise<void> {
    return this.hot.resetCounter(key);
  }
  setLock(key: string, until: number): Promise<void> {
    return this.hot.setLock(key, until);
  }
  getLock(key: string, now: number): Promise<number> {
    return this.hot.getLock(key, now);
  }

  /** Ready only when both are: a login needs the counters as much as the users. */
  async ping(): Promise<void> {
    await Promise.all([this.db.ping(), this.hot.ping()]);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.db.close(), this.hot.close()]);
  }
}
