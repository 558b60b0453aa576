import { PgDatabase, type PgOptions, type Queryable } from './pg.js';
import { type Row, toAudit, toKey, toRefresh, toRevocation, toSession, toUser } from './rows.js';
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
 * Migrations run in order, each once, recorded in `tessera_migrations`. Times are BIGINT
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
];

export type PostgresStoreOptions = PgOptions;

const INSERT_REFRESH = `INSERT INTO refresh_tokens (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7)`;

const INSERT_KEY = `INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, created_at, retire_until)
  VALUES ($1, $2, $3, $4, $5, $6, $7)`;

function keyParams(k: SigningKeyRecord): unknown[] {
  return [k.kid, k.alg, k.state, JSON.stringify(k.publicJwk), k.privateKeyEnc, k.createdAt, k.retireUntil];
}

/**
 * The clustered durable store. Each call is one statement, or one transaction whose writes are
 * guarded by row locks, advisory locks or a compare-and-set, so instances sharing the database
 * never read-then-write without a lock.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  private readonly db: PgDatabase;

  private constructor(db: PgDatabase) {
    this.db = db;
  }

  /** Connects, creates the schema if needed and runs pending migrations; rejects with StoreUnavailableError when the database cannot be reached. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const db = await PgDatabase.open(url, options, {
      owner: 'PostgresStore',
      applicationName: 'tessera',
      migrationTable: 'tessera_migrations',
      migrations: MIGRATIONS,
    });
    return new PostgresStore(db);
  }

  private get schema(): string {
    return this.db.schema;
  }

  private q(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.db.q(sql, params);
  }

  private count(sql: string, params: unknown[]): Promise<number> {
    return this.db.count(sql, params);
  }

  private tx<T>(fn: (c: Queryable) => Promise<T>): Promise<T> {
    return this.db.tx(fn);
  }

  async createUser(u: UserRecord): Promise<UserRecord | null> {
    const rows = await this.q(
      `INSERT INTO users (id, username, password_hash, roles, disabled, created_at, password_changed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id`,
      [u.id, u.username, u.passwordHash, u.roles, u.disabled, u.createdAt, u.passwordChangedAt],
    );
    return rows.length === 1 ? u : null;
  }

  async getUserById(id: string): Promise<UserRecord | null> {
    const [r] = await this.q('SELECT * FROM users WHERE id = $1', [id]);
    return r ? toUser(r) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const [r] = await this.q('SELECT * FROM users WHERE username = $1', [username]);
    return r ? toUser(r) : null;
  }

  async listUsers(limit: number, offset: number): Promise<UserRecord[]> {
    return (
      await this.q('SELECT * FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2', [limit, offset])
    ).map(toUser);
  }

  async setPasswordHash(userId: string, passwordHash: string, changedAt: number): Promise<void> {
    await this.q('UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3', [
      passwordHash,
      changedAt,
      userId,
    ]);
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<boolean> {
    return (await this.count('UPDATE users SET disabled = $1 WHERE id = $2', [disabled, userId])) === 1;
  }

  async createSession(s: SessionRecord): Promise<void> {
    await this.q(
      `INSERT INTO sessions (id, user_id, mode, secret_hash, created_at, last_seen_at, expires_at, idle_expires_at,
         user_agent, ip, revoked_at, revoke_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
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
      ],
    );
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const [r] = await this.q('SELECT * FROM sessions WHERE id = $1', [id]);
    return r ? toSession(r) : null;
  }

  async touchSession(id: string, lastSeenAt: number, idleExpiresAt: number): Promise<void> {
    await this.q(
      `UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $1),
         idle_expires_at = LEAST(expires_at, GREATEST(idle_expires_at, $2))
       WHERE id = $3 AND revoked_at IS NULL`,
      [lastSeenAt, idleExpiresAt, id],
    );
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const rows = await this.q(
      `SELECT * FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND idle_expires_at > $2
       ORDER BY created_at DESC, id`,
      [userId, now],
    );
    return rows.map(toSession);
  }

  async revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    const n = await this.count(
      `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
       WHERE id = $3 AND revoked_at IS NULL AND expires_at > $1 AND idle_expires_at > $1`,
      [now, reason, id],
    );
    return n === 1;
  }

  async revokeUserSessions(
    userId: string,
    now: number,
    reason: string,
    exceptId?: string,
  ): Promise<string[]> {
    const rows = await this.q(
      `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
       WHERE user_id = $3 AND id <> $4 AND revoked_at IS NULL AND expires_at > $1 AND idle_expires_at > $1
       RETURNING id`,
      [now, reason, userId, exceptId ?? ''],
    );
    return rows.map((r) => r.id as string);
  }

  async insertRefreshToken(t: RefreshTokenRecord): Promise<void> {
    await this.q(INSERT_REFRESH, [
      t.id,
      t.sessionId,
      t.secretHash,
      t.parentId,
      t.createdAt,
      t.expiresAt,
      t.usedAt,
    ]);
  }

  async getRefreshToken(id: string): Promise<RefreshTokenRecord | null> {
    const [r] = await this.q('SELECT * FROM refresh_tokens WHERE id = $1', [id]);
    return r ? toRefresh(r) : null;
  }

  rotateRefreshToken(req: RotateRequest): Promise<RotateOutcome> {
    return this.tx(async (c) => {
      // Locks the token and its session: concurrent rotations of one token queue here, and the
      // decision below is taken on rows nobody else can change until commit.
      const { rows } = await c.query(
        `SELECT t.session_id, t.expires_at, t.used_at,
                s.revoked_at AS s_revoked_at, s.expires_at AS s_expires_at, s.idle_expires_at AS s_idle_expires_at
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
         WHERE t.id = $1 FOR UPDATE OF t, s`,
        [req.id],
      );
      const r = rows[0] as Row | undefined;
      if (!r) return { outcome: 'invalid' };
      const sessionId = r.session_id as string;
      const live =
        r.s_revoked_at === null &&
        (r.s_expires_at as number) > req.now &&
        (r.s_idle_expires_at as number) > req.now &&
        (r.expires_at as number) > req.now;
      if (!live) return { outcome: 'invalid' };
      const usedAt = r.used_at as number | null;
      if (usedAt === null) {
        const won = await c.query(
          'UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL',
          [req.now, req.id],
        );
        if (won.rowCount !== 1) return { outcome: 'invalid' };
        const s = req.successor;
        await c.query(`${INSERT_REFRESH} ON CONFLICT DO NOTHING`, [
          s.id,
          s.sessionId,
          s.secretHash,
          s.parentId,
          s.createdAt,
          s.expiresAt,
          null,
        ]);
        await c.query(
          `UPDATE sessions SET last_seen_at = $1, idle_expires_at = LEAST(expires_at, $2)
           WHERE id = $3 AND revoked_at IS NULL`,
          [req.now, req.sessionIdleExpiresAt, sessionId],
        );
        return { outcome: 'rotated' };
      }
      if (req.now - usedAt <= req.graceMs) return { outcome: 'grace' };
      await c.query(
        `UPDATE sessions SET revoked_at = $1, revoke_reason = 'refresh_reuse' WHERE id = $2 AND revoked_at IS NULL`,
        [req.now, sessionId],
      );
      return { outcome: 'reused', sessionId };
    });
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return (await this.q('SELECT * FROM signing_keys ORDER BY created_at, kid')).map(toKey);
  }

  /** The ring has no single row to lock while empty, so ring changes take an advisory lock instead. */
  private async lockRing(c: Queryable): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tessera:keys:${this.schema}`]);
  }

  initSigningKeys(keys: SigningKeyRecord[]): Promise<boolean> {
    return this.tx(async (c) => {
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
    return this.tx(async (c) => {
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
    return this.count(`DELETE FROM signing_keys WHERE state = 'retired' AND retire_until <= $1`, [now]);
  }

  appendRevocations(entries: NewRevocation[]): Promise<RevocationEntry[]> {
    if (entries.length === 0) return Promise.resolve([]);
    return this.tx(async (c) => {
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
    const rows = await this.q(
      'SELECT * FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3',
      [afterSeq, nowSeconds, limit],
    );
    return rows.map(toRevocation);
  }

  pruneRevocations(nowSeconds: number): Promise<number> {
    return this.count('DELETE FROM revocations WHERE expires_at <= $1', [nowSeconds]);
  }

  async hitCounter(key: string, windowMs: number, now: number, by = 1): Promise<number> {
    const [r] = await this.q(
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
    const [r] = await this.q('SELECT count FROM counters WHERE key = $1 AND window_end > $2', [key, now]);
    return (r?.count as number | undefined) ?? 0;
  }

  async resetCounter(key: string): Promise<void> {
    await this.q('DELETE FROM counters WHERE key = $1', [key]);
  }

  async setLock(key: string, until: number): Promise<void> {
    await this.q(
      `INSERT INTO locks AS l (key, until) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET until = GREATEST(l.until, excluded.until)`,
      [key, until],
    );
  }

  async getLock(key: string, now: number): Promise<number> {
    const [r] = await this.q('SELECT until FROM locks WHERE key = $1 AND until > $2', [key, now]);
    return (r?.until as number | undefined) ?? 0;
  }

  async appendAuditEvent(e: NewAuditEvent): Promise<void> {
    await this.q(
      'INSERT INTO audit_events (at, type, user_id, session_id, ip, user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [e.at, e.type, e.userId, e.sessionId, e.ip, e.userAgent, e.detail],
    );
  }

  async listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    const rows = await this.q(
      `SELECT * FROM audit_events
       WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR type = $2) AND ($3::bigint IS NULL OR seq < $3)
       ORDER BY seq DESC LIMIT $4`,
      [query.userId ?? null, query.type ?? null, query.beforeSeq ?? null, query.limit],
    );
    return rows.map(toAudit);
  }

  async ping(): Promise<void> {
    await this.q('SELECT 1');
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
