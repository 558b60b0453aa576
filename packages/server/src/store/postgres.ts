import { PostgresOAuthStore } from '../oauth/postgres.js';
import { safeEqual } from '../util/crypto.js';
import { storesOn } from './open.js';
import { PgDatabase, type PgOptions, type Queryable } from './pg.js';
import {
  type AuditLog,
  type Counters,
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
import { PostgresIdentities } from './postgres-identities.js';
import { PostgresMailOutbox } from './postgres-mail.js';
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
 * Every role's tables, accounts and OAuth, in one list: migrations run in order, each once,
 * recorded in `tessera_migrations`. Times are BIGINT
 * milliseconds (revocation times are unix seconds, as in the interface). Ids compare in "C"
 * collation so ordering matches the other stores byte for byte.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     id TEXT COLLATE "C" PRIMARY KEY,
     username TEXT NOT NULL UNIQUE,
     password_hash TEXT NOT NULL,
     roles TEXT[] NOT NULL DEFAULT '{}',
     disabled BOOLEAN NOT NULL DEFAULT false,
     created_at BIGINT NOT NULL,
     password_changed_at BIGINT NOT NULL
   );
   CREATE INDEX users_created ON users (created_at, id);
   CREATE TABLE sessions (
     id TEXT COLLATE "C" PRIMARY KEY,
     user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
     mode TEXT NOT NULL,
     secret_hash TEXT,
     created_at BIGINT NOT NULL,
     last_seen_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     idle_expires_at BIGINT NOT NULL,
     user_agent TEXT,
     ip TEXT,
     revoked_at BIGINT,
     revoke_reason TEXT
   );
   CREATE INDEX sessions_user ON sessions (user_id, created_at);
   CREATE TABLE refresh_tokens (
     id TEXT COLLATE "C" PRIMARY KEY,
     session_id TEXT COLLATE "C" NOT NULL REFERENCES sessions (id),
     secret_hash TEXT NOT NULL,
     parent_id TEXT,
     created_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     used_at BIGINT
   );
   CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
   CREATE TABLE signing_keys (
     kid TEXT COLLATE "C" PRIMARY KEY,
     alg TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired')),
     public_jwk JSONB NOT NULL,
     private_key_enc TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     retire_until BIGINT
   );
   -- at most one current and one next key, whatever the application does
   CREATE UNIQUE INDEX signing_keys_one_live ON signing_keys (state) WHERE state IN ('next', 'current');
   CREATE TABLE revocations (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     sid TEXT,
     sub TEXT,
     not_before BIGINT,
     expires_at BIGINT NOT NULL,
     reason TEXT NOT NULL
   );
   CREATE INDEX revocations_expires ON revocations (expires_at);
   CREATE TABLE counters (
     key TEXT PRIMARY KEY,
     count BIGINT NOT NULL,
     window_end BIGINT NOT NULL
   );
   CREATE TABLE locks (
     key TEXT PRIMARY KEY,
     until BIGINT NOT NULL
   );`,
  `CREATE TABLE audit_events (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     at BIGINT NOT NULL,
     type TEXT NOT NULL,
     user_id TEXT,
     session_id TEXT,
     ip TEXT,
     user_agent TEXT,
     detail TEXT
   );
   CREATE INDEX audit_events_user ON audit_events (user_id, seq);`,
  // The OAuth tables join the account schema's one migration list. A schema that already has them
  // (from their former list, tessera_oauth_migrations) is adopted: its grants gain the subject
  // column and the user foreign key.
  `DO $$
   BEGIN
     IF to_regclass('oauth_grants') IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = 'oauth_grants' AND column_name = 'subject'
     ) THEN
       ALTER TABLE oauth_grants RENAME COLUMN user_id TO subject;
       ALTER TABLE oauth_grants ADD COLUMN user_id TEXT COLLATE "C";
       UPDATE oauth_grants SET user_id = subject WHERE subject IN (SELECT id FROM users);
       DROP INDEX IF EXISTS oauth_grants_live;
       DROP INDEX IF EXISTS oauth_grants_user;
     END IF;
   END $$;
   CREATE TABLE IF NOT EXISTS oauth_clients (
     id TEXT COLLATE "C" PRIMARY KEY,
     name TEXT NOT NULL,
     type TEXT NOT NULL,
     secret_hash TEXT,
     auth_method TEXT NOT NULL,
     redirect_uris TEXT[] NOT NULL,
     grant_types TEXT[] NOT NULL,
     scopes TEXT[] NOT NULL,
     require_dpop BOOLEAN NOT NULL DEFAULT false,
     created_at BIGINT NOT NULL
   );
   ALTER TABLE oauth_clients ADD COLUMN IF NOT EXISTS resources TEXT[] NOT NULL DEFAULT '{}';
   -- subject: a user id, or a client's own subject (client credentials); user_id is the user's, by key
   CREATE TABLE IF NOT EXISTS oauth_grants (
     id TEXT COLLATE "C" PRIMARY KEY,
     subject TEXT COLLATE "C" NOT NULL,
     user_id TEXT COLLATE "C",
     client_id TEXT COLLATE "C" NOT NULL,
     scope TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     revoked_at BIGINT,
     revoke_reason TEXT
   );
   ALTER TABLE oauth_grants ADD CONSTRAINT oauth_grants_user FOREIGN KEY (user_id) REFERENCES users (id);
   ALTER TABLE oauth_grants ADD CONSTRAINT oauth_grants_subject CHECK (user_id IS NULL OR user_id = subject);
   -- one live grant per (subject, client), whatever the application does
   CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants (subject, client_id) WHERE revoked_at IS NULL;
   CREATE INDEX oauth_grants_subject_created ON oauth_grants (subject, created_at);
   CREATE INDEX IF NOT EXISTS oauth_grants_client ON oauth_grants (client_id);
   CREATE TABLE IF NOT EXISTS oauth_codes (
     code_hash TEXT COLLATE "C" PRIMARY KEY,
     client_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     grant_id TEXT NOT NULL,
     redirect_uri TEXT NOT NULL,
     redirect_uri_given BOOLEAN NOT NULL,
     scope TEXT NOT NULL,
     code_challenge TEXT NOT NULL,
     nonce TEXT,
     auth_time BIGINT NOT NULL,
     dpop_jkt TEXT,
     created_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     consumed_at BIGINT
   );
   CREATE INDEX IF NOT EXISTS oauth_codes_expires ON oauth_codes (expires_at);
   CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
     id TEXT COLLATE "C" PRIMARY KEY,
     grant_id TEXT COLLATE "C" NOT NULL,
     client_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     secret_hash TEXT NOT NULL,
     scope TEXT NOT NULL,
     dpop_jkt TEXT,
     parent_id TEXT,
     created_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     used_at BIGINT
   );
   CREATE INDEX IF NOT EXISTS oauth_refresh_grant ON oauth_refresh_tokens (grant_id);
   CREATE INDEX IF NOT EXISTS oauth_refresh_expires ON oauth_refresh_tokens (expires_at);
   CREATE TABLE IF NOT EXISTS oauth_jti (
     key TEXT COLLATE "C" PRIMARY KEY,
     expires_at BIGINT NOT NULL
   );
   CREATE INDEX IF NOT EXISTS oauth_jti_expires ON oauth_jti (expires_at);
   DROP TABLE IF EXISTS tessera_oauth_migrations;`,
  // Upstream sign-in identities, keyed by (issuer, subject), never by email.
  `CREATE TABLE IF NOT EXISTS identities (
     id TEXT COLLATE "C" PRIMARY KEY,
     user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
     issuer TEXT NOT NULL,
     subject TEXT NOT NULL,
     provider_id TEXT NOT NULL,
     email TEXT,
     name TEXT,
     created_at BIGINT NOT NULL,
     UNIQUE (issuer, subject)
   );
   CREATE INDEX IF NOT EXISTS identities_user ON identities (user_id, created_at);`,
  // Email addresses (unique among verified ones) and the one-time tokens mailed to them, by hash;
  // written to run again harmlessly over a schema that has them.
  `ALTER TABLE users ADD COLUMN IF NOT EXISTS email TEXT;
   ALTER TABLE users ADD COLUMN IF NOT EXISTS email_verified BOOLEAN NOT NULL DEFAULT false;
   CREATE UNIQUE INDEX IF NOT EXISTS users_verified_email ON users (email) WHERE email_verified;
   CREATE INDEX IF NOT EXISTS users_email ON users (email);
   CREATE TABLE IF NOT EXISTS email_tokens (
     hash TEXT COLLATE "C" PRIMARY KEY,
     purpose TEXT NOT NULL,
     user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
     email TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     used_at BIGINT
   );
   CREATE INDEX IF NOT EXISTS email_tokens_expires ON email_tokens (expires_at);`,
  // Mails waiting to be sent, sealed by the queue; `seq` is the order they were queued in.
  `CREATE TABLE IF NOT EXISTS mail_queue (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     id TEXT COLLATE "C" NOT NULL UNIQUE,
     sealed TEXT NOT NULL,
     queued_at BIGINT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at BIGINT NOT NULL,
     lease TEXT,
     lease_until BIGINT
   );
   CREATE INDEX IF NOT EXISTS mail_queue_due ON mail_queue (next_attempt_at);`,
  // A user's mailed tokens, spent together when the account is secured.
  `CREATE INDEX IF NOT EXISTS email_tokens_user ON email_tokens (user_id) WHERE used_at IS NULL;`,
  // The absolute end of an OAuth refresh-token chain, on each of its tokens (null on tokens from
  // before: see OAuthRefreshTokenRecord.familyExpiresAt). Nullable, so instances of the version
  // before, which do not write it, run beside this one during a rolling upgrade.
  `ALTER TABLE oauth_refresh_tokens ADD COLUMN IF NOT EXISTS family_expires_at BIGINT;
   CREATE INDEX IF NOT EXISTS oauth_refresh_family ON oauth_refresh_tokens (family_expires_at);`,
];

export type PostgresStoreOptions = PgOptions;

/**
 * The statement that inserts a user row unless the username (or id) is taken, or its address is
 * verified and another account holds it verified: a row comes back when it did.
 */
export function userInsert(u: UserRecord): [string, unknown[]] {
  return [
    `INSERT INTO users (id, username, password_hash, roles, disabled, created_at, password_changed_at,
       email, email_verified)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING id`,
    [
      u.id,
      u.username,
      u.passwordHash,
      u.roles,
      u.disabled,
      u.createdAt,
      u.passwordChangedAt,
      u.email,
      u.emailVerified,
    ],
  ];
}

const INSERT_KEY = `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, created_at, retire_until)
  VALUES ($1, $2, $3, $4, $5, $6, $7)`;

function keyParams(k: SigningKeyRecord): unknown[] {
  return [k.kid, k.alg, k.state, JSON.stringify(k.publicJwk), k.privateKeyEnc, k.createdAt, k.retireUntil];
}

/** A session row joined with its user's fields (`u_` columns). */
const SESSION_WITH_USER = `SELECT s.*, u.username AS u_username, u.roles AS u_roles, u.disabled AS u_disabled
  FROM sessions s JOIN users u ON u.id = s.user_id`;

/** Connects, creates the schema if needed and runs pending migrations (the one list, every role's tables). */
export function openPgDatabase(url: string, options: PostgresStoreOptions = {}): Promise<PgDatabase> {
  return PgDatabase.open(url, options, {
    owner: 'PostgreSQL store',
    applicationName: 'tessera',
    migrationTable: 'tessera_migrations',
    migrations: MIGRATIONS,
  });
}

/**
 * The account roles in PostgreSQL, shared by every instance of a cluster. Each call is one
 * statement, or one transaction whose writes are guarded by row locks, advisory locks or a
 * compare-and-set, so instances sharing the database never read-then-write without a lock.
 */
export class PostgresAccounts
  implements UserStore, SessionStore, KeyStore, RevocationLog, Counters, AuditLog
{
  constructor(private readonly db: PgDatabase) {}

  private get schema(): string {
    return this.db.schema;
  }

  async createUser(u: UserRecord): Promise<UserRecord | null> {
    return (await this.db.q(...userInsert(u))).length === 1 ? u : null;
  }

  async getUserById(id: string): Promise<UserRecord | null> {
    const [r] = await this.db.q('SELECT * FROM users WHERE id = $1', [id]);
    return r ? toUser(r) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const [r] = await this.db.q('SELECT * FROM users WHERE username = $1', [username]);
    return r ? toUser(r) : null;
  }

  async listUsers(limit: number, offset: number): Promise<UserRecord[]> {
    return (
      await this.db.q('SELECT * FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2', [limit, offset])
    ).map(toUser);
  }

  async setPasswordHash(
    userId: string,
    passwordHash: string,
    changedAt: number,
    expectedHash?: string,
  ): Promise<boolean> {
    const set = 'UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3';
    return expectedHash === undefined
      ? (await this.db.count(set, [passwordHash, changedAt, userId])) === 1
      : (await this.db.count(`${set} AND password_hash = $4`, [
          passwordHash,
          changedAt,
          userId,
          expectedHash,
        ])) === 1;
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<boolean> {
    return (await this.db.count('UPDATE users SET disabled = $1 WHERE id = $2', [disabled, userId])) === 1;
  }

  async getUserByEmail(email: string): Promise<UserRecord | null> {
    const [r] = await this.db.q('SELECT * FROM users WHERE email = $1 AND email_verified', [email]);
    return r ? toUser(r) : null;
  }

  async setEmail(userId: string, email: string | null, verified: boolean): Promise<boolean> {
    try {
      return (
        (await this.db.count('UPDATE users SET email = $1, email_verified = $2 WHERE id = $3', [
          email,
          verified && email !== null,
          userId,
        ])) === 1
      );
    } catch (err) {
      if ((err as { code?: unknown }).code === '23505') return false;
      throw err;
    }
  }

  async createEmailToken(t: EmailTokenRecord): Promise<void> {
    await this.db.q(
      `INSERT INTO email_tokens (hash, purpose, user_id, email, created_at, expires_at, used_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [t.hash, t.purpose, t.userId, t.email, t.createdAt, t.expiresAt, t.usedAt],
    );
  }

  async getEmailToken(
    hash: string,
    purpose: EmailTokenPurpose,
    now: number,
  ): Promise<EmailTokenRecord | null> {
    const [r] = await this.db.q(
      'SELECT * FROM email_tokens WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3',
      [hash, purpose, now],
    );
    return r ? toEmailToken(r) : null;
  }

  async useEmailToken(
    hash: string,
    purpose: EmailTokenPurpose,
    now: number,
  ): Promise<EmailTokenRecord | null> {
    const [r] = await this.db.q(
      `UPDATE email_tokens SET used_at = $3
       WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING *`,
      [hash, purpose, now],
    );
    return r ? toEmailToken(r) : null;
  }

  spendEmailTokens(
    userId: string,
    purposes: readonly EmailTokenPurpose[],
    now: number,
    issuedFrom = Number.MIN_SAFE_INTEGER,
  ): Promise<number> {
    return this.db.count(
      `UPDATE email_tokens SET used_at = $1
       WHERE user_id = $2 AND used_at IS NULL AND purpose = ANY($3::text[]) AND created_at >= $4`,
      [now, userId, [...purposes], issuedFrom],
    );
  }

  pruneEmailTokens(now: number): Promise<number> {
    return this.db.count('DELETE FROM email_tokens WHERE expires_at <= $1', [now]);
  }

  /** The user is the users row the session references; `_user` is for stores that keep sessions apart. */
  createSession(s: SessionRecord, _user: SessionUser, firstRefresh?: RefreshTokenRecord): Promise<void> {
    const insertSession = `INSERT INTO sessions (id, user_id, mode, secret_hash, created_at, last_seen_at, expires_at,
         idle_expires_at, user_agent, ip, revoked_at, revoke_reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`;
    const params = [
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
    ];
    if (!firstRefresh) return this.db.q(insertSession, params).then(() => undefined);
    const t = firstRefresh;
    // One statement: the session and its first refresh token are stored together or not at all.
    return this.db
      .q(
        `WITH s AS (${insertSession} RETURNING id)
       INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
       SELECT $13::text, s.id, $14::text, $15::text, $16::bigint, $17::bigint, $18::bigint FROM s`,
        [...params, t.id, t.secretHash, t.parentId, t.createdAt, t.expiresAt, t.usedAt],
      )
      .then(() => undefined);
  }

  async getLiveSession(id: string, now: number): Promise<LiveSession | null> {
    const [r] = await this.db.q(
      `${SESSION_WITH_USER} WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2`,
      [id, now],
    );
    return r ? { session: toSession(r), user: toSessionUser(r) } : null;
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const [r] = await this.db.q('SELECT * FROM sessions WHERE id = $1', [id]);
    return r ? toSession(r) : null;
  }

  async touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    await this.db.q(
      `UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $1),
         idle_expires_at = LEAST(expires_at, GREATEST(idle_expires_at, $2))
       WHERE id = $3 AND revoked_at IS NULL AND idle_expires_at > $1 AND expires_at > $1`,
      [lastSeenAt, idleExpiresAt, id],
    );
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const rows = await this.db.q(
      `SELECT * FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND idle_expires_at > $2
       ORDER BY created_at DESC, id`,
      [userId, now],
    );
    return rows.map(toSession);
  }

  async revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    const n = await this.db.count(
      `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
       WHERE id = $3 AND revoked_at IS NULL AND expires_at > $1 AND idle_expires_at > $1`,
      [now, reason, id],
    );
    return n === 1;
  }

  /** In batches, each one statement: the ended sessions' refresh tokens, then the sessions. */
  async pruneSessions(endedBefore: number): Promise<number> {
    let total = 0;
    for (let n = SESSION_PRUNE_BATCH; n === SESSION_PRUNE_BATCH; total += n) {
      n = await this.db.count(
        `WITH ended AS (
           SELECT id FROM sessions WHERE revoked_at < $1 OR idle_expires_at < $1 OR expires_at < $1
           LIMIT ${SESSION_PRUNE_BATCH} FOR UPDATE SKIP LOCKED
         ), tokens AS (
           DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM ended)
         )
         DELETE FROM sessions WHERE id IN (SELECT id FROM ended)`,
        [endedBefore],
      );
    }
    return total;
  }

  async revokeUserSessions(
    userId: string,
    now: number,
    reason: string,
    exceptId?: string,
  ): Promise<string[]> {
    const rows = await this.db.q(
      `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
       WHERE user_id = $3 AND id <> $4 AND revoked_at IS NULL AND expires_at > $1 AND idle_expires_at > $1
       RETURNING id`,
      [now, reason, userId, exceptId ?? ''],
    );
    return rows.map((r) => r.id as string);
  }

  async sessionOfRefreshToken(
    id: string,
    secretHash: string,
    now: number,
    graceMs: number,
  ): Promise<SessionRecord | null> {
    const [r] = await this.db.q(
      `SELECT s.*, t.secret_hash AS t_secret_hash, t.expires_at AS t_expires_at, t.used_at AS t_used_at
       FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
       WHERE t.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2`,
      [id, now],
    );
    if (!r || !safeEqual(r.t_secret_hash as string, secretHash)) return null;
    const usedAt = r.t_used_at === null ? null : Number(r.t_used_at);
    return refreshStillHonoured(Number(r.t_expires_at), usedAt, now, graceMs) ? toSession(r) : null;
  }

  rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    return this.db.tx(async (c) => {
      // Locks the token and its session: concurrent rotations of one token queue here, and the
      // decision below is taken on rows nobody else can change until commit.
      const { rows } = await c.query(
        `SELECT t.secret_hash AS t_secret_hash, t.expires_at AS t_expires_at, t.used_at AS t_used_at,
           s.*, u.username AS u_username, u.roles AS u_roles, u.disabled AS u_disabled
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
         WHERE t.id = $1 FOR UPDATE OF t, s`,
        [req.id],
      );
      const r = rows[0] as Row | undefined;
      if (!r || !safeEqual(r.t_secret_hash as string, req.secretHash)) return { outcome: 'invalid' };
      const session = toSession(r);
      const user = toSessionUser(r);
      const live =
        session.revokedAt === null &&
        session.expiresAt > req.now &&
        session.idleExpiresAt > req.now &&
        !user.disabled;
      if (!live) return { outcome: 'invalid' };
      const usedAt = r.t_used_at as number | null;
      const idleEnd = Math.min(session.expiresAt, req.now + req.idleTtlMs);
      if (usedAt === null) {
        // Only an unused token's own expiry counts: a spent one replayed later is reuse, however old.
        if ((r.t_expires_at as number) <= req.now) return { outcome: 'invalid' };
        // The token spent, its successor stored and the session slid, in one statement.
        await c.query(
          `WITH spent AS (UPDATE refresh_tokens SET used_at = $1 WHERE id = $2),
             successor AS (
               INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
               VALUES ($3, $4, $5, $2, $1, $6, NULL) ON CONFLICT DO NOTHING)
           UPDATE sessions SET last_seen_at = $1, idle_expires_at = $6 WHERE id = $4`,
          [req.now, req.id, req.successorId, session.id, req.successorSecretHash, idleEnd],
        );
        session.lastSeenAt = req.now;
        session.idleExpiresAt = idleEnd;
        return { outcome: 'rotated', session, user, successorExpiresAt: idleEnd };
      }
      if (req.now - usedAt <= req.graceMs) {
        const successor = await c.query('SELECT expires_at, used_at FROM refresh_tokens WHERE id = $1', [
          req.successorId,
        ]);
        // A repeat within the grace window retries an answer that was lost and gets the same
        // successor, unless that one is spent too, which no retry explains: reuse, below.
        if (successor.rows[0]?.used_at == null) {
          const successorExpiresAt = (successor.rows[0]?.expires_at as number | undefined) ?? idleEnd;
          return { outcome: 'grace', session, user, successorExpiresAt };
        }
      }
      await c.query(`UPDATE sessions SET revoked_at = $1, revoke_reason = 'refresh_reuse' WHERE id = $2`, [
        req.now,
        session.id,
      ]);
      return { outcome: 'reused', sessionId: session.id, userId: session.userId };
    });
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return (await this.db.q('SELECT * FROM signing_keys ORDER BY created_at, kid')).map(toKey);
  }

  /** The ring has no single row to lock while empty, so ring changes take an advisory lock instead. */
  private async lockRing(c: Queryable): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tessera:keys:${this.schema}`]);
  }

  initSigningKeys(keys: SigningKeyRecord[]): Promise<boolean> {
    return this.db.tx(async (c) => {
      await this.lockRing(c);
      const { rows } = await c.query('SELECT EXISTS (SELECT 1 FROM signing_keys) AS taken');
      if (rows[0]?.taken === true) return false;
      for (const k of keys) await c.query(INSERT_KEY, keyParams(k));
      return true;
    });
  }

  rotateSigningKeys(
    newNext: SigningKeyRecord,
    expectedCurrent: string | null,
    _now: number,
    retireUntil: number,
  ): Promise<boolean> {
    return this.db.tx(async (c) => {
      await this.lockRing(c);
      const { rows } = await c.query(`SELECT kid FROM signing_keys WHERE state = 'current'`);
      if (((rows[0]?.kid as string | undefined) ?? null) !== expectedCurrent) return false;
      await c.query(
        `UPDATE signing_keys SET state = 'retired', retire_until = $1, private_key_enc = '' WHERE state = 'current'`,
        [retireUntil],
      );
      await c.query(`UPDATE signing_keys SET state = 'current' WHERE state = 'next'`);
      await c.query(INSERT_KEY, keyParams({ ...newNext, state: 'next' }));
      return true;
    });
  }

  deleteRetiredKeys(now: number): Promise<number> {
    return this.db.count(`DELETE FROM signing_keys WHERE state = 'retired' AND retire_until <= $1`, [now]);
  }

  appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]> {
    if (entries.length === 0) return Promise.resolve([]);
    return this.db.tx(async (c) => {
      // Appends are serialised so seqs become visible in order: a reader that has seen seq n
      // can never later miss an entry with a smaller seq that committed after it.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tessera:revocations:${this.schema}`]);
      const { rows } = await c.query(
        `INSERT INTO revocations (sid, sub, not_before, expires_at, reason)
         SELECT sid, sub, not_before, expires_at, reason
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY
           AS e(sid, sub, not_before, expires_at, reason, ord)
         ORDER BY ord
         RETURNING *`,
        [
          entries.map((e) => e.sid),
          entries.map((e) => e.sub),
          entries.map((e) => e.notBefore),
          entries.map((e) => e.expiresAt),
          entries.map((e) => e.reason),
        ],
      );
      return (rows as Row[]).map(toRevocation).sort((a, b) => a.seq - b.seq);
    });
  }

  async listRevocations(afterSeq: number, nowSeconds: number, limit: number): Promise<RevocationEntry[]> {
    const rows = await this.db.q(
      'SELECT * FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3',
      [afterSeq, nowSeconds, limit],
    );
    return rows.map(toRevocation);
  }

  pruneRevocations(nowSeconds: number): Promise<number> {
    return this.db.count('DELETE FROM revocations WHERE expires_at <= $1', [nowSeconds]);
  }

  async hitCounter(key: string, windowMs: number, now: number, by = 1): Promise<number> {
    const [r] = await this.db.q(
      `INSERT INTO counters AS c (key, count, window_end) VALUES ($1, GREATEST(0, $4::int), $2)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN c.window_end <= $3 THEN excluded.count ELSE GREATEST(0, c.count + $4::int) END,
         window_end = CASE WHEN c.window_end <= $3 THEN excluded.window_end ELSE c.window_end END
       RETURNING count`,
      [key, now + windowMs, now, by],
    );
    return r!.count as number;
  }

  async getCounter(key: string, now: number): Promise<number> {
    const [r] = await this.db.q('SELECT count FROM counters WHERE key = $1 AND window_end > $2', [key, now]);
    return (r?.count as number | undefined) ?? 0;
  }

  async resetCounter(key: string): Promise<void> {
    await this.db.q('DELETE FROM counters WHERE key = $1', [key]);
  }

  async setLock(key: string, until: number): Promise<void> {
    await this.db.q(
      `INSERT INTO locks AS l (key, until) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET until = GREATEST(l.until, excluded.until)`,
      [key, until],
    );
  }

  async getLock(key: string, now: number): Promise<number> {
    const [r] = await this.db.q('SELECT until FROM locks WHERE key = $1 AND until > $2', [key, now]);
    return (r?.until as number | undefined) ?? 0;
  }

  async appendAuditEvent(e: NewAuditEvent): Promise<void> {
    await this.db.q(
      'INSERT INTO audit_events (at, type, user_id, session_id, ip, user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [e.at, e.type, e.userId, e.sessionId, e.ip, e.userAgent, e.detail],
    );
  }

  async listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    const rows = await this.db.q(
      `SELECT * FROM audit_events
       WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR type = $2) AND ($3::bigint IS NULL OR seq < $3)
       ORDER BY seq DESC LIMIT $4`,
      [query.userId ?? null, query.type ?? null, query.beforeSeq ?? null, query.limit],
    );
    return rows.map(toAudit);
  }
}

/** Every role from one PostgreSQL schema, over one pool. */
export async function openPostgresStores(url: string, options: PostgresStoreOptions = {}): Promise<Stores> {
  const db = await openPgDatabase(url, options);
  return {
    ...storesOn(db, new PostgresAccounts(db), new PostgresOAuthStore(db)),
    identities: new PostgresIdentities(db),
    mail: new PostgresMailOutbox(db),
  };
}
