// The UserStore contract, for every backend that holds accounts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Open, opened } from './fixtures.js';
import { T0, user } from './records.js';

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
      await users.setPasswordHash(u.id, '$argon2id$new', T0 + 5);
      assert.equal(await users.setUserDisabled(u.id, true), true);
      const got = await users.getUserById(u.id);
      assert.equal(got?.passwordHash, '$argon2id$new');
      assert.equal(got?.passwordChangedAt, T0 + 5);
      assert.equal(got?.disabled, true);
      assert.equal(await users.setUserDisabled(u.id, false), true);
      assert.equal((await users.getUserById(u.id))?.disabled, false);
      assert.equal(await users.setUserDisabled('missing-user-id-000', true), false);
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
