import type Database from 'better-sqlite3';
import { openSqlite, StatementCache, settle } from '../store/sqlite-common.js';
import type {
  AuthorizationCodeRecord,
  ClientRecord,
  GrantRecord,
  OAuthRefreshTokenRecord,
  OAuthRotateOutcome,
  OAuthStore,
} from './types.js';

/** Its own tables and its own version counter (the account store owns `user_version`). */
const MIGRATIONS: string[] = [
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
     created_at INTEGER NOT NULL
   );
   CREATE TABLE oauth_grants (
     id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     scope TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     revoked_at INTEGER,
     revoke_reason TEXT
   );
   CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants(user_id, client_id) WHERE revoked_at IS NULL;
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
  `ALTER TABLE oauth_clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';`,
];

type Row = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function toClient(r: Row): ClientRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    type: r.type as ClientRecord['type'],
    secretHash: str(r.secret_hash),
    authMethod: r.auth_method as ClientRecord['authMethod'],
    redirectUris: JSON.parse(r.redirect_uris as string) as string[],
    grantTypes: JSON.parse(r.grant_types as string) as ClientRecord['grantTypes'],
    scopes: JSON.parse(r.scopes as string) as string[],
    requireDpop: r.require_dpop === 1,
    resources: JSON.parse(r.resources as string) as string[],
    createdAt: r.created_at as number,
  };
}

function toGrant(r: Row): GrantRecord {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    clientId: r.client_id as string,
    scope: r.scope as string,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
    revokeReason: str(r.revoke_reason),
  };
}

function toCode(r: Row): AuthorizationCodeRecord {
  return {
    codeHash: r.code_hash as string,
    clientId: r.client_id as string,
    userId: r.user_id as string,
    grantId: r.grant_id as string,
    redirectUri: r.redirect_uri as string,
    redirectUriGiven: r.redirect_uri_given === 1,
    scope: r.scope as string,
    codeChallenge: r.code_challenge as string,
    nonce: str(r.nonce),
    authTime: r.auth_time as number,
    dpopJkt: str(r.dpop_jkt),
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    consumedAt: (r.consumed_at as number | null) ?? null,
  };
}

function toRefresh(r: Row): OAuthRefreshTokenRecord {
  return {
    id: r.id as string,
    grantId: r.grant_id as string,
    clientId: r.client_id as string,
    userId: r.user_id as string,
    secretHash: r.secret_hash as string,
    scope: r.scope as string,
    dpopJkt: str(r.dpop_jkt),
    parentId: str(r.parent_id),
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    usedAt: (r.used_at as number | null) ?? null,
  };
}

function mergeScopes(a: string, b: string): string {
  return [...new Set([...a.split(' '), ...b.split(' ')].filter(Boolean))].join(' ');
}

/**
 * The OAuth tables in SQLite: a file of their own (or ':memory:'), or a better-sqlite3 handle
 * shared with something else. Every change that must be atomic is one transaction.
 */
export class SqliteOAuthStore implements OAuthStore {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly owned: boolean;
  private readonly statements: StatementCache;

  constructor(fileOrDb: string | Database.Database) {
    if (typeof fileOrDb === 'string') {
      this.db = openSqlite(fileOrDb);
      this.owned = true;
    } else {
      this.db = fileOrDb;
      this.owned = false;
    }
    this.statements = new StatementCache(this.db);
    this.migrate();
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS oauth_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)');
    this.db
      .transaction(() => {
        const row = this.db.prepare("SELECT value FROM oauth_meta WHERE key = 'version'").get() as
          | { value: number }
          | undefined;
        for (let v = row?.value ?? 0; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]!);
        this.db
          .prepare(
            "INSERT INTO oauth_meta (key, value) VALUES ('version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
          )
          .run(MIGRATIONS.length);
      })
      .immediate();
  }

  private q(sql: string): Database.Statement {
    return this.statements.get(sql);
  }

  private run<T>(fn: () => T): Promise<T> {
    return settle(fn);
  }

  createClient(c: ClientRecord): Promise<boolean> {
    return this.run(
      () =>
        this.q(
          `INSERT INTO oauth_clients (id, name, type, secret_hash, auth_method, redirect_uris, grant_types, scopes, require_dpop, resources, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
        ).run(
          c.id,
          c.name,
          c.type,
          c.secretHash,
          c.authMethod,
          JSON.stringify(c.redirectUris),
          JSON.stringify(c.grantTypes),
          JSON.stringify(c.scopes),
          c.requireDpop ? 1 : 0,
          JSON.stringify(c.resources),
          c.createdAt,
        ).changes === 1,
    );
  }

  getClient(id: string): Promise<ClientRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM oauth_clients WHERE id = ?').get(id) as Row | undefined;
      return r ? toClient(r) : null;
    });
  }

  listClients(): Promise<ClientRecord[]> {
    return this.run(() =>
      (this.q('SELECT * FROM oauth_clients ORDER BY created_at, id').all() as Row[]).map(toClient),
    );
  }

  deleteClient(id: string): Promise<boolean> {
    return this.run(() => this.q('DELETE FROM oauth_clients WHERE id = ?').run(id).changes === 1);
  }

  getLiveGrant(userId: string, clientId: string): Promise<GrantRecord | null> {
    return this.run(() => {
      const r = this.q(
        'SELECT * FROM oauth_grants WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL',
      ).get(userId, clientId) as Row | undefined;
      return r ? toGrant(r) : null;
    });
  }

  getGrant(id: string): Promise<GrantRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM oauth_grants WHERE id = ?').get(id) as Row | undefined;
      return r ? toGrant(r) : null;
    });
  }

  private readonly upsertTx = (input: {
    id: string;
    userId: string;
    clientId: string;
    scope: string;
    now: number;
  }): GrantRecord => {
    const live = this.q(
      'SELECT * FROM oauth_grants WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL',
    ).get(input.userId, input.clientId) as Row | undefined;
    if (live) {
      const grant = toGrant(live);
      grant.scope = mergeScopes(grant.scope, input.scope);
      grant.updatedAt = input.now;
      this.q('UPDATE oauth_grants SET scope = ?, updated_at = ? WHERE id = ?').run(
        grant.scope,
        grant.updatedAt,
        grant.id,
      );
      return grant;
    }
    const scope = mergeScopes('', input.scope);
    this.q(
      `INSERT INTO oauth_grants (id, user_id, client_id, scope, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(input.id, input.userId, input.clientId, scope, input.now, input.now);
    return {
      id: input.id,
      userId: input.userId,
      clientId: input.clientId,
      scope,
      createdAt: input.now,
      updatedAt: input.now,
      revokedAt: null,
      revokeReason: null,
    };
  };

  upsertGrant(input: {
    id: string;
    userId: string;
    clientId: string;
    scope: string;
    now: number;
  }): Promise<GrantRecord> {
    return this.run(() => this.db.transaction(this.upsertTx).immediate(input));
  }

  listGrants(userId: string): Promise<GrantRecord[]> {
    return this.run(() =>
      (
        this.q(
          'SELECT * FROM oauth_grants WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id',
        ).all(userId) as Row[]
      ).map(toGrant),
    );
  }

  listClientGrants(clientId: string): Promise<GrantRecord[]> {
    return this.run(() =>
      (
        this.q('SELECT * FROM oauth_grants WHERE client_id = ? AND revoked_at IS NULL').all(clientId) as Row[]
      ).map(toGrant),
    );
  }

  private readonly revokeTx = (id: string, now: number, reason: string): boolean => {
    const changed = this.q(
      'UPDATE oauth_grants SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL',
    ).run(now, reason, id).changes;
    this.q(
      'UPDATE oauth_refresh_tokens SET used_at = COALESCE(used_at, ?), expires_at = MIN(expires_at, ?) WHERE grant_id = ?',
    ).run(now, now, id);
    return changed === 1;
  };

  revokeGrant(id: string, now: number, reason: string): Promise<boolean> {
    return this.run(() => this.db.transaction(this.revokeTx).immediate(id, now, reason));
  }

  insertCode(c: AuthorizationCodeRecord): Promise<void> {
    return this.run(() => {
      this.q(
        `INSERT INTO oauth_codes (code_hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given, scope,
           code_challenge, nonce, auth_time, dpop_jkt, created_at, expires_at, consumed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        c.codeHash,
        c.clientId,
        c.userId,
        c.grantId,
        c.redirectUri,
        c.redirectUriGiven ? 1 : 0,
        c.scope,
        c.codeChallenge,
        c.nonce,
        c.authTime,
        c.dpopJkt,
        c.createdAt,
        c.expiresAt,
        c.consumedAt,
      );
    });
  }

  getCode(codeHash: string): Promise<AuthorizationCodeRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM oauth_codes WHERE code_hash = ?').get(codeHash) as Row | undefined;
      return r ? toCode(r) : null;
    });
  }

  consumeCode(codeHash: string, now: number): Promise<boolean> {
    return this.run(
      () =>
        this.q('UPDATE oauth_codes SET consumed_at = ? WHERE code_hash = ? AND consumed_at IS NULL').run(
          now,
          codeHash,
        ).changes === 1,
    );
  }

  insertRefreshToken(t: OAuthRefreshTokenRecord): Promise<void> {
    return this.run(() => this.insertRefreshTokenSync(t));
  }

  getRefreshToken(id: string): Promise<OAuthRefreshTokenRecord | null> {
    return this.run(() => {
      const r = this.q('SELECT * FROM oauth_refresh_tokens WHERE id = ?').get(id) as Row | undefined;
      return r ? toRefresh(r) : null;
    });
  }

  private readonly rotateTx = (
    id: string,
    now: number,
    successor: OAuthRefreshTokenRecord,
    graceMs: number,
  ): OAuthRotateOutcome => {
    const r = this.q('SELECT * FROM oauth_refresh_tokens WHERE id = ?').get(id) as Row | undefined;
    if (!r) return { outcome: 'invalid' };
    const token = toRefresh(r);
    const grant = this.q('SELECT revoked_at FROM oauth_grants WHERE id = ?').get(token.grantId) as
      | { revoked_at: number | null }
      | undefined;
    if (!grant || grant.revoked_at !== null) return { outcome: 'invalid' };
    if (token.usedAt !== null)
      return graceMs > 0 && now - token.usedAt <= graceMs
        ? { outcome: 'grace' }
        : { outcome: 'reused', grantId: token.grantId };
    if (token.expiresAt <= now) return { outcome: 'invalid' };
    this.q('UPDATE oauth_refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL').run(now, id);
    this.insertRefreshTokenSync(successor);
    return { outcome: 'rotated' };
  };

  private insertRefreshTokenSync(t: OAuthRefreshTokenRecord): void {
    this.q(
      `INSERT INTO oauth_refresh_tokens (id, grant_id, client_id, user_id, secret_hash, scope, dpop_jkt, parent_id,
         created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      t.id,
      t.grantId,
      t.clientId,
      t.userId,
      t.secretHash,
      t.scope,
      t.dpopJkt,
      t.parentId,
      t.createdAt,
      t.expiresAt,
      t.usedAt,
    );
  }

  rotateRefreshToken(
    id: string,
    now: number,
    successor: OAuthRefreshTokenRecord,
    graceMs = 0,
  ): Promise<OAuthRotateOutcome> {
    return this.run(() => this.db.transaction(this.rotateTx).immediate(id, now, successor, graceMs));
  }

  rememberJti(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction(() => {
          this.q('DELETE FROM oauth_jti WHERE key = ? AND expires_at <= ?').run(key, now);
          return (
            this.q('INSERT INTO oauth_jti (key, expires_at) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(
              key,
              expiresAt,
            ).changes === 1
          );
        })
        .immediate(),
    );
  }

  prune(now: number): Promise<void> {
    return this.run(() => {
      this.db.transaction(() => {
        this.q('DELETE FROM oauth_codes WHERE expires_at <= ?').run(now - 3_600_000);
        this.q('DELETE FROM oauth_refresh_tokens WHERE expires_at <= ?').run(now - 86_400_000);
        this.q('DELETE FROM oauth_jti WHERE expires_at <= ?').run(now);
      })();
    });
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.owned && this.db.open) this.db.close();
  }
}
