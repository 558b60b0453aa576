import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors.js';
import { privateDir, privateFile } from '../util/private-files.js';
import type { Backend } from './ports.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';

/**
 * Runs synchronous SQLite work as a promise. SQLite faults (locked, I/O, corrupt, full) fail
 * closed as StoreUnavailableError, so the HTTP layer answers 503; constraint violations are the
 * caller's business and stay what they are.
 */
export function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(storeFault(err));
  }
}

/** What a caller sees of an error SQLite threw: a fault becomes StoreUnavailableError. */
function storeFault(err: unknown): unknown {
  const code = err instanceof Error && 'code' in err ? String((err as { code: unknown }).code) : '';
  return code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT')
    ? new StoreUnavailableError(err)
    : err;
}

/** A transaction waiting for the next group commit. */
interface QueuedTx {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

/** Prepared statements, each prepared once per connection. */
export class StatementCache {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

/**
 * Opens a SQLite file (or ':memory:') in WAL mode, creating its folder. Folder 0700, files 0600:
 * the file is made before SQLite opens it, and SQLite gives its -wal and -shm files the same mode.
 */
export function openSqlite(file: string, sync: 'normal' | 'full' = 'normal'): Database.Database {
  const onDisk = file !== ':memory:';
  if (onDisk) {
    privateDir(path.dirname(file));
    privateFile(file, true);
    privateFile(`${file}-wal`);
    privateFile(`${file}-shm`);
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL: WAL frames reach the disk at checkpoints, so a power loss may undo the last commits;
  // FULL syncs the WAL at every (group) commit. TESSERA_SQLITE_SYNC picks.
  db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * The embedded database's one migration list, recorded in `user_version`: the account tables and
 * the OAuth provider's, in one file, so a grant's user is a foreign key like a session's.
 */
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
  `CREATE TABLE oauth_clients (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     type TEXT NOT NULL,
     secret_hash TEXT,
     auth_method TEXT NOT NULL,
     redirect_uris TEXT NOT NULL,
     grant_types TEXT NOT NULL,
     scopes TEXT NOT NULL,
     require_dpop INTEGER NOT NULL DEFAULT 0,
     resources TEXT NOT NULL DEFAULT '[]',
     created_at INTEGER NOT NULL
   );
   -- subject: a user id, or a client's own subject (client credentials); user_id is the user's, by key
   CREATE TABLE oauth_grants (
     id TEXT PRIMARY KEY,
     subject TEXT NOT NULL,
     user_id TEXT REFERENCES users(id),
     client_id TEXT NOT NULL,
     scope TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     revoked_at INTEGER,
     revoke_reason TEXT,
     CHECK (user_id IS NULL OR user_id = subject)
   );
   CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants(subject, client_id) WHERE revoked_at IS NULL;
   CREATE INDEX oauth_grants_client ON oauth_grants(client_id);
   CREATE TABLE oauth_codes (
     code_hash TEXT PRIMARY KEY,
     client_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     grant_id TEXT NOT NULL,
     redirect_uri TEXT NOT NULL,
     redirect_uri_given INTEGER NOT NULL,
     scope TEXT NOT NULL,
     code_challenge TEXT NOT NULL,
     nonce TEXT,
     auth_time INTEGER NOT NULL,
     dpop_jkt TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     consumed_at INTEGER
   );
   CREATE TABLE oauth_refresh_tokens (
     id TEXT PRIMARY KEY,
     grant_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     secret_hash TEXT NOT NULL,
     scope TEXT NOT NULL,
     dpop_jkt TEXT,
     parent_id TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER
   );
   CREATE INDEX oauth_refresh_grant ON oauth_refresh_tokens(grant_id);
   CREATE TABLE oauth_jti (
     key TEXT PRIMARY KEY,
     expires_at INTEGER NOT NULL
   );`,
  // Refresh tokens clustered by id: an id begins with its session's id, so a rotation's parent and
  // successor share a page and a commit writes that page and the session's, nothing else. And the
  // counter tables go: the embedded deployment keeps its counters in the process.
  `CREATE TABLE refresh_tokens_by_id (
     id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL REFERENCES sessions(id),
     secret_hash TEXT NOT NULL,
     parent_id TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER
   ) WITHOUT ROWID;
   INSERT INTO refresh_tokens_by_id (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
     SELECT id, session_id, secret_hash, parent_id, created_at, expires_at, used_at FROM refresh_tokens;
   DROP TABLE refresh_tokens;
   ALTER TABLE refresh_tokens_by_id RENAME TO refresh_tokens;
   -- Rate-limit counters and lockouts live in the process (MemoryCounters).
   DROP TABLE IF EXISTS counters;
   DROP TABLE IF EXISTS locks;`,
  // Upstream sign-in identities, keyed by (issuer, subject), never by email.
  `CREATE TABLE IF NOT EXISTS identities (
     id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL REFERENCES users(id),
     issuer TEXT NOT NULL,
     subject TEXT NOT NULL,
     provider_id TEXT NOT NULL,
     email TEXT,
     name TEXT,
     created_at INTEGER NOT NULL,
     UNIQUE (issuer, subject)
   );
   CREATE INDEX IF NOT EXISTS identities_user ON identities(user_id, created_at);`,
  // Email addresses (unique among verified ones) and the one-time tokens mailed to them, by hash.
  `ALTER TABLE users ADD COLUMN email TEXT;
   ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
   CREATE UNIQUE INDEX users_verified_email ON users(email) WHERE email_verified = 1;
   CREATE INDEX users_email ON users(email);
   CREATE TABLE email_tokens (
     hash TEXT PRIMARY KEY,
     purpose TEXT NOT NULL,
     user_id TEXT NOT NULL REFERENCES users(id),
     email TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER
   ) WITHOUT ROWID;
   CREATE INDEX email_tokens_expires ON email_tokens(expires_at);`,
  // Mails waiting to be sent, sealed by the queue; `seq` is the order they were queued in.
  `CREATE TABLE mail_queue (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     sealed TEXT NOT NULL,
     queued_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     lease TEXT,
     lease_until INTEGER
   );
   CREATE INDEX mail_queue_due ON mail_queue(next_attempt_at);`,
  // A user's mailed tokens, spent together when the account is secured.
  `CREATE INDEX email_tokens_user ON email_tokens(user_id) WHERE used_at IS NULL;`,
  // The absolute end of an OAuth refresh-token chain, on each of its tokens (null on tokens from
  // before: see OAuthRefreshTokenRecord.familyExpiresAt).
  `ALTER TABLE oauth_refresh_tokens ADD COLUMN family_expires_at INTEGER;
   CREATE INDEX oauth_refresh_family ON oauth_refresh_tokens(family_expires_at);
   CREATE INDEX oauth_refresh_expires ON oauth_refresh_tokens(expires_at) WHERE used_at IS NULL;`,
  // No foreign key from a refresh token to its session: with one, deleting a session (pruning)
  // would look for its tokens by session_id, which no index covers (one would cost every rotation
  // a write), so every deletion would scan the table. A token's id begins with its session's id,
  // the store writes both in one transaction and deletes them together by that id range.
  `CREATE TABLE refresh_tokens_unlinked (
     id TEXT PRIMARY KEY,
     session_id TEXT NOT NULL,
     secret_hash TEXT NOT NULL,
     parent_id TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER
   ) WITHOUT ROWID;
   INSERT INTO refresh_tokens_unlinked (id, session_id, secret_hash, parent_id, created_at, expires_at, used_at)
     SELECT id, session_id, secret_hash, parent_id, created_at, expires_at, used_at FROM refresh_tokens;
   DROP TABLE refresh_tokens;
   ALTER TABLE refresh_tokens_unlinked RENAME TO refresh_tokens;`,
];

/**
 * The embedded database: one SQLite file (or ':memory:') in WAL mode holding every role, migrated
 * at open. The role classes over it (SqliteAccounts, SqliteOAuthStore) share its connection and
 * its prepared statements.
 */
export class SqliteDatabase implements Backend {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly statements: StatementCache;
  // biome-ignore lint/suspicious/noExplicitAny: keyed by any function; each entry is its own wrapper
  private readonly transactions = new WeakMap<(...args: any[]) => unknown, Database.Transaction<any>>();
  private readonly checkpointer: SqliteCheckpointer | undefined;
  /** Transactions asked for since the last group commit, in the order they were asked for. */
  private queue: QueuedTx[] = [];
  private commitCount = 0;
  // The outer transaction of a group commit: each queued one runs inside it under its own savepoint.
  private readonly group = (batch: QueuedTx[], outcomes: { ok: boolean; value: unknown }[]): void => {
    for (const item of batch) {
      if (!this.db.inTransaction) {
        // SQLite ended the transaction itself (a fault): nothing more may run outside it.
        throw new StoreUnavailableError(new Error('the group transaction was rolled back'));
      }
      try {
        outcomes.push({ ok: true, value: item.run() });
      } catch (err) {
        outcomes.push({ ok: false, value: err });
      }
    }
  };

  constructor(file: string, sync: 'normal' | 'full' = 'normal') {
    this.db = openSqlite(file, sync);
    this.db.pragma('foreign_keys = ON');
    this.statements = new StatementCache(this.db);
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
    if (file !== ':memory:') {
      this.db.pragma('wal_autocheckpoint = 10000');
      this.checkpointer = new SqliteCheckpointer(file);
    }
  }

  q(sql: string): Database.Statement {
    return this.statements.get(sql);
  }

  /** One statement or one step of work, as a promise (see settle). */
  run<T>(fn: () => T): Promise<T> {
    return settle(fn);
  }

  /**
   * `fn` as one transaction, as a promise, with group commit: the transactions asked for in one
   * turn of the event loop run, in order, inside one IMMEDIATE transaction (the write lock taken
   * at BEGIN), each under its own savepoint, and are committed together. One that throws is rolled
   * back to its savepoint alone and rejects with its error; the others still commit. Each promise
   * settles only after the commit, so nothing is answered before it is committed (and, with
   * TESSERA_SQLITE_SYNC=full, synced to the disk); a failed commit
   * rejects every one of them. The wrapper better-sqlite3 builds around a function is kept for
   * functions passed again (the hot paths pass the same one every time).
   */
  tx<A extends unknown[], T>(fn: (...args: A) => T, ...args: A): Promise<T> {
    const run = this.transaction(fn);
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(this.commitQueued);
      this.queue.push({
        run: () => run.immediate(...args),
        resolve: resolve as (value: unknown) => void,
        reject,
      });
    });
  }

  /** Transactions committed since open (a group commit counts once). */
  get commits(): number {
    return this.commitCount;
  }

  private readonly commitQueued = (): void => {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (!this.db.open) {
      for (const item of batch) item.reject(new StoreUnavailableError(new Error('the database is closed')));
      return;
    }
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.transaction(this.group).immediate(batch, outcomes);
    } catch (err) {
      const fault = storeFault(err);
      for (const item of batch) item.reject(fault);
      return;
    }
    this.commitCount++;
    for (const [i, item] of batch.entries()) {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(storeFault(outcome.value));
    }
  };

  /** better-sqlite3's wrapper of `fn`, made once per function. */
  // biome-ignore lint/suspicious/noExplicitAny: any function's arguments, as better-sqlite3 types them
  private transaction<F extends (...args: any[]) => unknown>(fn: F): Database.Transaction<F> {
    let wrapped = this.transactions.get(fn) as Database.Transaction<F> | undefined;
    if (wrapped === undefined) {
      wrapped = this.db.transaction(fn);
      this.transactions.set(fn, wrapped as never);
    }
    return wrapped;
  }

  /**
   * Copies the OAuth state out of a data folder's former `oauth.sqlite` (its own file and its own
   * migration counter) into this database, in one transaction, then renames that file
   * `oauth.sqlite.imported` so it is read once. A grant's user becomes its foreign key when the
   * user is here; a client's own grant keeps only its subject.
   */
  adoptOAuthFile(file: string): void {
    this.db.prepare('ATTACH DATABASE ? AS former').run(file);
    try {
      const columns = this.db
        .prepare(`SELECT name FROM pragma_table_info('oauth_clients', 'former')`)
        .all() as {
        name: string;
      }[];
      const resources = columns.some((c) => c.name === 'resources') ? 'resources' : `'[]'`;
      this.db.transaction(() => {
        this.db.exec(`
          INSERT OR IGNORE INTO main.oauth_clients (id, name, type, secret_hash, auth_method, redirect_uris,
            grant_types, scopes, require_dpop, resources, created_at)
          SELECT id, name, type, secret_hash, auth_method, redirect_uris, grant_types, scopes, require_dpop,
            ${resources}, created_at FROM former.oauth_clients;
          INSERT OR IGNORE INTO main.oauth_grants (id, subject, user_id, client_id, scope, created_at, updated_at,
            revoked_at, revoke_reason)
          SELECT g.id, g.user_id, u.id, g.client_id, g.scope, g.created_at, g.updated_at, g.revoked_at, g.revoke_reason
          FROM former.oauth_grants g LEFT JOIN main.users u ON u.id = g.user_id;
          INSERT OR IGNORE INTO main.oauth_codes SELECT * FROM former.oauth_codes;
          INSERT OR IGNORE INTO main.oauth_refresh_tokens (id, grant_id, client_id, user_id, secret_hash, scope,
            dpop_jkt, parent_id, created_at, expires_at, family_expires_at, used_at)
          SELECT id, grant_id, client_id, user_id, secret_hash, scope, dpop_jkt, parent_id, created_at,
            expires_at, NULL, used_at
          FROM former.oauth_refresh_tokens;
          INSERT OR IGNORE INTO main.oauth_jti SELECT * FROM former.oauth_jti;`);
      })();
    } finally {
      this.db.exec('DETACH DATABASE former');
    }
    for (const suffix of ['', '-wal', '-shm'])
      if (existsSync(`${file}${suffix}`)) renameSync(`${file}${suffix}`, `${file}.imported${suffix}`);
  }

  ping(): Promise<void> {
    return this.run(() => {
      this.q('SELECT 1').get();
    });
  }

  async close(): Promise<void> {
    this.commitQueued();
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }
}
