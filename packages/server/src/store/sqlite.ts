import { existsSync } from 'node:fs';
import path from 'node:path';
import { SqliteOAuthStore } from '../oauth/sqlite.js';
import { safeEqual } from '../util/crypto.js';
import { MemoryCounters } from './memory.js';
import { storesOn } from './open.js';
import {
  type AuditLog,
  type KeyStore,
  type LiveSession,
  type RevocationLog,
  type RotateRequest,
  type RotateResult,
  refreshStillHonoured,
  SESSION_PRUNE_BATCH,
  type SessionStore,
  type SessionUser,
  type Stores,
  type UserStore,
} from './ports.js';
import {
  type Row,
  toAudit,
  toEmailToken,
  toKey,
  toRevocation,
  toSession,
  toSessionUser,
  toUser,
} from './rows.js';
import { SqliteDatabase } from './sqlite-common.js';
import { SqliteIdentities } from './sqlite-identities.js';
import { SqliteMailOutbox } from './sqlite-mail.js';
import type {
  AuditEvent,
  AuditQuery,
  EmailTokenPurpose,
  EmailTokenRecord,
  NewAuditEvent,
  NewRevocation,
  RefreshTokenRecord,
  RevocationEntry,
  SessionRecord,
  SigningKeyRecord,
  UserRecord,
} from './types.js';

/**
 * Inserts a user row unless the username (or id) is taken, or its address is verified and another
 * account holds it verified; true when it was inserted.
 */
export function insertUser(sql: SqliteDatabase, u: UserRecord): boolean {
  return (
    sql
      .q(
        `INSERT INTO users (id, username, password_hash, roles, disabled, created_at, password_changed_at,
           email, email_verified)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      )
      .run(
        u.id,
        u.username,
        u.passwordHash,
        JSON.stringify(u.roles),
        u.disabled ? 1 : 0,
        u.createdAt,
        u.passwordChangedAt,
        u.email,
        u.emailVerified ? 1 : 0,
      ).changes === 1
  );
}

function sessionLive(s: SessionRecord, now: number): boolean {
  return s.revokedAt === null && s.expiresAt > now && s.idleExpiresAt > now;
}

/** Rows of the sessions table one step of pruneSessions looks at. */
const SESSION_PRUNE_SCAN = 10_000;
const INSERT_REFRESH = `INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
  VALUES (?, ?, ?, ?, ?, ?, ?)`;

/** A session row joined with its user's fields (`u_` columns). */
const SESSION_WITH_USER = `SELECT s.*, u.username AS u_username, u.roles AS u_roles, u.disabled AS u_disabled
  FROM sessions s JOIN users u ON u.id = s.user_id`;

/**
 * The account roles of the embedded database: users, sessions and refresh tokens, the key ring,
 * the revocation log, counters and the audit trail. Every call is one statement or one transaction.
 */
export class SqliteAccounts implements UserStore, SessionStore, KeyStore, RevocationLog, AuditLog {
  constructor(private readonly sql: SqliteDatabase) {}

  private q(sql: string) {
    return this.sql.q(sql);
  }

  private run<T>(fn: () => T): Promise<T> {
    return this.sql.run(fn);
  }

  createUser(u: UserRecord): Promise<UserRecord | null> {
    return this.run(() => (insertUser(this.sql, u) ? u : null));
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

  setPasswordHash(
    userId: string,
    passwordHash: string,
    changedAt: number,
    expectedHash?: string,
  ): Promise<boolean> {
    return this.run(() => {
      const set = 'UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?';
      const result =
        expectedHash === undefined
          ? this.q(set).run(passwordHash, changedAt, userId)
          : this.q(`${set} AND password_hash = ?`).run(passwordHash, changedAt, userId, expectedHash);
      return result.changes === 1;
    });
  }

  setUserDisabled(userId: string, disabled: boolean): Promise<boolean> {
    return this.run(
      () => this.q('UPDATE users SET disabled = ? WHERE id = ?').run(disabled ? 1 : 0, userId).changes === 1,
    );
  }

  getUserByEmail(email: string): Promise<UserRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM users WHERE email = ? AND email_verified = 1').get(email) as
        | Row
        | undefined;
      return r ? toUser(r) : null;
    });
  }

  setEmail(userId: string, email: string | null, verified: boolean): Promise<boolean> {
    return this.run(() => {
      try {
        return (
          this.q('UPDATE users SET email = ?, email_verified = ? WHERE id = ?').run(
            email,
            verified && email !== null ? 1 : 0,
            userId,
          ).changes === 1
        );
      } catch (err) {
        if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE') return false;
        throw err;
      }
    });
  }

  createEmailToken(t: EmailTokenRecord): Promise<void> {
    return this.run(() => {
      this.q(
        `INSERT INTO email_tokens (hash, purpose, user_id, email, created_at, expires_at, used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(t.hash, t.purpose, t.userId, t.email, t.createdAt, t.expiresAt, t.usedAt);
    });
  }

  getEmailToken(hash: string, purpose: EmailTokenPurpose, now: number): Promise<EmailTokenRecord | null> {
    return this.run(() => {
      const r = this.q(
        'SELECT * FROM email_tokens WHERE hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?',
      ).get(hash, purpose, now) as Row | undefined;
      return r ? toEmailToken(r) : null;
    });
  }

  useEmailToken(hash: string, purpose: EmailTokenPurpose, now: number): Promise<EmailTokenRecord | null> {
    return this.run(() => {
      const r = this.q(
        `UPDATE email_tokens SET used_at = ?
         WHERE hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ? RETURNING *`,
      ).get(now, hash, purpose, now) as Row | undefined;
      return r ? toEmailToken(r) : null;
    });
  }

  spendEmailTokens(
    userId: string,
    purposes: readonly EmailTokenPurpose[],
    now: number,
    issuedFrom = Number.MIN_SAFE_INTEGER,
  ): Promise<number> {
    return this.run(
      () =>
        this.q(
          `UPDATE email_tokens SET used_at = ?
           WHERE user_id = ? AND used_at IS NULL AND purpose IN (SELECT value FROM json_each(?)) AND created_at >= ?`,
        ).run(now, userId, JSON.stringify(purposes), issuedFrom).changes,
    );
  }

  pruneEmailTokens(now: number): Promise<number> {
    return this.run(() => this.q('DELETE FROM email_tokens WHERE expires_at <= ?').run(now).changes);
  }

  private insertSession(s: SessionRecord): void {
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
  }

  private insertRefresh(t: RefreshTokenRecord): void {
    this.q(INSERT_REFRESH).run(
      t.id,
      t.sessionId,
      t.secretHash,
      t.parentId,
      t.createdAt,
      t.expiresAt,
      t.usedAt,
    );
  }

  /** The user is the users row the session references; `_user` is for stores that keep sessions apart. */
  createSession(s: SessionRecord, _user: SessionUser, firstRefresh?: RefreshTokenRecord): Promise<void> {
    return this.sql.tx(() => {
      this.insertSession(s);
      if (firstRefresh) this.insertRefresh(firstRefresh);
    });
  }

  getLiveSession(id: string, now: number): Promise<LiveSession | null> {
    return this.run(() => {
      const r = this.q(
        `${SESSION_WITH_USER} WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND s.idle_expires_at > ?`,
      ).get(id, now, now) as Row | undefined;
      return r ? { session: toSession(r), user: toSessionUser(r) } : null;
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
         WHERE id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND expires_at > ?`,
      ).run(lastSeenAt, idleExpiresAt, id, lastSeenAt, lastSeenAt);
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

  /**
   * One step of pruneSessions: the ended sessions among the rows after rowid `after` (at most
   * SESSION_PRUNE_SCAN rows on, at most SESSION_PRUNE_BATCH of them), deleted with their refresh
   * tokens. Returns how many went and the rowid to go on after.
   */
  private readonly pruneStepTx = (endedBefore: number, after: number): { deleted: number; next: number } => {
    const end = after + SESSION_PRUNE_SCAN;
    const rows = this.q(
      `SELECT rowid AS r, id FROM sessions
       WHERE rowid > ? AND rowid <= ? AND (revoked_at < ? OR idle_expires_at < ? OR expires_at < ?)
       ORDER BY rowid LIMIT ${SESSION_PRUNE_BATCH}`,
    ).all(after, end, endedBefore, endedBefore, endedBefore) as Row[];
    for (const { id } of rows as { id: string }[]) {
      // Refresh token ids begin with their session's id: the range finds them by primary key.
      this.q('DELETE FROM refresh_tokens WHERE id > ? AND id < ? AND session_id = ?').run(id, `${id}~`, id);
      this.q('DELETE FROM sessions WHERE id = ?').run(id);
    }
    const full = rows.length === SESSION_PRUNE_BATCH;
    return { deleted: rows.length, next: full ? (rows.at(-1)!.r as number) : end };
  };

  /**
   * Walks the table in rowid steps, each its own short transaction: no index covers the ends
   * (one would cost every refresh a write), and a step never holds the event loop or the write
   * lock for more than SESSION_PRUNE_SCAN rows. Sessions made after it starts are new: not ended.
   */
  async pruneSessions(endedBefore: number): Promise<number> {
    const last = ((await this.run(() => this.q('SELECT max(rowid) AS m FROM sessions').get())) as Row).m as
      | number
      | null;
    let total = 0;
    for (let after = 0; after < (last ?? 0); ) {
      const step = await this.sql.tx(this.pruneStepTx, endedBefore, after);
      total += step.deleted;
      after = step.next;
    }
    return total;
  }

  sessionOfRefreshToken(
    id: string,
    secretHash: string,
    now: number,
    graceMs: number,
  ): Promise<SessionRecord | null> {
    return this.run(() => {
      const r = this.q(
        `SELECT s.*, t.secret_hash AS t_secret_hash, t.expires_at AS t_expires_at, t.used_at AS t_used_at
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?`,
      ).get(id) as Row | undefined;
      if (!r || !safeEqual(r.t_secret_hash as string, secretHash)) return null;
      if (!refreshStillHonoured(r.t_expires_at as number, r.t_used_at as number | null, now, graceMs))
        return null;
      const session = toSession(r);
      return sessionLive(session, now) ? session : null;
    });
  }

  private readonly rotateTx = (req: RotateRequest): RotateResult => {
    const r = this.q(
      `SELECT t.secret_hash AS t_secret_hash, t.expires_at AS t_expires_at, t.used_at AS t_used_at,
         s.*, u.username AS u_username, u.roles AS u_roles, u.disabled AS u_disabled
       FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
       WHERE t.id = ?`,
    ).get(req.id) as Row | undefined;
    if (!r || !safeEqual(r.t_secret_hash as string, req.secretHash)) return { outcome: 'invalid' };
    const session = toSession(r);
    const user = toSessionUser(r);
    if (!sessionLive(session, req.now) || user.disabled) return { outcome: 'invalid' };
    const usedAt = r.t_used_at as number | null;
    if (usedAt === null) {
      // Only an unused token's own expiry counts: a spent one replayed later is reuse, however old.
      if ((r.t_expires_at as number) <= req.now) return { outcome: 'invalid' };
      const idleEnd = Math.min(session.expiresAt, req.now + req.idleTtlMs);
      this.q('UPDATE refresh_tokens SET used_at = ? WHERE id = ?').run(req.now, req.id);
      this.q(`${INSERT_REFRESH} ON CONFLICT DO NOTHING`).run(
        req.successorId,
        session.id,
        req.successorSecretHash,
        req.id,
        req.now,
        idleEnd,
        null,
      );
      this.q('UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?').run(
        req.now,
        idleEnd,
        session.id,
      );
      session.lastSeenAt = req.now;
      session.idleExpiresAt = idleEnd;
      return { outcome: 'rotated', session, user, successorExpiresAt: idleEnd };
    }
    if (req.now - usedAt <= req.graceMs) {
      const successor = this.q('SELECT expires_at, used_at FROM refresh_tokens WHERE id = ?').get(
        req.successorId,
      ) as Row | undefined;
      // A repeat within the grace window retries an answer that was lost and gets the same
      // successor, unless that one is spent too, which no retry explains: reuse, below.
      if (successor?.used_at == null) {
        const successorExpiresAt =
          (successor?.expires_at as number | undefined) ??
          Math.min(session.expiresAt, req.now + req.idleTtlMs);
        return { outcome: 'grace', session, user, successorExpiresAt };
      }
    }
    this.q(`UPDATE sessions SET revoked_at = ?, revoke_reason = 'refresh_reuse' WHERE id = ?`).run(
      req.now,
      session.id,
    );
    return { outcome: 'reused', sessionId: session.id, userId: session.userId };
  };

  rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    return this.sql.tx(this.rotateTx, req);
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
    return this.sql.tx(() => {
      const n = (this.q('SELECT count(*) AS n FROM signing_keys').get() as Row).n as number;
      if (n > 0) return false;
      for (const k of keys) this.insertKey(k);
      return true;
    });
  }

  rotateSigningKeys(
    newNext: SigningKeyRecord,
    expectedCurrent: string | null,
    _now: number,
    retireUntil: number,
  ): Promise<boolean> {
    return this.sql.tx(() => {
      const cur = this.q(`SELECT kid FROM signing_keys WHERE state = 'current'`).get() as Row | undefined;
      if (((cur?.kid as string | undefined) ?? null) !== expectedCurrent) return false;
      this.q(
        `UPDATE signing_keys SET state = 'retired', retire_until = ?, private_key_enc = '' WHERE state = 'current'`,
      ).run(retireUntil);
      this.q(`UPDATE signing_keys SET state = 'current' WHERE state = 'next'`).run();
      this.insertKey({ ...newNext, state: 'next' });
      return true;
    });
  }

  deleteRetiredKeys(now: number): Promise<number> {
    return this.run(
      () => this.q(`DELETE FROM signing_keys WHERE state = 'retired' AND retire_until <= ?`).run(now).changes,
    );
  }

  appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]> {
    return this.sql.tx(() =>
      entries.map((e) => {
        const r = this.q(
          'INSERT INTO revocations (sid, sub, not_before, expires_at, reason) VALUES (?, ?, ?, ?, ?) RETURNING *',
        ).get(e.sid, e.sub, e.notBefore, e.expiresAt, e.reason) as Row;
        return toRevocation(r);
      }),
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
}

/**
 * Every role from one embedded database file (or ':memory:'). An `oauth.sqlite` beside the file
 * (the OAuth provider's former file of its own) is adopted into it once.
 */
export function openSqliteStores(file: string, options: { sync?: 'normal' | 'full' } = {}): Stores {
  const db = new SqliteDatabase(file, options.sync);
  const former = file === ':memory:' ? undefined : path.join(path.dirname(file), 'oauth.sqlite');
  if (former && existsSync(former)) {
    try {
      db.adoptOAuthFile(former);
    } catch (err) {
      void db.close();
      throw err;
    }
  }
  // One serving process owns the file (it holds the data folder's server.lock: see lockDataFolder),
  // so its rate-limit counters need not leave the process.
  return {
    ...storesOn(db, new SqliteAccounts(db), new SqliteOAuthStore(db), new MemoryCounters()),
    identities: new SqliteIdentities(db),
    mail: new SqliteMailOutbox(db),
  };
}
