// The HTTP contract (docs/http-api.md), walked in all four mode × delivery combinations.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { call, PASSWORD, registerAndLogin, startTestServer, type TestServer, uniqueName } from './helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ corsOrigins: ['https://app.example'] });
});
after(async () => {
  await srv.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('register', () => {
  it('creates a user with a normalised name and refuses a second one that normalises the same', async () => {
    const name = uniqueName('Mixed');
    const res = await call(srv.url, 'POST', '/auth/register', {
      body: { username: name, password: PASSWORD },
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.user.username, name.toLowerCase());
    assert.match(res.body.user.id, /^[A-Za-z0-9_-]{22}$/);
    // Fullwidth letters normalise (NFKC) to the same name.
    const fullwidth = name.toUpperCase().replace('M', '\uFF2D');
    const dup = await call(srv.url, 'POST', '/auth/register', {
      body: { username: fullwidth, password: PASSWORD },
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error, 'username_taken');
  });

  it('refuses short and common passwords and the username as password', async () => {
    for (const password of ['short', 'password123', 'qwertyuiop']) {
      const res = await call(srv.url, 'POST', '/auth/register', {
        body: { username: uniqueName(), password },
      });
      assert.equal(res.status, 400, password);
      assert.equal(res.body.error, 'weak_password');
    }
    const name = uniqueName('samename');
    const res = await call(srv.url, 'POST', '/auth/register', { body: { username: name, password: name } });
    assert.equal(res.body.error, 'weak_password');
  });

  it('accepts long passphrases without truncating them', async () => {
    const username = uniqueName();
    const long = `${'a very long passphrase '.repeat(5)}`; // > 64 characters
    assert.equal(
      (await call(srv.url, 'POST', '/auth/register', { body: { username, password: long } })).status,
      201,
    );
    const truncated = long.slice(0, 72);
    const wrong = await call(srv.url, 'POST', '/auth/login', { body: { username, password: truncated } });
    assert.equal(wrong.status, 401);
    const right = await call(srv.url, 'POST', '/auth/login', { body: { username, password: long } });
    assert.equal(right.status, 200);
  });

  it('rejects bad shapes with 400 invalid_request', async () => {
    const bodies: unknown[] = [
      {},
      { username: 'abc' },
      { username: 12345, password: PASSWORD },
      { username: 'abc', password: ['x'] },
      { username: uniqueName(), password: PASSWORD, admin: true },
      { username: 'has space', password: PASSWORD },
      { username: 'ab', password: PASSWORD },
      [],
      'string',
      null,
    ];
    for (const body of bodies) {
      const res = await call(srv.url, 'POST', '/auth/register', {
        rawBody: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request', JSON.stringify(body));
    }
  });
});

describe('login answers per the HTTP reference', () => {
  it('token + header: access and refresh token in the body, no cookies', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    assert.deepEqual(Object.keys(login.body).sort(), [
      'access_token',
      'expires_in',
      'refresh_expires_in',
      'refresh_token',
      'session_id',
      'token_type',
    ]);
    assert.equal(login.body.token_type, 'Bearer');
    assert.equal(login.body.expires_in, 300);
    assert.equal(login.body.refresh_expires_in, 7 * 86400);
    assert.deepEqual(login.cookies, {});
    assert.equal(login.headers.get('cache-control'), 'no-store');
  });

  it('token + cookie: access token and CSRF token in the body, refresh token in an HttpOnly cookie', async () => {
    const { login } = await registerAndLogin(
      srv.url,
      { mode: 'token', delivery: 'cookie' },
      { origin: srv.origin },
    );
    assert.deepEqual(Object.keys(login.body).sort(), [
      'access_token',
      'csrf_token',
      'expires_in',
      'session_id',
      'token_type',
    ]);
    const cookie = login.cookies.tessera_refresh;
    assert.ok(cookie, 'refresh cookie set');
    assert.match(cookie.value, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const attrs = cookie.attributes.map((a) => a.toLowerCase());
    assert.ok(attrs.includes('httponly'));
    assert.ok(attrs.includes('samesite=lax'));
    assert.ok(attrs.includes('path=/'));
    assert.ok(!attrs.some((a) => a.startsWith('domain')));
  });

  it('session + header: an opaque session token in the body', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'session', delivery: 'header' });
    assert.deepEqual(Object.keys(login.body).sort(), [
      'expires_in',
      'session_id',
      'session_token',
      'token_type',
    ]);
    assert.ok(login.body.session_token.startsWith(`${login.body.session_id}.`));
    assert.equal(login.body.expires_in, 30 * 60);
    assert.deepEqual(login.cookies, {});
  });

  it('session + cookie: the session token only in an HttpOnly cookie', async () => {
    const { login } = await registerAndLogin(
      srv.url,
      { mode: 'session', delivery: 'cookie' },
      { origin: srv.origin },
    );
    assert.deepEqual(Object.keys(login.body).sort(), ['csrf_token', 'expires_in', 'session_id']);
    const cookie = login.cookies.tessera_session;
    assert.ok(cookie?.attributes.map((a) => a.toLowerCase()).includes('httponly'));
    assert.ok(cookie && !JSON.stringify(login.body).includes(cookie.value));
  });

  it('defaults: token mode, cookie delivery when an Origin is sent, header delivery otherwise', async () => {
    const username = uniqueName();
    await call(srv.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } });
    const plain = await call(srv.url, 'POST', '/auth/login', { body: { username, password: PASSWORD } });
    assert.ok(plain.body.refresh_token && plain.body.access_token);
    const browser = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD },
      headers: { origin: srv.origin },
    });
    assert.ok(browser.body.access_token && browser.body.csrf_token && !browser.body.refresh_token);
    assert.ok(browser.cookies.tessera_refresh);
  });

  it('unknown user and wrong password give the same status and body', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const wrong = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: 'not the password' },
    });
    const unknown = await call(srv.url, 'POST', '/auth/login', {
      body: { username: uniqueName('ghost'), password: 'not the password' },
    });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(wrong.body, unknown.body);
    assert.equal(wrong.body.error, 'invalid_credentials');
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer/);
  });
});

describe('authenticated routes in every mode', () => {
  const modes = [
    { mode: 'token', delivery: 'header' },
    { mode: 'session', delivery: 'header' },
    { mode: 'session', delivery: 'cookie' },
  ] as const;

  for (const m of modes) {
    it(`${m.mode} + ${m.delivery}: me, sessions, end one, logout`, async () => {
      const { username, login } = await registerAndLogin(
        srv.url,
        m,
        m.delivery === 'cookie' ? { origin: srv.origin } : {},
      );
      const cookie = login.cookies.tessera_session?.value;
      const auth: Record<string, string> =
        m.delivery === 'cookie'
          ? { cookie: `tessera_session=${cookie}` }
          : bearer(login.body.access_token ?? login.body.session_token);
      const writeAuth: Record<string, string> =
        m.delivery === 'cookie'
          ? { ...auth, origin: srv.origin, 'x-csrf-token': login.body.csrf_token }
          : auth;

      const me = await call(srv.url, 'GET', '/auth/me', { headers: auth });
      assert.equal(me.status, 200);
      assert.equal(me.body.user.username, username);
      assert.deepEqual(me.body.user.roles, ['user']);
      assert.equal(me.body.session.id, login.body.session_id);
      assert.equal(me.body.session.mode, m.mode);
      assert.ok(Date.parse(me.body.session.expires_at) > Date.now());

      // a second session of the same user, to list and end
      const second = await call(srv.url, 'POST', '/auth/login', {
        body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
        headers: { 'user-agent': 'second-device/1.0' },
      });
      const list = await call(srv.url, 'GET', '/auth/sessions', { headers: auth });
      assert.equal(list.status, 200);
      assert.equal(list.body.sessions.length, 2);
      const mine = list.body.sessions.find((s: { current: boolean }) => s.current);
      assert.equal(mine.id, login.body.session_id);
      const other = list.body.sessions.find((s: { current: boolean }) => !s.current);
      assert.equal(other.user_agent, 'second-device/1.0');
      assert.deepEqual(Object.keys(other).sort(), [
        'created_at',
        'current',
        'expires_at',
        'id',
        'last_seen_at',
        'mode',
        'user_agent',
      ]);

      const end = await call(srv.url, 'DELETE', `/auth/sessions/${second.body.session_id}`, {
        headers: writeAuth,
      });
      assert.equal(end.status, 204);
      const dead = await call(srv.url, 'GET', '/auth/me', { headers: bearer(second.body.access_token) });
      assert.equal(dead.status, 401, 'an ended session’s access token is refused at once');
      assert.equal(dead.body.error, 'invalid_token');
      assert.match(dead.headers.get('www-authenticate') ?? '', /error="invalid_token"/);

      const logout = await call(srv.url, 'POST', '/auth/logout', { headers: writeAuth });
      assert.equal(logout.status, 204);
      const after = await call(srv.url, 'GET', '/auth/me', { headers: auth });
      assert.equal(after.status, 401);
    });
  }

  it('a user cannot end another user’s session', async () => {
    const a = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const b = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const res = await call(srv.url, 'DELETE', `/auth/sessions/${b.login.body.session_id}`, {
      headers: bearer(a.login.body.access_token),
    });
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'not_found');
    assert.equal(
      (await call(srv.url, 'GET', '/auth/me', { headers: bearer(b.login.body.access_token) })).status,
      200,
    );
  });

  it('logout-all ends every session of the user', async () => {
    const { username, login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const other = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'session', delivery: 'header' },
    });
    assert.equal(
      (await call(srv.url, 'POST', '/auth/logout-all', { headers: bearer(login.body.access_token) })).status,
      204,
    );
    assert.equal(
      (await call(srv.url, 'GET', '/auth/me', { headers: bearer(login.body.access_token) })).status,
      401,
    );
    assert.equal(
      (await call(srv.url, 'GET', '/auth/me', { headers: bearer(other.body.session_token) })).status,
      401,
    );
    const refresh = await call(srv.url, 'POST', '/auth/refresh', {
      body: { refresh_token: login.body.refresh_token },
    });
    assert.equal(refresh.status, 401);
    assert.equal(refresh.body.error, 'invalid_refresh_token');
  });

  it('password change needs the current password and ends the other sessions only', async () => {
    const { username, login } = await registerAndLogin(srv.url, { mode: 'session', delivery: 'header' });
    const other = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
    });
    const auth = bearer(login.body.session_token);
    const wrong = await call(srv.url, 'POST', '/auth/password', {
      headers: auth,
      body: { current_password: 'nope nope nope', new_password: 'a fresh new passphrase' },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid_credentials');
    const weak = await call(srv.url, 'POST', '/auth/password', {
      headers: auth,
      body: { current_password: PASSWORD, new_password: 'password1' },
    });
    assert.equal(weak.body.error, 'weak_password');
    const ok = await call(srv.url, 'POST', '/auth/password', {
      headers: auth,
      body: { current_password: PASSWORD, new_password: 'a fresh new passphrase' },
    });
    assert.equal(ok.status, 204);
    assert.equal((await call(srv.url, 'GET', '/auth/me', { headers: auth })).status, 200);
    assert.equal(
      (await call(srv.url, 'GET', '/auth/me', { headers: bearer(other.body.access_token) })).status,
      401,
    );
    assert.equal(
      (await call(srv.url, 'POST', '/auth/login', { body: { username, password: PASSWORD } })).status,
      401,
    );
    assert.equal(
      (await call(srv.url, 'POST', '/auth/login', { body: { username, password: 'a fresh new passphrase' } }))
        .status,
      200,
    );
  });
});

describe('access tokens', () => {
  it('verify with jose against the published JWKS with the expected header and claims', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const jwks = createRemoteJWKSet(new URL(`${srv.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(login.body.access_token, jwks, {
      issuer: srv.url,
      audience: 'tessera',
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sid, login.body.session_id);
    assert.equal(payload.scope, 'api');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 300);
    assert.ok(typeof payload.jti === 'string' && typeof payload.sub === 'string');
  });

  it('JWKS publishes next and current keys with a Cache-Control', async () => {
    const res = await call(srv.url, 'GET', '/.well-known/jwks.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/);
    assert.ok(res.body.keys.length >= 2);
    for (const k of res.body.keys) {
      assert.deepEqual(Object.keys(k).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      assert.equal(k.d, undefined, 'no private part');
    }
  });

  it('key rotation rejects no token that was valid, and new tokens use the former next key', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const before = (await call(srv.url, 'GET', '/.well-known/jwks.json')).body;
    const oldKid = decodeProtectedHeader(login.body.access_token).kid;
    await srv.app.keys.rotate(srv.clock.now);
    const afterJwks = (await call(srv.url, 'GET', '/.well-known/jwks.json')).body;
    assert.ok(
      afterJwks.keys.some((k: { kid: string }) => k.kid === oldKid),
      'retired key still published',
    );
    assert.equal(
      (await call(srv.url, 'GET', '/auth/me', { headers: bearer(login.body.access_token) })).status,
      200,
    );
    await jwtVerify(login.body.access_token, createLocalJWKSet(afterJwks), {
      issuer: srv.url,
      audience: 'tessera',
    });
    const refreshed = await call(srv.url, 'POST', '/auth/refresh', {
      body: { refresh_token: login.body.refresh_token },
    });
    const newKid = decodeProtectedHeader(refreshed.body.access_token).kid;
    assert.notEqual(newKid, oldKid);
    assert.ok(
      before.keys.some((k: { kid: string }) => k.kid === newKid),
      'the new signing key was published before it signed',
    );
  });
});
