import type { PgDatabase } from '../store/pg.js';
import { insertSql, oauthRows, type Row, toClient, toCode, toGrant, toOAuthRefresh } from '../store/rows.js';
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

/** Space-separated, duplicates and empties dropped, first appearance first (as in SQLite). */
function normalizeScope(scope: string): string {
  return [...new Set(scope.split(' ').filter(Boolean))].join(' ');
}

/**
 * The same merge in SQL, so widening a live grant is part of the upsert statement itself:
 * old scopes first, then new ones, each once.
 */
const MERGE_SCOPE_SQL = `(SELECT coalesce(string_agg(s, ' ' ORDER BY first), '')
   FROM (SELECT s, min(ord) AS first
         FROM unnest(string_to_array(g.scope || ' ' || excluded.scope, ' ')) WITH ORDINALITY AS t(s, ord)
         WHERE s <> '' GROUP BY s) AS merged)`;

/** Lists and booleans go to TEXT[] and BOOLEAN columns as they are. */
const PG = { list: (v: readonly string[]) => v, flag: (v: boolean) => v };

const param = (i: number) => `$${i + 1}`;

const INSERT_CLIENT = `${insertSql('oauth_clients', oauthRows.clients.columns, param)}
  ON CONFLICT (id) DO NOTHING RETURNING id`;

const UPSERT_GRANT = `${insertSql('oauth_grants AS g', oauthRows.grants.columns, param)}
  ON CONFLICT (subject, client_id) WHERE revoked_at IS NULL
  DO UPDATE SET scope = ${MERGE_SCOPE_SQL}, updated_at = excluded.updated_at
  RETURNING *`;

const INSERT_CODE = insertSql('oauth_codes', oauthRows.codes.columns, param);

const INSERT_REFRESH = insertSql('oauth_refresh_tokens', oauthRows.refreshTokens.columns, param);

/**
 * The OAuth tables in PostgreSQL, in the account schema and its migration list (store/postgres.ts),
 * shared by every instance of a cluster: clients, grants, codes, refresh tokens and the DPoP replay
 * cache. Each atomic step is one statement or one transaction whose write is a compare-and-set
 * under row locks; nothing reads and then writes unguarded.
 */
export class PostgresOAuthStore implements OAuthStore {
  constructor(private readonly db: PgDatabase) {}

  // clients

  async createClient(c: ClientRecord): Promise<boolean> {
    const rows = await this.db.q(INSERT_CLIENT, oauthRows.clients.values(c, PG));
    return rows.length === 1;
  }

  async getClient(id: string): Promise<ClientRecord | null> {
    const [r] = await this.db.q('SELECT * FROM oauth_clients WHERE id = $1', [id]);
    return r ? toClient(r) : null;
  }

  async listClients(): Promise<ClientRecord[]> {
    return (await this.db.q('SELECT * FROM oauth_clients ORDER BY created_at, id')).map(toClient);
  }

  async deleteClient(id: string): Promise<boolean> {
    return (await this.db.count('DELETE FROM oauth_clients WHERE id = $1', [id])) === 1;
  }

  // grants

  async getLiveGrant(userId: string, clientId: string): Promise<GrantRecord | null> {
    const [r] = await this.db.q(
      'SELECT * FROM oauth_grants WHERE subject = $1 AND client_id = $2 AND revoked_at IS NULL',
      [userId, clientId],
    );
    return r ? toGrant(r) : null;
  }

  async getGrant(id: string): Promise<GrantRecord | null> {
    const [r] = await this.db.q('SELECT * FROM oauth_grants WHERE id = $1', [id]);
    return r ? toGrant(r) : null;
  }

  /**
   * One statement: the partial unique index on live grants is the arbiter, so concurrent
   * consents (on any instance) either insert the one live grant or widen it in place.
   */
  async upsertGrant(input: UpsertGrantInput): Promise<GrantRecord> {
    const [r] = await this.db.q(
      UPSERT_GRANT,
      oauthRows.grants.values(newGrant(input, normalizeScope(input.scope))),
    );
    return toGrant(r!);
  }

  async listGrants(userId: string): Promise<GrantRecord[]> {
    const rows = await this.db.q(
      'SELECT * FROM oauth_grants WHERE subject = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id',
      [userId],
    );
    return rows.map(toGrant);
  }

  async listClientGrants(clientId: string): Promise<GrantRecord[]> {
    const rows = await this.db.q(
      'SELECT * FROM oauth_grants WHERE client_id = $1 AND revoked_at IS NULL ORDER BY created_at, id',
      [clientId],
    );
    return rows.map(toGrant);
  }

  /**
   * The grant row is locked first (the UPDATE waits for any rotation holding it), then its tokens
   * are spent by a second statement, whose fresh snapshot includes a successor that rotation
   * just committed: nothing issued under the grant survives its revocation.
   */
  revokeGrant(id: string, now: number, reason: string): Promise<boolean> {
    return this.db.tx(async (c) => {
      const revoked = await c.query(
        'UPDATE oauth_grants SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL',
        [now, reason, id],
      );
      await c.query(
        `UPDATE oauth_refresh_tokens SET used_at = coalesce(used_at, $1), expires_at = LEAST(expires_at, $1),
           family_expires_at = LEAST(family_expires_at, $1) WHERE grant_id = $2`,
        [now, id],
      );
      return revoked.rowCount === 1;
    });
  }

  // authorization codes

  async insertCode(c: AuthorizationCodeRecord): Promise<void> {
    await this.db.q(INSERT_CODE, oauthRows.codes.values(c, PG));
  }

  async getCode(codeHash: string): Promise<AuthorizationCodeRecord | null> {
    const [r] = await this.db.q('SELECT * FROM oauth_codes WHERE code_hash = $1', [codeHash]);
    return r ? toCode(r) : null;
  }

  /** Compare-and-set in one statement: a racing second UPDATE waits for the row, re-checks and finds it consumed. */
  async consumeCode(codeHash: string, now: number): Promise<boolean> {
    const n = await this.db.count(
      'UPDATE oauth_codes SET consumed_at = $1 WHERE code_hash = $2 AND consumed_at IS NULL',
      [now, codeHash],
    );
    return n === 1;
  }

  // refresh tokens

  async insertRefreshToken(t: OAuthRefreshTokenRecord): Promise<void> {
    await this.db.q(INSERT_REFRESH, oauthRows.refreshTokens.values(t));
  }

  async getRefreshToken(id: string): Promise<OAuthRefreshTokenRecord | null> {
    const [r] = await this.db.q('SELECT * FROM oauth_refresh_tokens WHERE id = $1', [id]);
    return r ? toOAuthRefresh(r) : null;
  }

  /**
   * One transaction, locks taken in the same order as revokeGrant (grant, then token) so the two
   * never deadlock: the grant is share-locked and checked live, then the token is spent by a
   * compare-and-set. Of concurrent rotations exactly one UPDATE matches; the others wait on the
   * row, re-check, match nothing, and then read it used: reuse.
   */
  rotateRefreshToken(
    id: string,
    now: number,
    successor: OAuthRefreshTokenRecord,
    graceMs = 0,
  ): Promise<OAuthRotateOutcome> {
    return this.db.tx(async (c) => {
      // grant_id never changes, so reading it unlocked is safe.
      const found = await c.query('SELECT grant_id FROM oauth_refresh_tokens WHERE id = $1', [id]);
      const grantId = (found.rows[0] as Row | undefined)?.grant_id as string | undefined;
      if (grantId === undefined) return { outcome: 'invalid' };
      const grant = await c.query('SELECT revoked_at FROM oauth_grants WHERE id = $1 FOR SHARE', [grantId]);
      const g = grant.rows[0] as Row | undefined;
      if (!g || g.revoked_at !== null) return { outcome: 'invalid' };
      const won = await c.query(
        'UPDATE oauth_refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1',
        [now, id],
      );
      if (won.rowCount === 1) {
        await c.query(INSERT_REFRESH, oauthRows.refreshTokens.values(successor));
        return { outcome: 'rotated' };
      }
      const after = await c.query('SELECT used_at FROM oauth_refresh_tokens WHERE id = $1', [id]);
      const usedAt = (after.rows[0] as Row | undefined)?.used_at;
      if (typeof usedAt !== 'number') return { outcome: 'invalid' };
      if (graceMs > 0 && now - usedAt <= graceMs) {
        // A retry of a lost answer gets the same successor; one whose successor is spent too is reuse.
        const next = await c.query('SELECT used_at FROM oauth_refresh_tokens WHERE id = $1', [successor.id]);
        if ((next.rows[0] as Row | undefined)?.used_at == null) return { outcome: 'grace' };
      }
      return { outcome: 'reused', grantId };
    });
  }

  // DPoP replay cache

  /** One statement: a new key inserts, an expired one is taken over, a live one matches nothing. */
  async rememberJti(key: string, expiresAt: number, now: number): Promise<boolean> {
    const rows = await this.db.q(
      `INSERT INTO oauth_jti AS j (key, expires_at) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE j.expires_at <= $3
       RETURNING key`,
      [key, expiresAt, now],
    );
    return rows.length === 1;
  }

  async prune(now: number): Promise<void> {
    await this.db.tx(async (c) => {
      await c.query('DELETE FROM oauth_codes WHERE expires_at <= $1', [now - 3_600_000]);
      // A spent token stays while its chain may live: its replay is reuse (OAuthStore.prune).
      await c.query(
        `DELETE FROM oauth_refresh_tokens WHERE family_expires_at <= $1 OR (used_at IS NULL AND expires_at <= $1)
           OR (family_expires_at IS NULL AND created_at <= $2)`,
        [now - 86_400_000, now - LEGACY_CHAIN_KEPT_MS],
      );
      await c.query('DELETE FROM oauth_jti WHERE expires_at <= $1', [now]);
    });
  }
}
