import { insertSql, oauthRows, type Row, toClient, toCode, toGrant, toOAuthRefresh } from '../store/rows.js';
import type { SqliteDatabase } from '../store/sqlite-common.js';
import {
  type AuthorizationCodeRecord,
  type ClientRecord,
  type GrantRecord,
  LEGACY_CHAIN_KEPT_MS,
  newGrant,
  type OAuthRefreshTokenRecord,
  type OAuthRotateOutcome,
  type OAuthStore,
  type UpsertGrantInput,
} from './types.js';

function mergeScopes(a: string, b: string): string {
  return [...new Set([...a.split(' '), ...b.split(' ')].filter(Boolean))].join(' ');
}

/** Lists are stored as JSON text, booleans as 0/1. */
const SQLITE = { list: (v: readonly string[]) => JSON.stringify(v), flag: (v: boolean) => (v ? 1 : 0) };

const param = () => '?';
const INSERT_CLIENT = `${insertSql('oauth_clients', oauthRows.clients.columns, param)} ON CONFLICT(id) DO NOTHING`;
const INSERT_GRANT = insertSql('oauth_grants', oauthRows.grants.columns, param);
const INSERT_CODE = insertSql('oauth_codes', oauthRows.codes.columns, param);
const INSERT_REFRESH = insertSql('oauth_refresh_tokens', oauthRows.refreshTokens.columns, param);

/**
 * The OAuth tables of the embedded database, over its shared connection (see SqliteDatabase).
 * Every change that must be atomic is one transaction.
 */
export class SqliteOAuthStore implements OAuthStore {
  constructor(private readonly sql: SqliteDatabase) {}

  private q(sql: string) {
    return this.sql.q(sql);
  }

  private run<T>(fn: () => T): Promise<T> {
    return this.sql.run(fn);
  }

  createClient(c: ClientRecord): Promise<boolean> {
    return this.run(() => this.q(INSERT_CLIENT).run(...oauthRows.clients.values(c, SQLITE)).changes === 1);
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
        'SELECT * FROM oauth_grants WHERE subject = ? AND client_id = ? AND revoked_at IS NULL',
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

  private readonly upsertTx = (input: UpsertGrantInput): GrantRecord => {
    const live = this.q(
      'SELECT * FROM oauth_grants WHERE subject = ? AND client_id = ? AND revoked_at IS NULL',
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
    const grant = newGrant(input, mergeScopes('', input.scope));
    this.q(INSERT_GRANT).run(...oauthRows.grants.values(grant));
    return grant;
  };

  upsertGrant(input: UpsertGrantInput): Promise<GrantRecord> {
    return this.sql.tx(() => this.upsertTx(input));
  }

  listGrants(userId: string): Promise<GrantRecord[]> {
    return this.run(() =>
      (
        this.q(
          'SELECT * FROM oauth_grants WHERE subject = ? AND revoked_at IS NULL ORDER BY created_at DESC, id',
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
      `UPDATE oauth_refresh_tokens SET used_at = COALESCE(used_at, ?), expires_at = MIN(expires_at, ?),
         family_expires_at = MIN(COALESCE(family_expires_at, ?), ?) WHERE grant_id = ?`,
    ).run(now, now, now, now, id);
    return changed === 1;
  };

  revokeGrant(id: string, now: number, reason: string): Promise<boolean> {
    return this.sql.tx(() => this.revokeTx(id, now, reason));
  }

  insertCode(c: AuthorizationCodeRecord): Promise<void> {
    return this.run(() => {
      this.q(INSERT_CODE).run(...oauthRows.codes.values(c, SQLITE));
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
      return r ? toOAuthRefresh(r) : null;
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
    const token = toOAuthRefresh(r);
    const grant = this.q('SELECT revoked_at FROM oauth_grants WHERE id = ?').get(token.grantId) as
      | { revoked_at: number | null }
      | undefined;
    if (!grant || grant.revoked_at !== null) return { outcome: 'invalid' };
    if (token.usedAt !== null) {
      if (graceMs > 0 && now - token.usedAt <= graceMs) {
        // A retry of a lost answer gets the same successor; one whose successor is spent too is reuse.
        const next = this.q('SELECT used_at FROM oauth_refresh_tokens WHERE id = ?').get(successor.id) as
          | Row
          | undefined;
        if (next?.used_at == null) return { outcome: 'grace' };
      }
      return { outcome: 'reused', grantId: token.grantId };
    }
    if (token.expiresAt <= now) return { outcome: 'invalid' };
    this.q('UPDATE oauth_refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL').run(now, id);
    this.insertRefreshTokenSync(successor);
    return { outcome: 'rotated' };
  };

  private insertRefreshTokenSync(t: OAuthRefreshTokenRecord): void {
    this.q(INSERT_REFRESH).run(...oauthRows.refreshTokens.values(t));
  }

  rotateRefreshToken(
    id: string,
    now: number,
    successor: OAuthRefreshTokenRecord,
    graceMs = 0,
  ): Promise<OAuthRotateOutcome> {
    return this.sql.tx(() => this.rotateTx(id, now, successor, graceMs));
  }

  rememberJti(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.sql.tx(() => {
      this.q('DELETE FROM oauth_jti WHERE key = ? AND expires_at <= ?').run(key, now);
      return (
        this.q('INSERT INTO oauth_jti (key, expires_at) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(
          key,
          expiresAt,
        ).changes === 1
      );
    });
  }

  prune(now: number): Promise<void> {
    return this.sql.tx(() => {
      this.q('DELETE FROM oauth_codes WHERE expires_at <= ?').run(now - 3_600_000);
      // A spent token stays while its chain may live: its replay is reuse (OAuthStore.prune).
      this.q(
        `DELETE FROM oauth_refresh_tokens WHERE family_expires_at <= ? OR (used_at IS NULL AND expires_at <= ?)
           OR (family_expires_at IS NULL AND created_at <= ?)`,
      ).run(now - 86_400_000, now - 86_400_000, now - LEGACY_CHAIN_KEPT_MS);
      this.q('DELETE FROM oauth_jti WHERE expires_at <= ?').run(now);
    });
  }
}
