// The OAuthStore contract, for every backend that holds the OAuth provider's state. Grants belong
// to users of the same backend, so the suite makes its users through the UserStore beside it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type ClientRecord, clientSubject, type OAuthStore } from '../../src/oauth/types.js';
import { closeStores } from '../../src/store/open.js';
import type { Stores } from '../../src/store/ports.js';
import { randomId } from '../../src/util/crypto.js';
import type { Open } from './fixtures.js';
import { oauthCode as code, oauthRefresh as refresh, T0, user } from './records.js';

function client(over: Partial<ClientRecord> = {}): ClientRecord {
  return {
    id: randomId(),
    name: 'App',
    type: 'confidential',
    secretHash: 'hash',
    authMethod: 'client_secret_basic',
    redirectUris: ['https://app.example/cb'],
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'api'],
    requireDpop: false,
    resources: [],
    createdAt: T0,
    ...over,
  };
}

/** `open` gives fresh stores for each test (an OAuth store with its users). */
export function oauthStoreContract(
  name: string,
  open: Open<'oauth' | 'users'>,
  options: { skip?: string } = {},
): void {
  describe(`OAuthStore contract: ${name}`, { skip: options.skip }, () => {
    const opened: Pick<Stores, 'backends'>[] = [];
    /** The OAuth store, and `ids` users made in its backend. */
    const fresh = async (n = 0): Promise<OAuthStore & { users: string[] }> => {
      const stores = await open();
      opened.push(stores);
      const users: string[] = [];
      for (let i = 0; i < n; i++) users.push((await stores.users.createUser(user()))!.id);
      return Object.assign(stores.oauth, { users });
    };
    after(async () => {
      for (const s of opened) await closeStores(s);
    });
    /** A grant of scope `api` to client `c`, for the store's first user. */
    const apiGrant = (s: OAuthStore & { users: string[] }) =>
      s.upsertGrant({ id: randomId(), userId: s.users[0]!, clientId: 'c', scope: 'api', now: T0 });

    it('clients: create once, read back, list, delete', async () => {
      const s = await fresh();
      const c = client({
        redirectUris: ['https://a.example/cb', 'com.example.app:/cb'],
        requireDpop: true,
        resources: ['https://api.example', 'urn:example:reports'],
      });
      assert.equal(await s.createClient(c), true);
      assert.equal(await s.createClient({ ...c, name: 'Other' }), false);
      assert.deepEqual(await s.getClient(c.id), c);
      assert.equal(await s.getClient('nope'), null);
      assert.ok((await s.listClients()).some((x) => x.id === c.id));
      assert.equal(await s.deleteClient(c.id), true);
      assert.equal(await s.deleteClient(c.id), false);
      assert.equal(await s.getClient(c.id), null);
    });

    it('grants: one live grant per user and client, widened by later consent', async () => {
      const s = await fresh(1);
      const u1 = s.users[0]!;
      const g1 = await s.upsertGrant({ id: randomId(), userId: u1, clientId: 'c1', scope: 'api', now: T0 });
      const g2 = await s.upsertGrant({
        id: randomId(),
        userId: u1,
        clientId: 'c1',
        scope: 'openid api',
        now: T0 + 1,
      });
      assert.equal(g2.id, g1.id);
      assert.deepEqual(g2.scope.split(' ').sort(), ['api', 'openid']);
      assert.equal((await s.getLiveGrant(u1, 'c1'))?.id, g1.id);
      assert.equal(await s.getLiveGrant(u1, 'c2'), null);
      await s.upsertGrant({ id: randomId(), userId: u1, clientId: 'c2', scope: 'api', now: T0 + 2 });
      assert.equal((await s.listGrants(u1)).length, 2);
      assert.equal((await s.listClientGrants('c1')).length, 1);
      assert.equal(await s.revokeGrant(g1.id, T0 + 3, 'test'), true);
      assert.equal(await s.revokeGrant(g1.id, T0 + 4, 'test'), false);
      assert.equal((await s.getGrant(g1.id))?.revokedAt, T0 + 3);
      assert.equal(await s.getLiveGrant(u1, 'c1'), null);
      const g3 = await s.upsertGrant({
        id: randomId(),
        userId: u1,
        clientId: 'c1',
        scope: 'api',
        now: T0 + 5,
      });
      assert.notEqual(g3.id, g1.id, 'a new consent after revocation is a new grant (new sid)');
    });

    it('concurrent consents leave one live grant', async () => {
      const s = await fresh(1);
      const all = await Promise.all(
        Array.from({ length: 10 }, () =>
          s.upsertGrant({ id: randomId(), userId: s.users[0]!, clientId: 'c', scope: 'api', now: T0 }),
        ),
      );
      assert.equal(new Set(all.map((g) => g.id)).size, 1);
    });

    it("grants belong to users of the same backend; a client's own grant to no user", async () => {
      const s = await fresh();
      await assert.rejects(
        s.upsertGrant({ id: randomId(), userId: 'no-such-user-000', clientId: 'c', scope: 'api', now: T0 }),
      );
      const machine = clientSubject('batch');
      const g = await s.upsertGrant({
        id: randomId(),
        userId: machine,
        clientId: 'batch',
        scope: 'api',
        now: T0,
      });
      assert.equal(g.userId, machine);
      assert.equal((await s.getLiveGrant(machine, 'batch'))?.id, g.id);
      assert.deepEqual(
        (await s.listGrants(machine)).map((x) => x.id),
        [g.id],
      );
      const again = await s.upsertGrant({
        id: randomId(),
        userId: machine,
        clientId: 'batch',
        scope: 'reports',
        now: T0 + 1,
      });
      assert.equal(again.id, g.id, 'one live grant per client, too');
    });

    it('codes: consumed exactly once, even by concurrent callers', async () => {
      const s = await fresh();
      const c = code('g');
      await s.insertCode(c);
      assert.deepEqual(await s.getCode(c.codeHash), c);
      const wins = await Promise.all(Array.from({ length: 10 }, () => s.consumeCode(c.codeHash, T0 + 1)));
      assert.equal(wins.filter(Boolean).length, 1);
      assert.equal((await s.getCode(c.codeHash))?.consumedAt, T0 + 1);
      assert.equal(await s.consumeCode('unknown', T0), false);
    });

    it('refresh tokens: rotate once, then reuse is reported; revoked grant and expiry answer invalid', async () => {
      const s = await fresh(1);
      const g = await apiGrant(s);
      const t1 = refresh(g.id);
      await s.insertRefreshToken(t1);
      assert.deepEqual(await s.getRefreshToken(t1.id), t1);
      const t2 = refresh(g.id, { parentId: t1.id });
      assert.deepEqual(await s.rotateRefreshToken(t1.id, T0 + 1, t2), { outcome: 'rotated' });
      assert.equal((await s.getRefreshToken(t1.id))?.usedAt, T0 + 1);
      assert.deepEqual(await s.getRefreshToken(t2.id), t2);
      assert.deepEqual(await s.rotateRefreshToken(t1.id, T0 + 2, refresh(g.id), 1), { outcome: 'grace' });
      assert.deepEqual(await s.rotateRefreshToken(t1.id, T0 + 2, refresh(g.id)), {
        outcome: 'reused',
        grantId: g.id,
      });
      assert.deepEqual(await s.rotateRefreshToken('unknown', T0, refresh(g.id)), { outcome: 'invalid' });
      const old = refresh(g.id, { expiresAt: T0 });
      await s.insertRefreshToken(old);
      assert.deepEqual(await s.rotateRefreshToken(old.id, T0 + 1, refresh(g.id)), { outcome: 'invalid' });
      await s.revokeGrant(g.id, T0 + 3, 'test');
      assert.deepEqual(await s.rotateRefreshToken(t2.id, T0 + 4, refresh(g.id)), { outcome: 'invalid' });
      assert.notEqual((await s.getRefreshToken(t2.id))?.usedAt, null, 'revoking a grant spends its tokens');
    });

    it('refresh tokens: a repeat within the grace window is reuse once the successor is spent too', async () => {
      const s = await fresh(1);
      const g = await apiGrant(s);
      const t1 = refresh(g.id);
      await s.insertRefreshToken(t1);
      const t2 = refresh(g.id, { parentId: t1.id });
      assert.deepEqual(await s.rotateRefreshToken(t1.id, T0 + 1, t2, 1000), { outcome: 'rotated' });
      assert.deepEqual(await s.rotateRefreshToken(t1.id, T0 + 2, t2, 1000), { outcome: 'grace' }, 'a retry');
      const t3 = refresh(g.id, { parentId: t2.id });
      assert.deepEqual(await s.rotateRefreshToken(t2.id, T0 + 3, t3, 1000), { outcome: 'rotated' });
      assert.deepEqual(await s.rotateRefreshToken(t1.id, T0 + 4, t2, 1000), {
        outcome: 'reused',
        grantId: g.id,
      });
    });

    it('concurrent rotations of one token: exactly one wins, the rest see reuse', async () => {
      const s = await fresh(1);
      const g = await apiGrant(s);
      const t = refresh(g.id);
      await s.insertRefreshToken(t);
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () =>
          s.rotateRefreshToken(t.id, T0 + 1, refresh(g.id, { parentId: t.id })),
        ),
      );
      assert.equal(outcomes.filter((o) => o.outcome === 'rotated').length, 1);
      assert.equal(outcomes.filter((o) => o.outcome === 'reused').length, 9);
    });

    it('prune keeps a spent refresh token while its chain may live, so a late replay is still reuse', async () => {
      const s = await fresh(1);
      const g = await apiGrant(s);
      const DAY = 86_400_000;
      const family = { familyExpiresAt: T0 + 30 * DAY };
      const t1 = refresh(g.id, { ...family, expiresAt: T0 + 7 * DAY });
      await s.insertRefreshToken(t1);
      const t2 = refresh(g.id, { ...family, parentId: t1.id, createdAt: T0 + DAY, expiresAt: T0 + 8 * DAY });
      assert.equal((await s.rotateRefreshToken(t1.id, T0 + DAY, t2)).outcome, 'rotated');
      const idle = refresh(g.id, { ...family, expiresAt: T0 + 2 * DAY }); // never used
      await s.insertRefreshToken(idle);
      const late = T0 + 20 * DAY; // t1 expired 13 days ago
      await s.prune(late);
      assert.equal(await s.getRefreshToken(idle.id), null, 'an unused token goes a day after it expired');
      assert.deepEqual(await s.rotateRefreshToken(t1.id, late, refresh(g.id, family)), {
        outcome: 'reused',
        grantId: g.id,
      });
      await s.prune(T0 + 31 * DAY);
      assert.equal(await s.getRefreshToken(t1.id), null, 'the chain is over: its tokens go');
      assert.equal(await s.getRefreshToken(t2.id), null);

      // A spent token from before chains had an end stays for the longest absolute lifetime.
      const legacy = refresh(g.id, { familyExpiresAt: null, expiresAt: T0 + 7 * DAY, usedAt: T0 + DAY });
      await s.insertRefreshToken(legacy);
      await s.prune(T0 + 300 * DAY);
      assert.deepEqual(await s.getRefreshToken(legacy.id), legacy);
      await s.prune(T0 + 367 * DAY);
      assert.equal(await s.getRefreshToken(legacy.id), null);
    });

    it('DPoP jti: remembered until it expires', async () => {
      const s = await fresh();
      assert.equal(await s.rememberJti('k:1', T0 + 1000, T0), true);
      assert.equal(await s.rememberJti('k:1', T0 + 1000, T0 + 10), false);
      assert.equal(await s.rememberJti('k:2', T0 + 1000, T0 + 10), true);
      assert.equal(await s.rememberJti('k:1', T0 + 3000, T0 + 2000), true, 'an expired entry may be reused');
      await s.prune(T0 + 10_000);
    });
  });
}
