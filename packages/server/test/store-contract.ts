// The one contract suite every Store implementation must pass.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type {
  RefreshTokenRecord,
  SessionRecord,
  SigningKeyRecord,
  Store,
  UserRecord,
} from '../src/store/types.js';
import { randomId } from '../src/util/crypto.js';

const T0 = 1_800_000_000_000;

export function user(overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    id: randomId(),
    username: `user-${randomId().toLowerCase()}`,
    passwordHash: '$argon2id$fake',
    roles: ['user'],
    disabled: false,
    createdAt: T0,
    passwordChangedAt: T0,
    ...overrides,
  };
}

export function session(userId: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: randomId(),
    userId,
    mode: 'token',
    secretHash: null,
    createdAt: T0,
    lastSeenAt: T0,
    expiresAt: T0 + 3_600_000,
    idleExpiresAt: T0 + 600_000,
    userAgent: 'test-agent',
    ip: '127.0.0.1',
    revokedAt: null,
    revokeReason: null,
    ...overrides,
  };
}

function refresh(sessionId: string, overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return {
    id: randomId(),
    sessionId,
    secretHash: `hash-${randomId()}`,
    parentId: null,
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    usedAt: null,
    ...overrides,
  };
}

function key(kid: string, state: SigningKeyRecord['state'], createdAt = T0): SigningKeyRecord {
  return {
    kid,
    alg: 'ES256',
    state,
    publicJwk: { kty: 'EC', kid },
    privateKeyEnc: `enc-${kid}`,
    createdAt,
    retireUntil: null,
  };
}

/**
 * `open` returns a fresh, empty store (or one whose data no test here can collide with).
 * `fresh` says whether key-ring tests can assume an empty ring.
 */
export function runStoreContract(
  name: string,
  open: () => Promise<Store>,
  options: { skip?: string } = {},
): void {
  describe(`store contract: ${name}`, { skip: options.skip }, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
    });

    it('creates users, refuses a taken username and finds them by id and name', async () => {
      const u = user();
      assert.deepEqual(await store.createUser(u), u);
      assert.equal(await store.createUser({ ...user(), username: u.username }), null);
      assert.deepEqual(await store.getUserById(u.id), u);
      assert.deepEqual(await store.getUserByUsername(u.username), u);
      assert.equal(await store.getUserById('missing-user-id-000'), null);
      assert.equal(await store.getUserByUsername('no-such-name'), null);
    });

    it('lists users in pages', async () => {
      const a = user({ createdAt: T0 + 1 });
      const b = user({ createdAt: T0 + 2 });
      await store.createUser(a);
      await store.createUser(b);
      const all = await store.listUsers(1000, 0);
      const ids = all.map((x) => x.id);
      assert.ok(ids.includes(a.id) && ids.includes(b.id));
      assert.equal((await store.listUsers(1, 0)).length, 1);
    });

    it('changes a password hash and the disabled flag', async () => {
      const u = user();
      await store.createUser(u);
      await store.setPasswordHash(u.id, '$argon2id$new', T0 + 5);
      assert.equal(await store.setUserDisabled(u.id, true), true);
      const got = await store.getUserById(u.id);
      assert.equal(got?.passwordHash, '$argon2id$new');
      assert.equal(got?.passwordChangedAt, T0 + 5);
      assert.equal(got?.disabled, true);
      assert.equal(await store.setUserDisabled('missing-user-id-000', true), false);
    });

    it('stores sessions and slides their idle end, never past the absolute end', async () => {
      const u = user();
      await store.createUser(u);
      const s = session(u.id, { mode: 'session', secretHash: 'h' });
      await store.createSession(s);
      assert.deepEqual(await store.getSession(s.id), s);
      await store.touchSession(s.id, T0 + 1000, T0 + 601_000);
      let got = await store.getSession(s.id);
      assert.equal(got?.lastSeenAt, T0 + 1000);
      assert.equal(got?.idleExpiresAt, T0 + 601_000);
      await store.touchSession(s.id, T0 + 2000, T0 + 99_999_999);
      got = await store.getSession(s.id);
      assert.equal(got?.idleExpiresAt, s.expiresAt);
      assert.equal(await store.getSession('missing-session-00'), null);
    });

    it('lists only live sessions, newest first', async () => {
      const u = user();
      await store.createUser(u);
      const older = session(u.id, { createdAt: T0 });
      const newer = session(u.id, { createdAt: T0 + 10 });
      const idleGone = session(u.id, { idleExpiresAt: T0 + 5 });
      const revoked = session(u.id, { revokedAt: T0, revokeReason: 'x' });
      for (const s of [older, newer, idleGone, revoked]) await store.createSession(s);
      const live = await store.listSessions(u.id, T0 + 100);
      assert.deepEqual(
        live.map((s) => s.id),
        [newer.id, older.id],
      );
    });

    it('revokes one session once, and all of a user but one', async () => {
      const u = user();
      await store.createUser(u);
      const [a, b, c] = [session(u.id), session(u.id), session(u.id)];
      for (const s of [a!, b!, c!]) await store.createSession(s);
      assert.equal(await store.revokeSession(a!.id, T0 + 1, 'logout'), true);
      assert.equal(await store.revokeSession(a!.id, T0 + 2, 'logout'), false);
      const got = await store.getSession(a!.id);
      assert.equal(got?.revokedAt, T0 + 1);
      assert.equal(got?.revokeReason, 'logout');
      const revoked = await store.revokeUserSessions(u.id, T0 + 3, 'password_change', c!.id);
      assert.deepEqual(revoked, [b!.id]);
      assert.deepEqual(
        (await store.listSessions(u.id, T0 + 4)).map((s) => s.id),
        [c!.id],
      );
      // touching a revoked session does not bring it back
      await store.touchSession(b!.id, T0 + 5, T0 + 700_000);
      assert.notEqual((await store.getSession(b!.id))?.revokedAt, null);
    });

    describe('refresh rotation', () => {
      async function family(): Promise<{ s: SessionRecord; t: RefreshTokenRecord }> {
        const u = user();
        await store.createUser(u);
        const s = session(u.id);
        await store.createSession(s);
        const t = refresh(s.id);
        await store.insertRefreshToken(t);
        return { s, t };
      }

      it('rotates once, repeats within the grace window, and revokes the family on late reuse', async () => {
        const { s, t } = await family();
        assert.deepEqual(await store.getRefreshToken(t.id), t);
        const successor = refresh(s.id, { parentId: t.id, createdAt: T0 + 10 });
        const req = {
          id: t.id,
          successor,
          now: T0 + 10,
          graceMs: 10_000,
          sessionIdleExpiresAt: T0 + 700_000,
        };
        assert.deepEqual(await store.rotateRefreshToken(req), { outcome: 'rotated' });
        assert.equal((await store.getRefreshToken(t.id))?.usedAt, T0 + 10);
        assert.deepEqual(await store.getRefreshToken(successor.id), successor);
        assert.equal((await store.getSession(s.id))?.idleExpiresAt, T0 + 700_000);
        assert.deepEqual(await store.rotateRefreshToken({ ...req, now: T0 + 5000 }), { outcome: 'grace' });
        assert.deepEqual(await store.rotateRefreshToken({ ...req, now: T0 + 10_011 }), {
          outcome: 'reused',
          sessionId: s.id,
        });
        const revoked = await store.getSession(s.id);
        assert.notEqual(revoked?.revokedAt, null);
        assert.equal(revoked?.revokeReason, 'refresh_reuse');
        // the family is dead: the successor no longer rotates
        const next = refresh(s.id, { parentId: successor.id });
        assert.deepEqual(
          await store.rotateRefreshToken({ ...req, id: successor.id, successor: next, now: T0 + 10_012 }),
          { outcome: 'invalid' },
        );
      });

      it('refuses unknown and expired tokens and tokens of a revoked session', async () => {
        const { s, t } = await family();
        const successor = refresh(s.id, { parentId: t.id });
        const base = { successor, graceMs: 10_000, sessionIdleExpiresAt: T0 + 700_000 };
        assert.deepEqual(await store.rotateRefreshToken({ ...base, id: 'no-such-token-000', now: T0 }), {
          outcome: 'invalid',
        });
        assert.deepEqual(await store.rotateRefreshToken({ ...base, id: t.id, now: t.expiresAt }), {
          outcome: 'invalid',
        });
        assert.equal(await store.getRefreshToken(successor.id), null);
        const other = await family();
        await store.revokeSession(other.s.id, T0 + 1, 'logout');
        assert.deepEqual(
          await store.rotateRefreshToken({
            ...base,
            successor: refresh(other.s.id),
            id: other.t.id,
            now: T0 + 2,
          }),
          { outcome: 'invalid' },
        );
      });

      it('lets exactly one of 50 concurrent rotations win', async () => {
        const { s, t } = await family();
        const successor = refresh(s.id, { parentId: t.id });
        const outcomes = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.rotateRefreshToken({
              id: t.id,
              successor,
              now: T0 + 100 + i,
              graceMs: 10_000,
              sessionIdleExpiresAt: T0 + 700_000,
            }),
          ),
        );
        assert.equal(outcomes.filter((o) => o.outcome === 'rotated').length, 1);
        assert.equal(outcomes.filter((o) => o.outcome === 'grace').length, 49);
        assert.equal((await store.getSession(s.id))?.revokedAt, null);
      });
    });

    it('keeps a signing key ring and rotates it with a compare-and-set', async () => {
      const before = await store.listSigningKeys();
      if (before.length === 0) {
        assert.equal(await store.initSigningKeys([key('k1', 'current'), key('k2', 'next', T0 + 1)]), true);
        assert.equal(await store.initSigningKeys([key('kx', 'current')]), false);
      }
      const ring = await store.listSigningKeys();
      const current = ring.find((k) => k.state === 'current')!.kid;
      const next = ring.find((k) => k.state === 'next')!.kid;
      const fresh = `k-${randomId()}`;
      assert.equal(
        await store.rotateSigningKeys(key(fresh, 'next', T0 + 2), 'not-current', T0 + 2, T0 + 1000),
        false,
      );
      assert.equal(
        await store.rotateSigningKeys(key(fresh, 'next', T0 + 2), current, T0 + 2, T0 + 1000),
        true,
      );
      const after = await store.listSigningKeys();
      const state = (kid: string) => after.find((k) => k.kid === kid);
      assert.equal(state(current)?.state, 'retired');
      assert.equal(state(current)?.retireUntil, T0 + 1000);
      assert.equal(state(current)?.privateKeyEnc, '', 'a retired key keeps no private key');
      assert.deepEqual(state(current)?.publicJwk, { kty: 'EC', kid: current }, 'it still verifies');
      assert.equal(state(next)?.state, 'current');
      assert.equal(state(next)?.privateKeyEnc, `enc-${next}`);
      assert.equal(state(fresh)?.state, 'next');
      assert.equal(state(fresh)?.privateKeyEnc, `enc-${fresh}`);
      assert.deepEqual(state(fresh)?.publicJwk, { kty: 'EC', kid: fresh });
      assert.ok((await store.deleteRetiredKeys(T0 + 1000)) >= 1);
      assert.equal(
        (await store.listSigningKeys()).find((k) => k.kid === current),
        undefined,
      );
    });

    it('appends revocations with increasing cursors, lists after a cursor and prunes expired ones', async () => {
      const now = 1_900_000_000;
      const [a, b] = await store.appendRevocations([
        { sid: 'sid-a', sub: null, notBefore: null, expiresAt: now + 10, reason: 'logout' },
        { sid: null, sub: 'user-b', notBefore: now - 1, expiresAt: now + 1000, reason: 'logout_all' },
      ]);
      assert.ok(a && b && b.seq > a.seq);
      assert.equal(a.sid, 'sid-a');
      assert.equal(b.sub, 'user-b');
      assert.equal(b.notBefore, now - 1);
      const afterA = await store.listRevocations(a.seq, now, 100);
      assert.deepEqual(afterA[0], b);
      const fromStart = await store.listRevocations(a.seq - 1, now, 100);
      assert.deepEqual(fromStart.slice(0, 2), [a, b]);
      assert.deepEqual(await store.listRevocations(a.seq - 1, now + 10, 100).then((l) => l[0]), b);
      assert.ok((await store.pruneRevocations(now + 10)) >= 1);
      assert.equal(
        (await store.listRevocations(a.seq - 1, now, 100)).find((e) => e.seq === a.seq),
        undefined,
      );
    });

    it('gives a reservation back with -1, never below 0, atomically under concurrency', async () => {
      const k = `res-${randomId()}`;
      assert.equal(await store.hitCounter(k, 60_000, T0), 1);
      assert.equal(await store.hitCounter(k, 60_000, T0, -1), 0);
      assert.equal(await store.hitCounter(k, 60_000, T0, -1), 0, 'never below 0');
      assert.equal(await store.hitCounter(`${k}-new`, 60_000, T0, -1), 0, 'a release on no counter');
      const ops = Array.from({ length: 30 }, (_, i) => store.hitCounter(k, 60_000, T0, i % 3 === 0 ? -1 : 1));
      await Promise.all(ops);
      const n = await store.getCounter(k, T0);
      assert.ok(n >= 10 && n <= 20, `30 concurrent steps (+20, -10) ended at ${n}`);
      assert.equal(await store.hitCounter(k, 60_000, T0 + 60_000, -1), 0, 'a release in a new window');
    });

    it('counts hits in a window and keeps locks', async () => {
      const k = `ctr-${randomId()}`;
      assert.equal(await store.hitCounter(k, 1000, T0), 1);
      assert.equal(await store.hitCounter(k, 1000, T0 + 10), 2);
      assert.equal(await store.getCounter(k, T0 + 20), 2);
      assert.equal(await store.hitCounter(k, 1000, T0 + 1000), 1, 'a new window starts over');
      await store.resetCounter(k);
      assert.equal(await store.getCounter(k, T0 + 1001), 0);
      const counts = await Promise.all(
        Array.from({ length: 20 }, () => store.hitCounter(`${k}-c`, 60_000, T0)),
      );
      assert.deepEqual(
        [...counts].sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(await store.getLock(k, T0), 0);
      await store.setLock(k, T0 + 500);
      assert.equal(await store.getLock(k, T0), T0 + 500);
      await store.setLock(k, T0 + 100);
      assert.equal(await store.getLock(k, T0), T0 + 500, 'a lock is never shortened');
      assert.equal(await store.getLock(k, T0 + 500), 0);
    });

    it('keeps an append-only audit trail, newest first, filtered by user and type', async () => {
      const u = `audit-user-${randomId()}`;
      const base = { at: T0, sessionId: 'sid-1', ip: '127.0.0.1', userAgent: 'ua', detail: null };
      await store.appendAuditEvent({ ...base, type: 'login_failed', userId: u, detail: 'wrong password' });
      await store.appendAuditEvent({ ...base, type: 'login_ok', userId: u, at: T0 + 1 });
      await store.appendAuditEvent({ ...base, type: 'login_ok', userId: `other-${u}`, at: T0 + 2 });
      await store.appendAuditEvent({ ...base, type: 'logout', userId: u, at: T0 + 3 });
      const mine = await store.listAuditEvents({ userId: u, limit: 10 });
      assert.deepEqual(
        mine.map((e) => e.type),
        ['logout', 'login_ok', 'login_failed'],
      );
      assert.ok(mine[0]!.seq > mine[1]!.seq && mine[1]!.seq > mine[2]!.seq);
      assert.deepEqual(mine[2], {
        ...base,
        seq: mine[2]!.seq,
        type: 'login_failed',
        userId: u,
        detail: 'wrong password',
      });
      assert.deepEqual(
        (await store.listAuditEvents({ userId: u, type: 'login_ok', limit: 10 })).map((e) => e.at),
        [T0 + 1],
      );
      assert.equal((await store.listAuditEvents({ userId: u, limit: 1 })).length, 1);
      assert.deepEqual(
        (await store.listAuditEvents({ userId: u, beforeSeq: mine[0]!.seq, limit: 10 })).map((e) => e.type),
        ['login_ok', 'login_failed'],
      );
      assert.ok((await store.listAuditEvents({ limit: 100 })).some((e) => e.userId === `other-${u}`));
    });

    it('answers ping', async () => {
      await store.ping();
    });
  });
}
