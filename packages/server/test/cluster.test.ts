// Two account-server instances on one PostgreSQL schema + Redis prefix, plus an API server that
// verifies tokens locally (packages/verify) and follows instance A's revocation feed.
// Nothing is sticky: each step of a flow may land on either instance.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RevocationFeedClient, RevocationSet } from '@tessera/verify';
import { type ApiServer, startApiServer } from '../../../examples/api/server.js';
import { loadConfig } from '../src/config.js';
import { StoreUnavailableError } from '../src/errors.js';
import { type RunningServer, startServer } from '../src/server.js';
import { call, freePort, PASSWORD, registerAndLogin, SECRET, uniqueName } from './helpers.js';
import {
  databaseUrl,
  deleteRedisKeys,
  dropSchemas,
  redisRefreshTokens,
  redisUrl,
  skipWithoutPgAndRedis,
} from './services.js';

const skip = skipWithoutPgAndRedis;

const run = randomBytes(6).toString('hex');
const schema = `tessera_test_${run}_cl`;
const prefix = `tessera:test:${run}:cl:`;

/** A RevocationSet that tells waiters the moment an entry for their sid is added. */
class ObservedSet extends RevocationSet {
  readonly #waiters = new Map<string, () => void>();
  override add(entry: unknown): boolean {
    const added = super.add(entry);
    const sid = (entry as { sid?: unknown } | null)?.sid;
    if (typeof sid === 'string') this.#waiters.get(sid)?.();
    return added;
  }
  waitFor(sid: string, timeoutMs: number): Promise<void> {
    if (this.isRevoked({ sid })) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(sid);
        reject(new Error(`sid ${sid} not revoked within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(sid, () => {
        clearTimeout(timer);
        this.#waiters.delete(sid);
        resolve();
      });
    });
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function metric(base: string, name: string): Promise<number> {
  const text = (await call(base, 'GET', '/metrics')).body as string;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('cluster: two instances, one store, an API server on the feed', { skip, timeout: 60_000 }, () => {
  let a: RunningServer;
  let b: RunningServer;
  let api: ApiServer;
  let issuer: string;
  const dataDirs: string[] = [];
  let feedSet: ObservedSet;
  let feed: RevocationFeedClient;

  async function instance(port: number): Promise<RunningServer> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-cluster-'));
    dataDirs.push(dataDir);
    const config = loadConfig(
      {},
      {
        port,
        issuer,
        dataDir,
        secret: SECRET,
        databaseUrl,
        redisUrl,
        databaseSchema: schema,
        redisPrefix: prefix,
        registerPerIpPerHour: 100_000,
        // Short enough that the reuse test can step past it, long enough for the 50-refresh storm.
        refreshGraceSeconds: 5,
        logLevel: 'silent',
      },
    );
    // Each instance opens its own stores (own pools and connections), same schema and prefix.
    return startServer({ config, logger: false, heartbeatMs: 200 });
  }

  before(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    // Both instances sign with the same issuer string; the API server reaches it at A.
    issuer = `http://127.0.0.1:${portA}`;
    a = await instance(portA);
    b = await instance(portB);
    const apiPort = await freePort();
    api = await startApiServer({
      issuer,
      port: apiPort,
      publicUrl: `http://127.0.0.1:${apiPort}`,
      revocationFeed: { maxStalenessSeconds: 5 },
    });
    feedSet = new ObservedSet({ maxStalenessMs: 5000 });
    feed = new RevocationFeedClient({ issuer, set: feedSet, initialBackoffMs: 50 });
    await feed.start();
  });

  after(async () => {
    await feed?.stop();
    await api?.close();
    await a?.close();
    await b?.close();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    if (skip) return;
    await dropSchemas(databaseUrl!, [schema]);
    await deleteRedisKeys(redisUrl!, prefix);
  });

  it('both instances publish the same key ring', async () => {
    const [ja, jb] = await Promise.all([
      call(a.url, 'GET', '/.well-known/jwks.json'),
      call(b.url, 'GET', '/.well-known/jwks.json'),
    ]);
    assert.equal(ja.status, 200);
    assert.deepEqual(
      ja.body.keys.map((k: { kid: string }) => k.kid).sort(),
      jb.body.keys.map((k: { kid: string }) => k.kid).sort(),
    );
  });

  it('token mode: log in on A, refresh on B, list sessions on A, the API accepts both access tokens', async () => {
    const { login } = await registerAndLogin(a.url, { mode: 'token', delivery: 'header' });
    const sid = login.body.session_id as string;
    const hello = await call(api.url, 'GET', '/api/hello', { headers: bearer(login.body.access_token) });
    assert.equal(hello.status, 200);
    assert.equal(hello.body.sid, sid);

    const refreshed = await call(b.url, 'POST', '/auth/refresh', {
      body: { refresh_token: login.body.refresh_token },
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.session_id, sid);
    assert.notEqual(refreshed.body.refresh_token, login.body.refresh_token);

    const sessions = await call(a.url, 'GET', '/auth/sessions', {
      headers: bearer(refreshed.body.access_token),
    });
    assert.equal(sessions.status, 200);
    const mine = sessions.body.sessions.find((s: { id: string }) => s.id === sid);
    assert.ok(mine, 'the session started on A and refreshed on B is listed on A');
    assert.equal(mine.current, true);
    assert.equal(mine.mode, 'token');
    assert.equal(
      (await call(api.url, 'GET', '/api/hello', { headers: bearer(refreshed.body.access_token) })).status,
      200,
    );
    // The successor chain continues on A.
    const again = await call(a.url, 'POST', '/auth/refresh', {
      body: { refresh_token: refreshed.body.refresh_token },
    });
    assert.equal(again.status, 200);
  });

  it('session mode: a session made on A works on B with no sticky routing, and ends everywhere', async () => {
    const { login } = await registerAndLogin(a.url, { mode: 'session', delivery: 'header' });
    const token = login.body.session_token as string;
    const meB = await call(b.url, 'GET', '/auth/me', { headers: bearer(token) });
    assert.equal(meB.status, 200);
    assert.equal(meB.body.session.id, login.body.session_id);
    assert.equal(meB.body.session.mode, 'session');
    const listB = await call(b.url, 'GET', '/auth/sessions', { headers: bearer(token) });
    assert.equal(listB.status, 200);
    assert.ok(
      listB.body.sessions.some(
        (s: { id: string; current: boolean }) => s.id === login.body.session_id && s.current,
      ),
    );
    const listA = await call(a.url, 'GET', '/auth/sessions', { headers: bearer(token) });
    assert.deepEqual(
      listA.body.sessions.map((s: { id: string }) => s.id),
      listB.body.sessions.map((s: { id: string }) => s.id),
    );
    // A has just read the session, so it holds a copy (TESSERA_SESSION_CACHE_MS): the logout on B
    // must not answer before that copy has run out.
    assert.equal((await call(a.url, 'GET', '/auth/me', { headers: bearer(token) })).status, 200);
    assert.equal((await call(b.url, 'POST', '/auth/logout', { headers: bearer(token) })).status, 204);
    assert.equal((await call(a.url, 'GET', '/auth/me', { headers: bearer(token) })).status, 401);
    assert.equal((await call(b.url, 'GET', '/auth/me', { headers: bearer(token) })).status, 401);
  });

  it('a burst of guesses split between A and B gets at most the limit checked', async () => {
    const username = uniqueName('burst');
    assert.equal(
      (await call(a.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status,
      201,
    );
    const guesses = [...Array.from({ length: 59 }, (_, i) => `wrong guess ${i}!!`), PASSWORD];
    const answers = await Promise.all(
      guesses.map((password, i) =>
        call(i % 2 === 0 ? a.url : b.url, 'POST', '/auth/login', { body: { username, password } }),
      ),
    );
    const checked = answers.filter((r) => r.status === 401 || r.status === 200).length;
    assert.ok(checked <= 5, `${checked} passwords were checked across the two instances`);
    assert.ok(answers.every((r) => [401, 200, 429].includes(r.status)));
  });

  it('failed logins split between A and B lock the account on both', async () => {
    const username = uniqueName('lock');
    assert.equal(
      (await call(a.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status,
      201,
    );
    // Default limit: 5 failures per account. 3 on A + 2 on B.
    for (const base of [a.url, b.url, a.url, b.url, a.url]) {
      const r = await call(base, 'POST', '/auth/login', { body: { username, password: 'wrong password!!' } });
      assert.equal(r.status, 401, 'below the limit a wrong password is a plain 401');
    }
    for (const base of [a.url, b.url]) {
      const r = await call(base, 'POST', '/auth/login', { body: { username, password: PASSWORD } });
      assert.equal(r.status, 429, 'the right password is refused on either instance while locked');
      assert.equal(r.body.error, 'too_many_attempts');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
  });

  it('logout on B reaches a feed subscriber on A, and the API then rejects the access token', async (t) => {
    const { login } = await registerAndLogin(a.url, { mode: 'token', delivery: 'header' });
    const sid = login.body.session_id as string;
    const access = login.body.access_token as string;
    assert.equal((await call(api.url, 'GET', '/api/hello', { headers: bearer(access) })).status, 200);

    assert.equal((await call(a.url, 'GET', '/auth/me', { headers: bearer(access) })).status, 200);
    const seen = feedSet.waitFor(sid, 10_000);
    const started = performance.now();
    const out = await call(b.url, 'POST', '/auth/logout', { headers: bearer(access) });
    assert.equal(out.status, 204);
    await seen;
    const seenMs = performance.now() - started;

    // The API server's own feed client (also on A) must turn the token away.
    let status = 200;
    let body: { error?: string } | undefined;
    while (performance.now() - started < 10_000) {
      const r = await call(api.url, 'GET', '/api/hello', { headers: bearer(access) });
      status = r.status;
      body = r.body;
      if (status !== 200) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const rejectedMs = performance.now() - started;
    assert.equal(status, 401, `API answered ${status} ${JSON.stringify(body)}`);
    t.diagnostic(
      `feed subscriber saw it after ${seenMs.toFixed(1)} ms; API refused after ${rejectedMs.toFixed(1)} ms`,
    );
    // And the account server refuses it on both instances at once (session checked in the store).
    assert.equal((await call(a.url, 'GET', '/auth/me', { headers: bearer(access) })).status, 401);
  });

  it('a logout on B whose publish is lost still reaches the feed on A: its streams read the store again', async () => {
    const { login } = await registerAndLogin(a.url, { mode: 'token', delivery: 'header' });
    const access = login.body.access_token as string;
    const hub = b.tessera.revocations.hub;
    const publish = hub.broadcast;
    let lost = 0;
    hub.broadcast = async () => {
      lost++;
      throw new Error('the message never reached Redis');
    };
    try {
      const seen = feedSet.waitFor(login.body.session_id, 10_000);
      assert.equal((await call(b.url, 'POST', '/auth/logout', { headers: bearer(access) })).status, 204);
      await seen;
    } finally {
      hub.broadcast = publish;
    }
    assert.equal(lost, 1, 'the publish was lost');
    const deadline = performance.now() + 10_000;
    let status = 200;
    while (status === 200 && performance.now() < deadline) {
      status = (await call(api.url, 'GET', '/api/hello', { headers: bearer(access) })).status;
    }
    assert.equal(status, 401);
  });

  it('logout-all on A reaches the API through its own instance too', async () => {
    const { login } = await registerAndLogin(b.url, { mode: 'token', delivery: 'header' });
    const access = login.body.access_token as string;
    const seen = feedSet.waitFor(login.body.session_id, 10_000);
    assert.equal((await call(a.url, 'POST', '/auth/logout-all', { headers: bearer(access) })).status, 204);
    await seen;
    const deadline = performance.now() + 10_000;
    let status = 200;
    while (status === 200 && performance.now() < deadline) {
      status = (await call(api.url, 'GET', '/api/hello', { headers: bearer(access) })).status;
    }
    assert.equal(status, 401);
  });

  it('every way of ending a session holds on the other instance, which had a copy of it', async () => {
    // Each ending is answered by B only once A's copy of the session has run out.
    const me = async (base: string, token: string) =>
      (await call(base, 'GET', '/auth/me', { headers: bearer(token) })).status;
    const login = async (username: string) => {
      const r = await call(a.url, 'POST', '/auth/login', {
        body: { username, password: PASSWORD, mode: 'session', delivery: 'header' },
      });
      assert.equal(r.status, 200);
      return r.body.session_token as string;
    };
    const { username, login: first } = await registerAndLogin(a.url, { mode: 'session', delivery: 'header' });
    const t1 = first.body.session_token as string;
    const t2 = await login(username);
    const t3 = await login(username);
    for (const t of [t1, t2, t3]) assert.equal(await me(a.url, t), 200);

    // DELETE /auth/sessions/{id}: t1 ends t2.
    const ended = await call(b.url, 'DELETE', `/auth/sessions/${t2.split('.')[0]}`, { headers: bearer(t1) });
    assert.equal(ended.status, 204);
    assert.equal(await me(a.url, t2), 401, 'ended by the user');
    // A password change ends every other session: t1 changes it, t3 ends.
    assert.equal(await me(a.url, t3), 200);
    const changed = await call(b.url, 'POST', '/auth/password', {
      headers: bearer(t1),
      body: { current_password: PASSWORD, new_password: `${PASSWORD} again` },
    });
    assert.equal(changed.status, 204);
    assert.equal(await me(a.url, t3), 401, 'password change');
    assert.equal(await me(a.url, t1), 200, 'the session that changed it lives on');
    // Sign out everywhere.
    assert.equal((await call(b.url, 'POST', '/auth/logout-all', { headers: bearer(t1) })).status, 204);
    assert.equal(await me(a.url, t1), 401, 'logout-all');
  });

  it('50 concurrent refreshes of one token split across A and B make one successor chain', async () => {
    const { login } = await registerAndLogin(b.url, { mode: 'token', delivery: 'header' });
    const refreshToken = login.body.refresh_token as string;
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(i % 2 === 0 ? a.url : b.url, 'POST', '/auth/refresh', { body: { refresh_token: refreshToken } }),
      ),
    );
    const ok = answers.filter((r) => r.status === 200);
    for (const r of answers) {
      assert.ok(
        r.status === 200 || (r.status === 401 && r.body.error === 'invalid_refresh_token'),
        `unexpected ${r.status} ${JSON.stringify(r.body)}`,
      );
    }
    assert.ok(ok.length >= 1);
    const successors = new Set(ok.map((r) => r.body.refresh_token as string));
    assert.equal(successors.size, 1, 'every winner got the same successor');

    // Sessions and refresh tokens live in Redis.
    const tokens = await redisRefreshTokens(redisUrl!, prefix);
    const parentId = refreshToken.split('.')[0];
    assert.equal(
      tokens.filter((t) => t.parentId === parentId).length,
      1,
      'exactly one child of the refreshed token',
    );
    const children = new Map<string, number>();
    for (const t of tokens) if (t.parentId) children.set(t.parentId, (children.get(t.parentId) ?? 0) + 1);
    assert.deepEqual(
      [...children].filter(([, n]) => n > 1),
      [],
      'no refresh token anywhere has two children',
    );
    // The chain goes on from the one successor, on either instance, and the session is alive.
    const [successor] = successors;
    const next = await call(a.url, 'POST', '/auth/refresh', { body: { refresh_token: successor } });
    assert.equal(next.status, 200);
    assert.equal(
      (await call(b.url, 'GET', '/auth/me', { headers: bearer(next.body.access_token) })).status,
      200,
    );
  });

  it('a refresh token reused on B after the grace window kills the family everywhere', async () => {
    const { login } = await registerAndLogin(a.url, { mode: 'token', delivery: 'header' });
    const stolen = login.body.refresh_token as string;
    const rotated = await call(a.url, 'POST', '/auth/refresh', { body: { refresh_token: stolen } });
    assert.equal(rotated.status, 200);
    const reuseBefore = await metric(b.url, 'tessera_refresh_reuse_total');
    // A holds a copy of the session: the reuse on B must not answer while it could still be served.
    const meA = () => call(a.url, 'GET', '/auth/me', { headers: bearer(rotated.body.access_token) });
    assert.equal((await meA()).status, 200);
    await new Promise((r) => setTimeout(r, 5_200));
    const seen = feedSet.waitFor(login.body.session_id, 10_000);
    const reuse = await call(b.url, 'POST', '/auth/refresh', { body: { refresh_token: stolen } });
    assert.equal(reuse.status, 401);
    assert.equal(reuse.body.error, 'refresh_token_reused');
    assert.equal((await meA()).status, 401, 'A no longer serves the session');
    await seen;
    // The legitimate holder's newer token is dead too, on the other instance, and on the API side.
    const legit = await call(a.url, 'POST', '/auth/refresh', {
      body: { refresh_token: rotated.body.refresh_token },
    });
    assert.equal(legit.status, 401);
    assert.equal(
      (await call(api.url, 'GET', '/api/hello', { headers: bearer(rotated.body.access_token) })).status,
      401,
    );
    assert.equal(await metric(b.url, 'tessera_refresh_reuse_total'), reuseBefore + 1);
  });

  describe('disabling an account on B', () => {
    const me = async (base: string, token: string) =>
      (await call(base, 'GET', '/auth/me', { headers: bearer(token) })).status;
    const refreshes = async (base: string, token: string) =>
      (await call(base, 'POST', '/auth/refresh', { body: { refresh_token: token } })).status;

    /** A new account signed in on A in token mode and in session mode; A holds a copy of both. */
    async function signedIn() {
      const { username, login } = await registerAndLogin(a.url, { mode: 'token', delivery: 'header' });
      const second = await call(a.url, 'POST', '/auth/login', {
        body: { username, password: PASSWORD, mode: 'session', delivery: 'header' },
      });
      assert.equal(second.status, 200);
      const access = login.body.access_token as string;
      const sessionToken = second.body.session_token as string;
      assert.equal(await me(a.url, access), 200);
      assert.equal(await me(a.url, sessionToken), 200);
      const user = (await b.tessera.stores.users.getUserByUsername(username))!;
      return { username, userId: user.id, access, sessionToken, refresh: login.body.refresh_token as string };
    }

    /** B's revokeUserSessions fails once (a Redis timeout) on the first call `when` picks. */
    async function withFailingRevokeAll(
      when: (userId: string) => Promise<boolean>,
      run: () => Promise<unknown>,
    ): Promise<boolean> {
      const sessions = b.tessera.stores.sessions;
      const revokeAll = sessions.revokeUserSessions;
      let failed = false;
      sessions.revokeUserSessions = async (userId, ...rest) => {
        if (!failed && (await when(userId))) {
          failed = true;
          throw new StoreUnavailableError(new Error('Command timed out'));
        }
        return revokeAll.call(sessions, userId, ...rest);
      };
      try {
        await assert.rejects(run(), StoreUnavailableError);
      } finally {
        sessions.revokeUserSessions = revokeAll;
      }
      return failed;
    }

    const flagOf = async (userId: string) => (await b.tessera.stores.users.getUserById(userId))?.disabled;

    it('a disable that fails after writing the flag says so, and leaves no session working', async () => {
      const u = await signedIn();
      const failed = await withFailingRevokeAll(
        async (userId) => (await flagOf(userId)) === true,
        () => b.tessera.auth.setDisabled(u.userId, true),
      );
      assert.ok(failed, 'the revoke-all after the flag failed');
      assert.equal(await flagOf(u.userId), true);
      for (const base of [a.url, b.url]) {
        assert.equal(await me(base, u.access), 401, 'access token');
        assert.equal(await me(base, u.sessionToken), 401, 'session token');
      }
      assert.equal(await refreshes(a.url, u.refresh), 401, 'refresh token');
    });

    it('a disable that fails before writing the flag changes nothing, and a retry completes it', async () => {
      const u = await signedIn();
      const failed = await withFailingRevokeAll(
        async () => true,
        () => b.tessera.auth.setDisabled(u.userId, true),
      );
      assert.ok(failed);
      assert.equal(await flagOf(u.userId), false, 'nothing was disabled');
      assert.equal(await me(a.url, u.sessionToken), 200, 'an enabled account keeps its sessions');
      assert.equal(await b.tessera.auth.setDisabled(u.userId, true), true);
      assert.equal(await me(a.url, u.access), 401);
      assert.equal(await me(a.url, u.sessionToken), 401);
      assert.equal(await refreshes(b.url, u.refresh), 401);
    });

    it('a disable that succeeds ends every session everywhere, and enabling again revives none', async () => {
      const u = await signedIn();
      assert.equal(await b.tessera.auth.setDisabled(u.userId, true), true);
      for (const base of [a.url, b.url]) {
        assert.equal(await me(base, u.access), 401, 'access token');
        assert.equal(await me(base, u.sessionToken), 401, 'session token');
      }
      assert.equal(await refreshes(a.url, u.refresh), 401, 'refresh token');
      const [audit] = await b.tessera.stores.audit.listAuditEvents({
        userId: u.userId,
        type: 'account_disabled',
        limit: 1,
      });
      assert.equal(audit?.detail, '2 sessions ended');

      assert.equal(await b.tessera.auth.setDisabled(u.userId, false), true);
      assert.equal(await me(a.url, u.access), 401);
      assert.equal(await me(a.url, u.sessionToken), 401);
      assert.equal(await refreshes(b.url, u.refresh), 401);
      const again = await call(a.url, 'POST', '/auth/login', {
        body: { username: u.username, password: PASSWORD, mode: 'session', delivery: 'header' },
      });
      assert.equal(again.status, 200, 'the account signs in again');
      assert.equal(await me(b.url, again.body.session_token as string), 200);
    });
  });

  it('/metrics on each instance counts its own logins, refreshes and revocations', async () => {
    const [ma, mb] = await Promise.all([call(a.url, 'GET', '/metrics'), call(b.url, 'GET', '/metrics')]);
    assert.match(ma.body, /tessera_logins_total\{result="ok",mode="token"\} \d+/);
    assert.match(mb.body, /tessera_refreshes_total\{result="ok"\} \d+/);
    assert.match(mb.body, /tessera_revocations_total\{reason="logout",kind="session"\} \d+/);
    assert.match(ma.body, /tessera_revocation_stream_clients \d+/);
  });
});

describe('two deployments on one Redis, each with its own prefix', { skip, timeout: 60_000 }, () => {
  // Deployment X has one instance; deployment Y has two (Y1, Y2), so a logout on Y2 reaches Y1's
  // stream over Redis, on the same pub/sub channel X would use if the prefixes were ignored.
  const schemas = [`${schema}_x`, `${schema}_y`];
  const prefixes = [`${prefix}x:`, `${prefix}y:`];
  const servers: RunningServer[] = [];
  const dataDirs: string[] = [];
  let x: RunningServer;
  let y2: RunningServer;
  let apiY: ApiServer;
  const feeds: RevocationFeedClient[] = [];
  let setX: ObservedSet;
  let setY: ObservedSet;

  async function instance(port: number, issuer: string, which: 0 | 1): Promise<RunningServer> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-deploy-'));
    dataDirs.push(dataDir);
    const config = loadConfig(
      {},
      {
        port,
        issuer,
        dataDir,
        secret: SECRET,
        databaseUrl,
        redisUrl,
        databaseSchema: schemas[which],
        redisPrefix: prefixes[which],
        registerPerIpPerHour: 100_000,
        logLevel: 'silent',
      },
    );
    const server = await startServer({ config, logger: false, heartbeatMs: 200 });
    servers.push(server);
    return server;
  }

  async function follow(issuer: string): Promise<ObservedSet> {
    const set = new ObservedSet({ maxStalenessMs: 5000 });
    const feed = new RevocationFeedClient({ issuer, set, initialBackoffMs: 50 });
    feeds.push(feed);
    await feed.start();
    return set;
  }

  before(async () => {
    const [px, py1, py2, pApi] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const issuerX = `http://127.0.0.1:${px}`;
    const issuerY = `http://127.0.0.1:${py1}`;
    x = await instance(px, issuerX, 0);
    await instance(py1, issuerY, 1); // Y1: the instance Y's feed and API server follow
    y2 = await instance(py2, issuerY, 1);
    apiY = await startApiServer({
      issuer: issuerY,
      port: pApi,
      publicUrl: `http://127.0.0.1:${pApi}`,
      revocationFeed: { maxStalenessSeconds: 5 },
    });
    setX = await follow(issuerX);
    setY = await follow(issuerY);
  });

  after(async () => {
    for (const feed of feeds) await feed.stop();
    await apiY?.close();
    for (const server of servers) await server.close();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    if (skip) return;
    await dropSchemas(databaseUrl!, schemas);
    for (const p of prefixes) await deleteRedisKeys(redisUrl!, p);
  });

  it("a logout on X stays out of Y's feed, and Y's own logout still reaches Y's feed and API", async () => {
    const onX = (await registerAndLogin(x.url, { mode: 'token', delivery: 'header' })).login;
    const onY = (await registerAndLogin(y2.url, { mode: 'token', delivery: 'header' })).login;
    const accessY = onY.body.access_token as string;
    assert.equal((await call(apiY.url, 'GET', '/api/hello', { headers: bearer(accessY) })).status, 200);

    const seenOnX = setX.waitFor(onX.body.session_id, 2000);
    assert.equal(
      (await call(x.url, 'POST', '/auth/logout', { headers: bearer(onX.body.access_token) })).status,
      204,
    );
    await seenOnX;
    // Both stores are fresh, so Y's first entry has the same sequence number X's had.
    const seenOnY = setY.waitFor(onY.body.session_id, 2000);
    assert.equal((await call(y2.url, 'POST', '/auth/logout', { headers: bearer(accessY) })).status, 204);
    await seenOnY;
    // Had X's entry been on Y's channel, Y1 would have received it before Y2's (one channel, in order).
    assert.equal(setY.isRevoked({ sid: onX.body.session_id }), false, "X's session is not in Y's feed");
    assert.equal(setX.isRevoked({ sid: onY.body.session_id }), false, "Y's session is not in X's feed");

    let status = 200;
    const deadline = performance.now() + 2000;
    while (status === 200 && performance.now() < deadline) {
      status = (await call(apiY.url, 'GET', '/api/hello', { headers: bearer(accessY) })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(status, 401, "Y's API server turns away the logged-out token");
  });
});
