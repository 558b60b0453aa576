import type Database from 'better-sqlite3';
import { type Row, toAudit, toKey, toRefresh, toRevocation, toSession, toUser } from './rows.js';
import { openSqlite, StatementCache, settle } from './sqlite-common.js';
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

const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     id TEXT PRIMARY KEY,
     username TEXT NOT NULL UNIQUE,
     password_hash TEXT NOT NULL,
     roles TEXT NOT NULL DEFAULT '[]',
     disabled INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     password_changed_at INTEGER NOT NULL
   );
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL REFERENCES users(id),
     mode TEXT NOT NULL,
     secret_hash TEXT,
     created_at INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     idle_expires_at INTEGER NOT NULL,
     user_agent TEXT,
     ip TEXT,
     revoked_at INTEGER,
     revoke_reason TEXT
   );
   CREATE INDEX sessions_user ON sessions(user_id, created_at);
   CREATE TABLE refresh_tokens (
     id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL REFERENCES sessions(id),
     secret_hash TEXT NOT NULL,
     parent_id TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER
   );
   CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
   CREATE TABLE signing_keys (
     kid TEXT PRIMARY KEY,
     alg TEXT NOT NULL,
     state TEXT NOT NULL,
     public_jwk TEXT NOT NULL,
     private_key_enc TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     retire_until INTEGER
   );
   CREATE TABLE revocations (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     sid TEXT,
     sub TEXT,
     not_before INTEGER,
     expires_at INTEGER NOT NULL,
     reason TEXT NOT NULL
   );
   CREATE TABLE counters (
     key TEXT PRIMARY KEY,
     count INTEGER NOT NULL,
     window_end INTEGER NOT NULL
   );
   CREATE TABLE locks (
     key TEXT PRIMARY KEY,
     until INTEGER NOT NULL
   );`,
  `CREATE TABLE audit_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     type TEXT NOT NULL,
     user_id TEXT,
     session_id TEXT,
     ip TEXT,
     user_agent TEXT,
     detail TEXT
   );
   CREATE INDEX audit_events_user ON audit_events(user_id, seq);
   CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
     BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
   CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
     BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;`,
];

function sessionLive(s: SessionRecord, now: number): boolean {
  return s.revokedAt === null && s.expiresAt > now && s.idleExpiresAt > now;
}

/** The embedded store: one SQLite file in WAL mode. Every call is one statement or one transaction. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly statements: StatementCache;

  /** `file` is a path, or ':memory:'. */
  constructor(file: string) {
    this.db = openSqlite(file);
    this.db.pragma('foreign_keys = ON');
    this.statements = new StatementCache(this.db);
    this.migrate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private q(sql: string): Database.Statement {
    return this.statements.get(sql);
  }

  private run<T>(fn: () => T): Promise<T> {
    return settle(fn);
  }

  createUser(u: UserRecord): Promise<UserRecord | null> {
    return this.run(() => {
      const info = this.q(
        `INSERT INTO users (id, username, password_hash, roles, disabled, created_at, password_changed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ).run(
        u.id,
        u.username,
        u.passwordHash,
        JSON.stringify(u.roles),
        u.disabled ? 1 : 0,
        u.createdAt,
        u.passwordChangedAt,
      );
      return info.changes === 1 ? u : null;
    });
  }

  getUserById(id: string): Promise<UserRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM users WHERE id = ?').get(id) as Row | undefined;
      return r ? toUser(r) : null;
    });
  }

  getUserByUsername(username: string): Promise<UserRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM users WHERE username = ?').get(username) as Row | undefined;
      return r ? toUser(r) : null;
    });
  }

  listUsers(limit: number, offset: number): Promise<UserRecord[]> {
    return this.run(() =>
      (
        this.q('SELECT * FROM users ORDER BY created_at, id LIMIT ? OFFSET ?').all(limit, offset) as Row[]
      ).map(toUser),
    );
  }

  setPasswordHash(userId: string, passwordHash: string, changedAt: number): Promise<void> {
    return this.run(() => {
      this.q('UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?').run(
        passwordHash,
        changedAt,
        userId,
      );
    });
  }

  setUserDisabled(userId: string, disabled: boolean): Promise<boolean> {
    return this.run(
      () => this.q('UPDATE users SET disabled = ? WHERE id = ?').run(disabled ? 1 : 0, userId).changes === 1,
    );
  }

  createSession(s: SessionRecord): Promise<void> {
    return this.run(() => {
      this.q(
        `INSERT INTO sessions (id, user_id, mode, secret_hash, created_at, last_seen_at, expires_at, idle_expires_at,
           user_agent, ip, revoked_at, revoke_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        s.id,
        s.userId,
        s.mode,
        s.secretHash,
        s.createdAt,
        s.lastSeenAt,
        s.expiresAt,
        s.idleExpiresAt,
        s.userAgent,
        s.ip,
        s.revokedAt,
        s.revokeReason,
      );
    });
  }

  getSession(id: string): Promise<SessionRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
      return r ? toSession(r) : null;
    });
  }

  touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    return this.run(() => {
      this.q(
        `UPDATE sessions SET last_seen_at = max(last_seen_at, ?), idle_expires_at = min(expires_at, max(idle_expires_at, ?))
         WHERE id = ? AND revoked_at IS NULL`,
      ).run(lastSeenAt, idleExpiresAt, id);
    });
  }

  listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    return this.run(() =>
      (
        this.q(
          `SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?
           ORDER BY created_at DESC, id`,
        ).all(userId, now, now) as Row[]
      ).map(toSession),
    );
  }

  revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    return this.run(
      () =>
        this.q(
          `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
           WHERE id = ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?`,
        ).run(now, reason, id, now, now).changes === 1,
    );
  }

  revokeUserSessions(userId: string, now: number, reason: string, exceptId?: string): Promise<string[]> {
    return this.run(() =>
      (
        this.q(
          `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
           WHERE user_id = ? AND id != ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?
           RETURNING id`,
        ).all(now, reason, userId, exceptId ?? '', now, now) as Row[]
      ).map((r) => r.id as string),
    );
  }

  insertRefreshToken(t: RefreshTokenRecord): Promise<void> {
    return this.run(() => {
      this.q(
        `INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(t.id, t.sessionId, t.secretHash, t.parentId, t.createdAt, t.expiresAt, t.usedAt);
    });
  }

  getRefreshToken(id: string): Promise<RefreshTokenRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM refresh_tokens WHERE id = ?').get(id) as Row | undefined;
      return r ? toRefresh(r) : null;
    });
  }

  private readonly rotateTx = (req: RotateRequest): RotateOutcome => {
    const tokenRow = this.q('SELECT * FROM refresh_tokens WHERE id = ?').get(req.id) as Row | undefined;
    if (!tokenRow) return { outcome: 'invalid' };
    const token = toRefresh(tokenRow);
    const sessionRow = this.q('SELECT * FROM sessions WHERE id = ?').get(token.sessionId) as Row | undefined;
    if (!sessionRow || !sessionLive(toSession(sessionRow), req.now) || token.expiresAt <= req.now) {
      return { outcome: 'invalid' };
    }
    if (token.usedAt === null) {
      const won = this.q('UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL').run(
        req.now,
        req.id,
      );
      if (won.changes !== 1) return { outcome: 'invalid' };
      const s = req.successor;
      this.q(
        `INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
         VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING`,
      ).run(s.id, s.sessionId, s.secretHash, s.parentId, s.createdAt, s.expiresAt);
      this.q(
        `UPDATE sessions SET last_seen_at = ?, idle_expires_at = min(expires_at, ?) WHERE id = ? AND revoked_at IS NULL`,
      ).run(req.now, req.sessionIdleExpiresAt, token.sessionId);
      return { outcome: 'rotated' };
    }
    if (req.now - token.usedAt <= req.graceMs) return { outcome: 'grace' };
    this.q(
      `UPDATE sessions SET revoked_at = ?, revoke_reason = 'refresh_reuse' WHERE id = ? AND revoked_at IS NULL`,
    ).run(req.now, token.sessionId);
    return { outcome: 'reused', sessionId: token.sessionId };
  };

  rotateRefreshToken(req: RotateRequest): Promise<RotateOutcome> {
    return this.run(() => this.db.transaction(this.rotateTx).immediate(req));
  }

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.run(() =>
      (this.q('SELECT * FROM signing_keys ORDER BY created_at, kid').all() as Row[]).map(toKey),
    );
  }

  private insertKey(k: SigningKeyRecord): void {
    this.q(
      `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, created_at, retire_until)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(k.kid, k.alg, k.state, JSON.stringify(k.publicJwk), k.privateKeyEnc, k.createdAt, k.retireUntil);
  }

  initSigningKeys(keys: SigningKeyRecord[]): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction(() => {
          const n = (this.q('SELECT count(*) AS n FROM signing_keys').get() as Row).n as number;
          if (n > 0) return false;
          for (const k of keys) this.insertKey(k);
          return true;
        })
        .immediate(),
    );
  }

  rotateSigningKeys(
    newNext: SigningKeyRecord,
    expectedCurrent: string | null,
    _now: number,
    retireUntil: number,
  ): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction(() => {
          const cur = this.q(`SELECT kid FROM signing_keys WHERE state = 'current'`).get() as Row | undefined;
          if (((cur?.kid as string | undefined) ?? null) !== expectedCurrent) return false;
          this.q(
            `UPDATE signing_keys SET state = 'retired', retire_until = ?, private_key_enc = '' WHERE state = 'current'`,
          ).run(retireUntil);
          this.q(`UPDATE signing_keys SET state = 'current' WHERE state = 'next'`).run();
          this.insertKey({ ...newNext, state: 'next' });
          return true;
        })
        .immediate(),
    );
  }

  deleteRetiredKeys(now: number): Promise<number> {
    return this.run(
      () => this.q(`DELETE FROM signing_keys WHERE state = 'retired' AND retire_until <= ?`).run(now).changes,
    );
  }

  appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]> {
    return this.run(() =>
      this.db.transaction(() =>
        entries.map((e) => {
          const r = this.q(
            'INSERT INTO revocations (sid, sub, not_before, expires_at, reason) VALUES (?, ?, ?, ?, ?) RETURNING *',
          ).get(e.sid, e.sub, e.notBefore, e.expiresAt, e.reason) as Row;
          return toRevocation(r);
        }),
      )(),
    );
  }

  listRevocations(afterSeq: number, nowSeconds: number, limit: number): Promise<RevocationEntry[]> {
    return this.run(() =>
      (
        this.q('SELECT * FROM revocations WHERE seq > ? AND expires_at > ? ORDER BY seq LIMIT ?').all(
          afterSeq,
          nowSeconds,
          limit,
        ) as Row[]
      ).map(toRevocation),
    );
  }

  pruneRevocations(nowSeconds: number): Promise<number> {
    return this.run(() => this.q('DELETE FROM revocations WHERE expires_at <= ?').run(nowSeconds).changes);
  }

  hitCounter(key: string, windowMs: number, now: number, by = 1): Promise<number> {
    return this.run(() => {
      const r = this.q(
        `INSERT INTO counters (key, count, window_end) VALUES (?, MAX(0, ?), ?)
         ON CONFLICT(key) DO UPDATE SET
           count = CASE WHEN window_end <= ? THEN excluded.count ELSE MAX(0, count + ?) END,
           window_end = CASE WHEN window_end <= ? THEN excluded.window_end ELSE window_end END
         RETURNING count`,
      ).get(key, by, now + windowMs, now, by, now) as Row;
      return r.count as number;
    });
  }

  getCounter(key: string, now: number): Promise<number> {
    return this.run(() => {
      const r = this.q('SELECT count FROM counters WHERE key = ? AND window_end > ?').get(key, now) as
        | Row
        | undefined;
      return (r?.count as number | undefined) ?? 0;
    });
  }

  resetCounter(key: string): Promise<void> {
    return this.run(() => {
      this.q('DELETE FROM counters WHERE key = ?').run(key);
    });
  }

  setLock(key: string, until: number): Promise<void> {
    return this.run(() => {
      this.q(
        'INSERT INTO locks (key, until) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET until = max(until, excluded.until)',
      ).run(key, until);
    });
  }

  getLock(key: string, now: number): Promise<number> {
    return this.run(() => {
      const r = this.q('SELECT until FROM locks WHERE key = ? AND until > ?').get(key, now) as
        | Row
        | undefined;
      return (r?.until as number | undefined) ?? 0;
    });
  }

  appendAuditEvent(e: NewAuditEvent): Promise<void> {
    return this.run(() => {
      this.q(
        'INSERT INTO audit_events (at, type, user_id, session_id, ip, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(e.at, e.type, e.userId, e.sessionId, e.ip, e.userAgent, e.detail);
    });
  }

  listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    return this.run(() =>
      (
        this.q(
          `SELECT * FROM audit_events
           WHERE (@user IS NULL OR user_id = @user) AND (@type IS NULL OR type = @type) AND (@before IS NULL OR seq < @before)
           ORDER BY seq DESC LIMIT @limit`,
        ).all({
          user: query.userId ?? null,
          type: query.type ?? null,
          before: query.beforeSeq ?? null,
          limit: query.limit,
        }) as Row[]
      ).map(toAudit),
    );
  }

  ping(): Promise<void> {
    return this.run(() => {
      this.q('SELECT 1').get();
    });
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}
