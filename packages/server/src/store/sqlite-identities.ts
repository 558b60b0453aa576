import type { CreateWithIdentityResult, IdentityStore, UnlinkResult } from './ports.js';
import { type Row, toIdentity } from './rows.js';
import { insertUser } from './sqlite.js';
import type { SqliteDatabase } from './sqlite-common.js';
import type { IdentityRecord, UserRecord } from './types.js';

const INSERT_IDENTITY = `INSERT INTO identities (id, user_id, issuer, subject, provider_id, email, name, created_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`;

/** Raised inside a transaction to roll it back: the identity was linked already. */
class IdentityTaken extends Error {}

/** Upstream sign-in identities in the embedded database, beside the users they belong to. */
export class SqliteIdentities implements IdentityStore {
  constructor(private readonly sql: SqliteDatabase) {}

  private insert(i: IdentityRecord): boolean {
    return (
      this.sql
        .q(INSERT_IDENTITY)
        .run(i.id, i.userId, i.issuer, i.subject, i.providerId, i.email, i.name, i.createdAt).changes === 1
    );
  }

  getIdentity(issuer: string, subject: string): Promise<IdentityRecord | null> {
    return this.sql.run(() => {
      const r = this.sql
        .q('SELECT * FROM identities WHERE issuer = ? AND subject = ?')
        .get(issuer, subject) as Row | undefined;
      return r ? toIdentity(r) : null;
    });
  }

  listIdentities(userId: string): Promise<IdentityRecord[]> {
    return this.sql.run(() =>
      (
        this.sql.q('SELECT * FROM identities WHERE user_id = ? ORDER BY created_at, id').all(userId) as Row[]
      ).map(toIdentity),
    );
  }

  linkIdentity(identity: IdentityRecord): Promise<IdentityRecord | null> {
    return this.sql.run(() => (this.insert(identity) ? identity : null));
  }

  async createUserWithIdentity(
    user: UserRecord,
    identity: IdentityRecord,
  ): Promise<CreateWithIdentityResult> {
    try {
      return await this.sql.tx(() => {
        if (!insertUser(this.sql, user)) return 'username_taken';
        if (!this.insert(identity)) throw new IdentityTaken();
        return 'created';
      });
    } catch (err) {
      if (err instanceof IdentityTaken) return 'identity_taken';
      throw err;
    }
  }

  unlinkIdentity(userId: string, identityId: string): Promise<UnlinkResult> {
    return this.sql.tx(() => {
      const r = this.sql
        .q(
          `SELECT u.password_hash AS password_hash,
             (SELECT count(*) FROM identities WHERE user_id = u.id) AS n
           FROM identities i JOIN users u ON u.id = i.user_id WHERE i.id = ? AND i.user_id = ?`,
        )
        .get(identityId, userId) as Row | undefined;
      if (!r) return 'not_found';
      if (r.password_hash === '' && (r.n as number) <= 1) return 'last';
      this.sql.q('DELETE FROM identities WHERE id = ?').run(identityId);
      return 'unlinked';
    });
  }
}
