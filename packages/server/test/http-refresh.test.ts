// Refresh rotation: one chain under concurrency, the grace window, reuse detection.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError } from '../src/errors.js';
import { call, PASSWORD, registerAndLogin, startTestServer, type TestServer } from './helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ refreshGraceSeconds: 10 });
});
after(async () => {
  await srv.close();
});

const refresh = (token: string) => call(srv.url, 'POST', '/auth/refresh', { body: { refresh_token: token } });

describe('refresh rotation', () => {
  it('returns a new pair and marks the old refresh token used', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const r1 = await refresh(login.body.refresh_token);
    assert.equal(r1.status, 200);
    assert.notEqual(r1.body.refresh_token, login.body.refresh_token);
    assert.notEqual(r1.body.access_token, login.body.access_token);
    assert.equal(r1.body.session_id, login.body.session_id);
    const r2 = await refresh(r1.body.refresh_token);
    assert.equal(r2.status, 200);
    const me = await call(srv.url, 'GET', '/auth/me', {
      headers: { authorization: `Bearer ${r2.body.access_token}` },
    });
    assert.equal(me.status, 200);
  });

  it('50 concurrent refreshes of one token yield exactly one successor chain', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const answers = await Promise.all(Array.from({ length: 50 }, () => refresh(login.body.refresh_token)));
    const ok = answers.filter((a) => a.status === 200);
    for (const a of answers) assert.ok(a.status === 200 || a.status === 401, `status ${a.status}`);
    assert.ok(ok.length >= 1);
    const successors = new Set(ok.map((a) => a.body.refresh_token));
    assert.equal(successors.size, 1, 'every winner got the same successor');
    const [successor] = [...successors];
    const next = await refresh(successor!);
    assert.equal(next.status, 200, 'the one chain lives on');
    const again = await refresh(successor!);
    assert.equal(again.status, 200, 'a retry of the successor within grace gets its successor too');
    assert.equal(again.body.refresh_token, next.body.refresh_token);
  });

  it('a repeat within the grace window returns the same successor; a reuse after it kills the family', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const first = await refresh(login.body.refresh_token);
    srv.clock.now += 5_000;
    const repeat = await refresh(login.body.refresh_token);
    assert.equal(repeat.status, 200);
    assert.equal(repeat.body.refresh_token, first.body.refresh_token);
    srv.clock.now += 6_000; // 11 s after first use
    const reuse = await refresh(login.body.refresh_token);
    assert.equal(reuse.status, 401);
    assert.equal(reuse.body.error, 'refresh_token_reused');
    // every token of the family is dead: access tokens at /auth/me, the successor at /auth/refresh
    for (const access of [login.body.access_token, first.body.access_token]) {
      const me = await call(srv.url, 'GET', '/auth/me', { headers: { authorization: `Bearer ${access}` } });
      assert.equal(me.status, 401);
    }
    const successor = await refresh(first.body.refresh_token);
    assert.equal(successor.status, 401);
    // the revocation is counted and reaches the feed
    assert.ok(
      srv.app.metrics.get('tessera_revocations_total', { reason: 'refresh_reuse', kind: 'session' }) >= 1,
    );
    const feed = await call(srv.url, 'GET', '/auth/revocations');
    assert.ok(feed.body.entries.some((e: { sid?: string }) => e.sid === login.body.session_id));
  });

  it('a stolen spent token cannot walk the chain within the grace window: once its successor is spent, a replay is reuse', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const t1 = await refresh(login.body.refresh_token);
    srv.clock.now += 1_000;
    const t2 = await refresh(t1.body.refresh_token);
    assert.equal(t2.status, 200);
    srv.clock.now += 1_000; // both within the grace window of their use
    const replay = await refresh(login.body.refresh_token);
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'refresh_token_reused');
    assert.equal((await refresh(t2.body.refresh_token)).status, 401, 'the live token ended with the family');
  });

  it('a refresh token used within the grace window no longer acts for the user, though it still names its family', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const spent = login.body.refresh_token as string;
    const rotated = await refresh(spent);
    assert.equal(rotated.status, 200);
    srv.clock.now += 1_000;
    assert.equal(await srv.tessera.auth.sessionOfRefreshToken(spent), null, 'no provider link with it');
    assert.equal((await srv.tessera.auth.sessionOfRefreshToken(spent, 'family'))?.id, login.body.session_id);
    assert.equal(
      (await srv.tessera.auth.sessionOfRefreshToken(rotated.body.refresh_token))?.id,
      login.body.session_id,
      'the current token does',
    );
  });

  it('a browser left with a spent refresh cookie (a thief rotated first) still gets its CSRF token and signs the thief out', async () => {
    const { login } = await registerAndLogin(
      srv.url,
      { mode: 'token', delivery: 'cookie' },
      { origin: srv.origin },
    );
    const spent = login.cookies.tessera_refresh!.value;
    const thief = await refresh(spent);
    assert.equal(thief.status, 200);
    srv.clock.now += 11_000; // past the grace window
    const cookie = `tessera_refresh=${spent}`;
    const csrf = await call(srv.url, 'GET', '/auth/csrf', { headers: { cookie } });
    assert.equal(csrf.status, 200);
    assert.equal(csrf.body.session_id, login.body.session_id);
    const foreign = await call(srv.url, 'POST', '/auth/logout', {
      headers: { cookie, origin: 'https://evil.example', 'x-csrf-token': csrf.body.csrf_token },
    });
    assert.equal(foreign.status, 403, 'still a cookie-authenticated write: Origin and CSRF token');
    const out = await call(srv.url, 'POST', '/auth/logout', {
      headers: { cookie, origin: srv.origin, 'x-csrf-token': csrf.body.csrf_token },
    });
    assert.equal(out.status, 204);
    const after = await refresh(thief.body.refresh_token);
    assert.equal(after.status, 401, 'the family is over');
  });

  it('a browser whose session cookie went stale beside a later token login signs that login out', async () => {
    const { username, login: first } = await registerAndLogin(
      srv.url,
      { mode: 'session', delivery: 'cookie' },
      { origin: srv.origin },
    );
    const stale = `tessera_session=${first.cookies.tessera_session!.value}`;
    srv.clock.now += 31 * 60_000; // the session idles out; its cookie stays in the browser
    const second = await call(srv.url, 'POST', '/auth/login', {
      headers: { origin: srv.origin, cookie: stale },
      body: { username, password: PASSWORD, mode: 'token', delivery: 'cookie' },
    });
    assert.equal(second.status, 200);
    const refreshCookie = `tessera_refresh=${second.cookies.tessera_refresh!.value}`;
    const out = await call(srv.url, 'POST', '/auth/logout', {
      headers: {
        origin: srv.origin,
        cookie: `${stale}; ${refreshCookie}`,
        'x-csrf-token': second.body.csrf_token,
      },
    });
    assert.equal(out.status, 204);
    const after = await call(srv.url, 'POST', '/auth/refresh', {
      headers: { origin: srv.origin, cookie: refreshCookie, 'x-csrf-token': second.body.csrf_token },
    });
    assert.equal(after.status, 401, 'the token login is signed out');
  });

  it('a browser holding a session cookie and a refresh cookie refreshes with the CSRF token /auth/csrf gives', async () => {
    // A sign-in in session mode (the provider's sign-in page) beside a token-mode app's login.
    const { username, login: signIn } = await registerAndLogin(
      srv.url,
      { mode: 'session', delivery: 'cookie' },
      { origin: srv.origin },
    );
    const sessionCookie = `tessera_session=${signIn.cookies.tessera_session!.value}`;
    const app = await call(srv.url, 'POST', '/auth/login', {
      headers: { origin: srv.origin, cookie: sessionCookie },
      body: { username, password: PASSWORD, mode: 'token', delivery: 'cookie' },
    });
    assert.equal(app.status, 200);
    assert.deepEqual(
      app.headers.getSetCookie().filter((c) => c.startsWith('tessera_session=')),
      [],
      'kept',
    );
    const both = `${sessionCookie}; tessera_refresh=${app.cookies.tessera_refresh!.value}`;
    // After a reload the page asks for its CSRF token: the session cookie's answers first.
    const csrf = await call(srv.url, 'GET', '/auth/csrf', { headers: { cookie: both } });
    assert.equal(csrf.body.session_id, signIn.body.session_id);
    const refreshed = await call(srv.url, 'POST', '/auth/refresh', {
      headers: { origin: srv.origin, cookie: both, 'x-csrf-token': csrf.body.csrf_token },
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.session_id, app.body.session_id);
    const wrong = await call(srv.url, 'POST', '/auth/refresh', {
      headers: {
        origin: srv.origin,
        cookie: `tessera_refresh=${refreshed.cookies.tessera_refresh!.value}`,
        'x-csrf-token': csrf.body.csrf_token,
      },
    });
    assert.equal(wrong.status, 403, 'without the session cookie beside it, that token binds nothing');
    const me = await call(srv.url, 'GET', '/auth/me', { headers: { cookie: sessionCookie } });
    assert.equal(me.status, 200, 'the session cookie still signs in');
  });

  it('a cookie refresh the store cannot answer keeps the cookies', async () => {
    const { login } = await registerAndLogin(
      srv.url,
      { mode: 'token', delivery: 'cookie' },
      { origin: srv.origin },
    );
    const sessions = srv.app.stores.sessions;
    const rotate = sessions.rotateRefreshToken.bind(sessions);
    sessions.rotateRefreshToken = async () => {
      sessions.rotateRefreshToken = rotate;
      throw new StoreUnavailableError(new Error('the database went away'));
    };
    const down = await call(srv.url, 'POST', '/auth/refresh', {
      headers: {
        origin: srv.origin,
        cookie: `tessera_refresh=${login.cookies.tessera_refresh!.value}`,
        'x-csrf-token': login.body.csrf_token,
      },
    });
    assert.equal(down.status, 503);
    assert.equal(down.body.error, 'unavailable');
    assert.deepEqual(down.headers.getSetCookie(), [], 'a passing fault signs no one out');
  });

  it('a cookie refresh no family answers for is still refused from a foreign origin, cookies kept', async () => {
    const { login } = await registerAndLogin(
      srv.url,
      { mode: 'session', delivery: 'cookie' },
      { origin: srv.origin },
    );
    const cookie = `tessera_session=${login.cookies.tessera_session!.value}; tessera_refresh=unknownunknown1.unknownunknownunknown`;
    const foreign = await call(srv.url, 'POST', '/auth/refresh', {
      headers: { origin: 'https://evil.example', cookie },
    });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error, 'csrf_failed');
    assert.deepEqual(foreign.headers.getSetCookie(), [], 'no cookie cleared from another site');
    const me = await call(srv.url, 'GET', '/auth/me', { headers: { cookie } });
    assert.equal(me.status, 200, 'the session cookie still signs in');
    const own = await call(srv.url, 'POST', '/auth/refresh', { headers: { origin: srv.origin, cookie } });
    assert.equal(own.status, 401);
    assert.equal(own.body.error, 'invalid_refresh_token');
  });

  it('refuses unknown, malformed and forged refresh tokens', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const [id, secret] = login.body.refresh_token.split('.');
    const forged = `${id}.${secret.slice(0, -2)}${secret.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const token of [
      '',
      'garbage',
      'a.b',
      `${id}.`,
      forged,
      `${'x'.repeat(22)}.${'y'.repeat(43)}`,
      'é'.repeat(40),
    ]) {
      const res = await refresh(token);
      assert.equal(res.status, 401, token);
      assert.equal(res.body.error, 'invalid_refresh_token');
    }
    assert.equal(
      (await refresh(login.body.refresh_token)).status,
      200,
      'a forged try does not burn the real token',
    );
    const wrongType = await call(srv.url, 'POST', '/auth/refresh', { body: { refresh_token: 42 } });
    assert.equal(wrongType.status, 400);
  });

  it('an access token is not a refresh token, and a refresh token is not an access token', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    assert.equal((await refresh(login.body.access_token)).status, 401);
    const me = await call(srv.url, 'GET', '/auth/me', {
      headers: { authorization: `Bearer ${login.body.refresh_token}` },
    });
    assert.equal(me.status, 401);
  });

  it('refresh tokens expire after the idle lifetime', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    srv.clock.now += 7 * 86_400_000 + 1000;
    const res = await refresh(login.body.refresh_token);
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_refresh_token');
  });
});

describe('session timeouts are enforced by the server', () => {
  it('idle and absolute', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'session', delivery: 'header' });
    const auth = { authorization: `Bearer ${login.body.session_token}` };
    // activity every 20 minutes keeps it alive past the 30-minute idle limit…
    for (let i = 0; i < 3; i++) {
      srv.clock.now += 20 * 60_000;
      assert.equal((await call(srv.url, 'GET', '/auth/me', { headers: auth })).status, 200, `step ${i}`);
    }
    // …but 31 idle minutes end it
    srv.clock.now += 31 * 60_000;
    assert.equal((await call(srv.url, 'GET', '/auth/me', { headers: auth })).status, 401);

    const fresh = await registerAndLogin(srv.url, { mode: 'session', delivery: 'header' });
    const auth2 = { authorization: `Bearer ${fresh.login.body.session_token}` };
    for (let i = 0; i < 12 * 3; i++) {
      srv.clock.now += 20 * 60_000;
      const res = await call(srv.url, 'GET', '/auth/me', { headers: auth2 });
      if (i < 35) assert.equal(res.status, 200, `step ${i}`);
      else assert.equal(res.status, 401, 'the absolute limit (12 h) ends even an active session');
    }
  });

  it('access tokens expire', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    srv.clock.now += 301_000;
    const me = await call(srv.url, 'GET', '/auth/me', {
      headers: { authorization: `Bearer ${login.body.access_token}` },
    });
    assert.equal(me.status, 401);
  });
});
