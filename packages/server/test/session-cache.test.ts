import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeStores } from '../src/store/open.js';
import type { LiveSession, SessionStore } from '../src/store/ports.js';
import { SessionCache } from '../src/store/session-cache.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { refresh, session, sessionUser, T0, user } from './contracts/records.js';
import { sessionStoreContract } from './contracts/sessions.js';
import { call, registerAndLogin, startTestServer, type TestServer } from './helpers.js';

// The cache answers every question the store does, the same way.
sessionStoreContract('sqlite behind a session cache', async () => {
  const stores = openSqliteStores(':memory:');
  return {
    sessions: new SessionCache(stores.sessions, 5),
    addUser: async (u) => {
      await stores.users.createUser(u);
    },
    close: async () => {
      await closeStores(stores);
    },
  };
});

/** A store whose live-session reads are counted and can be held back. */
function counted(store: SessionStore): SessionStore & { reads: number; hold?: Promise<void> } {
  const wrapped = Object.create(store) as SessionStore & { reads: number; hold?: Promise<void> };
  wrapped.reads = 0;
  wrapped.getLiveSession = async (id: string, now: number): Promise<LiveSession | null> => {
    wrapped.reads++;
    const live = await store.getLiveSession(id, now);
    if (wrapped.hold) await wrapped.hold;
    return live;
  };
  return wrapped;
}

async function setup(leaseMs: number) {
  const stores = openSqliteStores(':memory:');
  const u = user();
  await stores.users.createUser(u);
  const s = session(u.id);
  const first = refresh(s.id);
  await stores.sessions.createSession(s, sessionUser(u), first);
  const store = counted(stores.sessions);
  // Two instances over one store: `a` ends sessions, `b` has them cached.
  const a = new SessionCache(store, leaseMs);
  const b = new SessionCache(store, leaseMs);
  return { stores, u, s, first, store, a, b, close: () => stores.backends[0]!.close() };
}

describe('session cache: a live session in process, never one that has ended', () => {
  it('answers repeated reads within the lease from its copy, then reads the store again', async () => {
    const { s, store, b, close } = await setup(50);
    try {
      assert.equal((await b.getLiveSession(s.id, T0 + 1))?.session.id, s.id);
      assert.equal((await b.getLiveSession(s.id, T0 + 2))?.session.id, s.id);
      assert.equal(store.reads, 1, 'the second read came from the copy');
      await sleep(60);
      assert.equal((await b.getLiveSession(s.id, T0 + 3))?.session.id, s.id);
      assert.equal(store.reads, 2, 'after the lease the store is read again');
    } finally {
      await close();
    }
  });

  it('checks the idle and absolute ends of a copy at the caller\u2019s time, and reads again past them', async () => {
    const { s, store, b, close } = await setup(60_000);
    try {
      await b.getLiveSession(s.id, T0 + 1);
      assert.equal(await b.getLiveSession(s.id, s.idleExpiresAt), null);
      assert.equal(store.reads, 2, 'a copy past its idle end is not trusted');
      await b.touchSession(s.id, T0 + 10, s.idleExpiresAt + 1000);
      assert.equal(
        (await b.getLiveSession(s.id, s.idleExpiresAt))?.session.idleExpiresAt,
        s.idleExpiresAt + 1000,
      );
      assert.equal((await b.getLiveSession(s.id, s.idleExpiresAt + 1))?.session.lastSeenAt, T0 + 10);
      assert.equal(store.reads, 3, 'a touch through the cache updates its copy');
    } finally {
      await close();
    }
  });

  it('a session ended on one instance is not served by another once the ending has settled', async () => {
    const { stores, u, s, a, b, close } = await setup(300);
    try {
      const other = session(u.id);
      await stores.sessions.createSession(other, sessionUser(u));
      assert.notEqual(await b.getLiveSession(s.id, T0 + 1), null);
      assert.notEqual(await b.getLiveSession(other.id, T0 + 1), null);
      assert.equal(await a.revokeSession(s.id, T0 + 2, 'logout'), true);
      await a.settle();
      assert.equal(await b.getLiveSession(s.id, T0 + 3), null, 'revoked on a, cached on b');
      assert.deepEqual(await a.revokeUserSessions(u.id, T0 + 4, 'logout_all'), [other.id]);
      await a.settle();
      assert.equal(await b.getLiveSession(other.id, T0 + 5), null, 'revoke-all on a, cached on b');
    } finally {
      await close();
    }
  });

  it('an instance that lost the race to end a session still waits for the copies elsewhere', async () => {
    const { stores, u, s, store, a, b, close } = await setup(300);
    const c = new SessionCache(store, 300);
    try {
      const other = session(u.id);
      await stores.sessions.createSession(other, sessionUser(u));
      assert.notEqual(await b.getLiveSession(s.id, T0 + 1), null);
      assert.notEqual(await b.getLiveSession(other.id, T0 + 1), null);
      assert.equal(await c.revokeSession(s.id, T0 + 2, 'logout'), true, 'c ends it first');
      assert.equal(await a.revokeSession(s.id, T0 + 2, 'logout'), false, 'a finds it ended');
      await a.settle();
      assert.equal(await b.getLiveSession(s.id, T0 + 3), null, 'b no longer serves its copy');
      assert.deepEqual(await c.revokeUserSessions(u.id, T0 + 4, 'logout_all'), [other.id]);
      assert.deepEqual(await a.revokeUserSessions(u.id, T0 + 4, 'account_disabled'), []);
      await a.settle();
      assert.equal(await b.getLiveSession(other.id, T0 + 5), null, 'nor after a revoke-all');
    } finally {
      await close();
    }
  });

  it('a refresh-token reuse ends the session everywhere once it has settled', async () => {
    const { s, first, a, b, close } = await setup(300);
    try {
      assert.notEqual(await b.getLiveSession(s.id, T0 + 1), null);
      const rotate = {
        id: first.id,
        secretHash: first.secretHash,
        successorId: `${first.id.slice(0, -1)}Z`,
        successorSecretHash: 'successor',
        graceMs: 10,
        idleTtlMs: 600_000,
      };
      assert.equal((await a.rotateRefreshToken({ ...rotate, now: T0 + 2 })).outcome, 'rotated');
      assert.equal((await b.getLiveSession(s.id, T0 + 3)) !== null, true, 'a rotation ends nothing');
      assert.equal((await a.rotateRefreshToken({ ...rotate, now: T0 + 1000 })).outcome, 'reused');
      await a.settle();
      assert.equal(await b.getLiveSession(s.id, T0 + 1001), null);
    } finally {
      await close();
    }
  });

  it('a read that began before an ending and returned after it is not kept past the ending', async () => {
    const { s, store, a, b, close } = await setup(300);
    try {
      let release = (): void => {};
      store.hold = new Promise<void>((resolve) => {
        release = resolve;
      });
      const stale = b.getLiveSession(s.id, T0 + 1);
      const ending = a.revokeSession(s.id, T0 + 2, 'logout').then(async (ended) => {
        await a.settle();
        return ended;
      });
      await sleep(20);
      release();
      store.hold = undefined;
      assert.notEqual(await stale, null, 'the read saw the session before it ended');
      assert.equal(await ending, true);
      assert.equal(await b.getLiveSession(s.id, T0 + 3), null);
    } finally {
      await close();
    }
  });

  it('holds at most its bound of sessions, dropping the oldest', async () => {
    const stores = openSqliteStores(':memory:');
    try {
      const u = user();
      await stores.users.createUser(u);
      const cache = new SessionCache(stores.sessions, 60_000, 3);
      for (let i = 0; i < 5; i++) {
        const s = session(u.id);
        await stores.sessions.createSession(s, sessionUser(u));
        await cache.getLiveSession(s.id, T0 + 1);
      }
      assert.equal(cache.size, 3);
    } finally {
      await stores.backends[0]!.close();
    }
  });
});

describe('session cache across instances of one deployment', () => {
  it('disabling an account, while another instance signs it out everywhere, waits for every copy', async () => {
    // Three servers over one store, each with its own cache. c holds a copy of the session; a
    // signs the user out everywhere and, while a waits for the copies to run out, b disables the
    // account and finds nothing left to end. b must still wait before it answers.
    const stores = openSqliteStores(':memory:');
    const servers = await Promise.all(
      [0, 1, 2].map(() => startTestServer({ sessionCacheMs: 1000 }, { stores, realClock: true })),
    );
    const [a, b, c] = servers as [TestServer, TestServer, TestServer];
    try {
      const { login } = await registerAndLogin(a.url, { mode: 'session', delivery: 'header' });
      const token = login.body.session_token as string;
      const headers = { authorization: `Bearer ${token}` };
      const me = await call(c.url, 'GET', '/auth/me', { headers });
      assert.equal(me.status, 200, 'c has a copy');
      const signingOut = call(a.url, 'POST', '/auth/logout-all', { headers });
      while ((await stores.sessions.getLiveSession(token.split('.')[0]!, Date.now())) !== null)
        await sleep(5);
      assert.equal(await b.tessera.auth.setDisabled(me.body.user.id as string, true), true);
      assert.equal((await call(c.url, 'GET', '/auth/me', { headers })).status, 401, 'once b has answered');
      assert.equal((await signingOut).status, 204);
    } finally {
      for (const s of servers) await s.close();
    }
  });
});
