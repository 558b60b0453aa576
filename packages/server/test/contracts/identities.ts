// The IdentityStore contract, for every backend that holds users.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IdentityRecord } from '../../src/store/types.js';
import { randomId } from '../../src/util/crypto.js';
import { type Open, opened } from './fixtures.js';
import { T0, user } from './records.js';

export function identity(userId: string, overrides: Partial<IdentityRecord> = {}): IdentityRecord {
  return {
    id: randomId(),
    userId,
    issuer: 'https://id.example.test',
    subject: `sub-${randomId()}`,
    providerId: 'corp',
    email: 'someone@example.test',
    name: 'Some One',
    createdAt: T0,
    ...overrides,
  };
}

export function identityStoreContract(
  name: string,
  open: Open<'users' | 'identities'>,
  options: { skip?: string } = {},
): void {
  describe(`IdentityStore contract: ${name}`, { skip: options.skip }, () => {
    const s = opened(open);

    it('links identities by (issuer, subject), refuses a second link of one, and lists them oldest first', async () => {
      const { users, identities } = s.stores;
      const a = user();
      const b = user();
      await users.createUser(a);
      await users.createUser(b);
      const first = identity(a.id, { createdAt: T0 + 1 });
      const second = identity(a.id, { createdAt: T0 + 2, email: null, name: null });
      assert.deepEqual(await identities.linkIdentity(second), second);
      assert.deepEqual(await identities.linkIdentity(first), first);
      assert.deepEqual(await identities.getIdentity(first.issuer, first.subject), first);
      assert.equal(await identities.getIdentity('https://other.example.test', first.subject), null);
      // The same subject at another issuer is another identity.
      const elsewhere = identity(b.id, { subject: first.subject, issuer: 'https://other.example.test' });
      assert.deepEqual(await identities.linkIdentity(elsewhere), elsewhere);
      // The same (issuer, subject) cannot be linked to anyone again.
      assert.equal(await identities.linkIdentity({ ...identity(b.id), subject: first.subject }), null);
      assert.deepEqual(await identities.listIdentities(a.id), [first, second]);
      assert.deepEqual(await identities.listIdentities(b.id), [elsewhere]);
      assert.deepEqual(await identities.listIdentities('missing-user-id-000'), []);
    });

    it('creates a user with a first identity in one step: both, or neither', async () => {
      const { users, identities } = s.stores;
      const u = user({ passwordHash: '' });
      const i = identity(u.id);
      assert.equal(await identities.createUserWithIdentity(u, i), 'created');
      assert.deepEqual(await users.getUserById(u.id), u);
      assert.deepEqual(await identities.getIdentity(i.issuer, i.subject), i);

      const taken = user({ username: u.username, passwordHash: '' });
      assert.equal(await identities.createUserWithIdentity(taken, identity(taken.id)), 'username_taken');
      assert.equal(await users.getUserById(taken.id), null);

      const again = user({ passwordHash: '' });
      const same = identity(again.id, { subject: i.subject });
      assert.equal(await identities.createUserWithIdentity(again, same), 'identity_taken');
      assert.equal(await users.getUserById(again.id), null, 'no user without its identity');
      assert.equal((await identities.getIdentity(i.issuer, i.subject))?.userId, u.id);
    });

    it('unlinks an identity, but never the last way in of a user without a password', async () => {
      const { users, identities } = s.stores;
      const u = user({ passwordHash: '' });
      const one = identity(u.id, { createdAt: T0 + 1 });
      const two = identity(u.id, { createdAt: T0 + 2 });
      await identities.createUserWithIdentity(u, one);
      await identities.linkIdentity(two);
      const other = user();
      await users.createUser(other);
      assert.equal(await identities.unlinkIdentity(other.id, one.id), 'not_found', "another's identity");
      assert.equal(await identities.unlinkIdentity(u.id, 'no-such-identity'), 'not_found');
      assert.equal(await identities.unlinkIdentity(u.id, one.id), 'unlinked');
      assert.equal(await identities.getIdentity(one.issuer, one.subject), null);
      assert.equal(await identities.unlinkIdentity(u.id, two.id), 'last');
      assert.deepEqual(await identities.listIdentities(u.id), [two]);

      const withPassword = user();
      await users.createUser(withPassword);
      const only = identity(withPassword.id);
      await identities.linkIdentity(only);
      assert.equal(await identities.unlinkIdentity(withPassword.id, only.id), 'unlinked');
    });

    it('lets one of concurrent unlinks of the last two identities win', async () => {
      const { identities } = s.stores;
      const u = user({ passwordHash: '' });
      const one = identity(u.id);
      const two = identity(u.id);
      await identities.createUserWithIdentity(u, one);
      await identities.linkIdentity(two);
      const results = await Promise.all([
        identities.unlinkIdentity(u.id, one.id),
        identities.unlinkIdentity(u.id, two.id),
      ]);
      assert.deepEqual([...results].sort(), ['last', 'unlinked']);
      assert.equal((await identities.listIdentities(u.id)).length, 1);
    });

    it('lets one of concurrent first sign-ins with one identity win', async () => {
      const { identities } = s.stores;
      const subject = `sub-${randomId()}`;
      const results = await Promise.all(
        Array.from({ length: 5 }, () => {
          const u = user({ passwordHash: '' });
          return identities.createUserWithIdentity(u, identity(u.id, { subject }));
        }),
      );
      assert.equal(results.filter((r) => r === 'created').length, 1);
      assert.equal(results.filter((r) => r === 'identity_taken').length, 4);
    });
  });
}
