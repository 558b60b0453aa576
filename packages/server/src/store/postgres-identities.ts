import type { PgDatabase } from './pg.js';
import type { CreateWithIdentityResult, IdentityStore, UnlinkResult } from './ports.js';
import { userInsert } from './postgres.js';
import { toIdentity } from './rows.js';
import type { IdentityRecord, UserRecord } from './types.js';

function identityInsert(i: IdentityRecord): [string, unknown[]] {
  return [
    `INSERT INTO identities (id, user_id, issuer, subject, provider_id, email, name, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id`,
    [i.id, i.userId, i.issuer, i.subject, i.providerId, i.email, i.name, i.createdAt],
  ];
}

/**
 * Upstream sign-in identities in PostgreSQL, beside the users. An unlink locks its user's row,
 * so concurrent unlinks on any instance see each other and one of them keeps the last way in.
 */
export class PostgresIdentities implements IdentityStore {
  constructor(private readonly db: PgDatabase) {}

  async getIdentity(issuer: string, subject: string): Promise<IdentityRecord | null> {
    const [r] = await this.db.q('SELECT * FROM identities WHERE issuer = $1 AND subject = $2', [
      issuer,
      subject,
    ]);
    return r ? toIdentity(r) : null;
  }

  async listIdentities(userId: string): Promise<IdentityRecord[]> {
    return (
      await this.db.q('SELECT * FROM identities WHERE user_id = $1 ORDER BY created_at, id', [userId])
    ).map(toIdentity);
  }

  async linkIdentity(identity: IdentityRecord): Promise<IdentityRecord | null> {
    return (await this.db.q(...identityInsert(identity))).length === 1 ? identity : null;
  }

  createUserWithIdentity(user: UserRecord, identity: IdentityRecord): Promise<CreateWithIdentityResult> {
    return this.db.tx(async (c) => {
      if ((await c.query(...userInsert(user))).rows.length !== 1) return 'username_taken';
      if ((await c.query(...identityInsert(identity))).rows.length === 1) return 'created';
      // Linked already: the user row goes again in the same transaction, so nobody ever sees it.
      await c.query('DELETE FROM users WHERE id = $1', [user.id]);
      return 'identity_taken';
    });
  }

  unlinkIdentity(userId: string, identityId: string): Promise<UnlinkResult> {
    return this.db.tx(async (c) => {
      const { rows } = await c.query('SELECT password_hash FROM users WHERE id = $1 FOR UPDATE', [userId]);
      const user = rows[0] as { password_hash: string } | undefined;
      if (!user) return 'not_found';
      const { rows: ids } = await c.query('SELECT id FROM identities WHERE user_id = $1', [userId]);
      if (!ids.some((r: { id: string }) => r.id === identityId)) return 'not_found';
      if (user.password_hash === '' && ids.length <= 1) return 'last';
      await c.query('DELETE FROM identities WHERE id = $1', [identityId]);
      return 'unlinked';
    });
  }
}
