// The UserStore contract, for every backend that holds accounts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EmailTokenRecord } from '../../src/store/types.js';
import { randomId } from '../../src/util/crypto.js';
import { type Open, opened } from './fixtures.js';
import { T0, user } from './records.js';

function emailToken(userId: string, overrides: Partial<EmailTokenRecord> = {}): EmailTokenRecord {
  return {
    hash: `hash-${randomId()}`,
    purpose: 'verify',
    userId,
    email: `${randomId().toLowerCase()}@example.test`,
    createdAt: T0,
    expiresAt: T0 + 600_000,
    usedAt: null,
    ...overrides,
  };
}

export function userStoreContract(name: string, open: Open<'users'>, options: { skip?: string } = {}): void {
  describe(`UserStore contract: ${name}`, { skip: options.skip }, () => {
    const s = opened(open);

    it('creates users, refuses a taken username and finds them by id and name', async () => {
      const { users } = s.stores;
      const u = user();
      assert.deepEqual(await users.createUser(u), u);
      assert.equal(await users.createUser({ ...user(), username: u.username }), null);
      assert.deepEqual(await users.getUserById(u.id), u);
      assert.deepEqual(await users.getUserByUsername(u.username), u);
      assert.equal(await users.getUserById('missing-user-id-000'), null);
      assert.equal(await users.getUserByUsername('no-such-name'), null);
    });

    it('lists users in pages, oldest first', async () => {
      const { users } = s.stores;
      const a = user({ createdAt: T0 - 2 });
      const b = user({ createdAt: T0 - 1 });
      await users.createUser(b);
      await users.createUser(a);
      const all = await users.listUsers(1000, 0);
      const ids = all.map((x) => x.id);
      assert.ok(ids.indexOf(a.id) >= 0 && ids.indexOf(a.id) < ids.indexOf(b.id));
      assert.equal((await users.listUsers(1, 0)).length, 1);
      assert.deepEqual(await users.listUsers(1, ids.indexOf(b.id)), [b]);
    });

    it('changes a password hash and the disabled flag', async () => {
      const { users } = s.stores;
      const u = user();
      await users.createUser(u);
      assert.equal(await users.setPasswordHash(u.id, '$argon2id$new', T0 + 5), true);
      assert.equal(await users.setUserDisabled(u.id, true), true);
      const got = await users.getUserById(u.id);
      assert.equal(got?.passwordHash, '$argon2id$new');
      assert.equal(got?.passwordChangedAt, T0 + 5);
      assert.equal(got?.disabled, true);
      assert.equal(await users.setUserDisabled(u.id, false), true);
      assert.equal((await users.getUserById(u.id))?.disabled, false);
      assert.equal(await users.setUserDisabled('missing-user-id-000', true), false);
    });

    it('sets a password hash over an expected one only while it is still stored', async () => {
      const { users } = s.stores;
      const u = user();
      await users.createUser(u);
      assert.equal(await users.setPasswordHash(u.id, '$argon2id$changed', T0 + 5), true);
      assert.equal(
        await users.setPasswordHash(u.id, '$argon2id$rehash-of-old', T0, u.passwordHash!),
        false,
        'a rehash of the old password does not undo a change',
      );
      const got = await users.getUserById(u.id);
      assert.equal(got?.passwordHash, '$argon2id$changed');
      assert.equal(got?.passwordChangedAt, T0 + 5);
      assert.equal(await users.setPasswordHash(u.id, '$argon2id$rehash', T0 + 5, '$argon2id$changed'), true);
      assert.equal((await users.getUserById(u.id))?.passwordHash, '$argon2id$rehash');
    });

    it('keeps an address per account, found by email only once verified, verified by one account only', async () => {
      const { users } = s.stores;
      const email = `${randomId().toLowerCase()}@example.test`;
      const a = user({ email });
      const b = user({ email });
      assert.deepEqual(await users.createUser(a), a, 'unverified claims may share an address');
      assert.deepEqual(await users.createUser(b), b);
      assert.equal(await users.getUserByEmail(email), null, 'an unverified address signs no one in');
      assert.equal(await users.setEmail(a.id, email, true), true);
      assert.deepEqual(await users.getUserByEmail(email), { ...a, emailVerified: true });
      assert.equal(await users.setEmail(b.id, email, true), false, 'verified by one account only');
      assert.equal((await users.getUserById(b.id))?.emailVerified, false);
      assert.equal(
        await users.createUser(user({ email, emailVerified: true })),
        null,
        'nor created verified beside it',
      );
      assert.equal(await users.setEmail(a.id, null, true), true, 'an address can be removed');
      assert.deepEqual(await users.getUserById(a.id), { ...a, email: null, emailVerified: false });
      assert.equal(await users.setEmail(b.id, email, true), true, 'and then verified by another');
      assert.equal((await users.getUserByEmail(email))?.id, b.id);
      assert.equal(await users.setEmail('missing-user-id-000', email, false), false);
    });

    it('keeps one-time tokens by hash: bound to a purpose, spent once, dead when expired', async () => {
      const { users } = s.stores;
      const u = user();
      await users.createUser(u);
      const t = emailToken(u.id);
      await users.createEmailToken(t);
      assert.deepEqual(await users.getEmailToken(t.hash, 'verify', T0), t);
      assert.equal(await users.getEmailToken(t.hash, 'reset', T0), null, 'another purpose');
      assert.equal(await users.useEmailToken(t.hash, 'reset', T0), null, 'not spent by another purpose');
      assert.equal(await users.getEmailToken(t.hash, 'verify', t.expiresAt), null, 'expired');
      assert.equal(await users.useEmailToken(t.hash, 'verify', t.expiresAt), null);
      assert.deepEqual(await users.useEmailToken(t.hash, 'verify', T0 + 1), { ...t, usedAt: T0 + 1 });
      assert.equal(await users.useEmailToken(t.hash, 'verify', T0 + 2), null, 'single use');
      assert.equal(await users.getEmailToken(t.hash, 'verify', T0 + 2), null);
      assert.equal(await users.useEmailToken('hash-unknown', 'verify', T0), null);

      const racing = emailToken(u.id, { purpose: 'reset' });
      await users.createEmailToken(racing);
      const results = await Promise.all(
        Array.from({ length: 10 }, () => users.useEmailToken(racing.hash, 'reset', T0)),
      );
      assert.equal(results.filter((r) => r !== null).length, 1, 'one of concurrent uses wins');

      const old = emailToken(u.id, { expiresAt: T0 + 10 });
      await users.createEmailToken(old);
      assert.ok((await users.pruneEmailTokens(T0 + 10)) >= 1);
      assert.equal(await users.getEmailToken(old.hash, 'verify', T0), null, 'pruned');
    });

    it("spends a user's unused tokens of the purposes named, and nobody else's", async () => {
      const { users } = s.stores;
      const [u, other] = [user(), user()];
      await users.createUser(u);
      await users.createUser(other);
      const reset = emailToken(u.id, { purpose: 'reset' });
      const change = emailToken(u.id, { purpose: 'change' });
      const undo = emailToken(u.id, { purpose: 'undo' });
      const theirs = emailToken(other.id, { purpose: 'reset' });
      const usedBefore = emailToken(u.id, { purpose: 'reset' });
      for (const t of [reset, change, undo, theirs, usedBefore]) await users.createEmailToken(t);
      assert.ok(await users.useEmailToken(usedBefore.hash, 'reset', T0 + 1));
      assert.equal(await users.spendEmailTokens(u.id, ['reset', 'change'], T0 + 2), 2);
      assert.equal(await users.useEmailToken(reset.hash, 'reset', T0 + 3), null, 'reset link spent');
      assert.equal(await users.useEmailToken(change.hash, 'change', T0 + 3), null, 'change link spent');
      assert.deepEqual(await users.getEmailToken(undo.hash, 'undo', T0 + 3), undo, 'another purpose stays');
      assert.deepEqual(await users.getEmailToken(theirs.hash, 'reset', T0 + 3), theirs, 'another user');
      assert.equal(await users.spendEmailTokens(u.id, ['reset', 'change'], T0 + 4), 0);

      const older = emailToken(u.id, { purpose: 'undo', createdAt: T0 + 10 });
      const later = emailToken(u.id, { purpose: 'undo', createdAt: T0 + 20 });
      for (const t of [older, later]) await users.createEmailToken(t);
      assert.equal(await users.spendEmailTokens(u.id, ['undo'], T0 + 30, T0 + 20), 1, 'issued from then on');
      assert.equal(await users.useEmailToken(later.hash, 'undo', T0 + 31), null);
      assert.deepEqual(await users.getEmailToken(older.hash, 'undo', T0 + 31), older);
    });

    it('lets one of concurrent registrations of a name win', async () => {
      const { users } = s.stores;
      const name = user().username;
      const results = await Promise.all(
        Array.from({ length: 10 }, () => users.createUser(user({ username: name }))),
      );
      assert.equal(results.filter((r) => r !== null).length, 1);
    });
  });
}
