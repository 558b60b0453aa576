// CSRF, CORS and cookie attributes: what a browser-facing auth server must refuse.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, PASSWORD, registerAndLogin, startTestServer, type TestServer } from './helpers.js';

const ALLOWED = 'https://app.example';
const EVIL = 'https://evil.example';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ corsOrigins: [ALLOWED] });
});
after(async () => {
  await srv.close();
});

async function sessionCookieLogin() {
  const { login } = await registerAndLogin(
    srv.url,
    { mode: 'session', delivery: 'cookie' },
    { origin: ALLOWED },
  );
  return {
    cookie: `tessera_session=${login.cookies.tessera_session!.value}`,
    csrf: login.body.csrf_token as string,
    sid: login.body.session_id as string,
  };
}

describe('CSRF on cookie-authenticated writes', () => {
  it('refuses a write without the CSRF token, with a wrong one, or from a disallowed Origin', async () => {
    const s = await sessionCookieLogin();
    const attempts: Record<string, string>[] = [
      { cookie: s.cookie, origin: ALLOWED },
      { cookie: s.cookie, origin: ALLOWED, 'x-csrf-token': 'wrong' },
      { cookie: s.cookie, origin: EVIL, 'x-csrf-token': s.csrf },
      { cookie: s.cookie, 'x-csrf-token': s.csrf }, // no Origin, no Sec-Fetch-Site
      { cookie: s.cookie, 'x-csrf-token': s.csrf, 'sec-fetch-site': 'cross-site' },
      { cookie: s.cookie, origin: 'null', 'x-csrf-token': s.csrf },
    ];
    for (const headers of attempts) {
      for (const [method, path] of [
        ['POST', '/auth/logout'],
        ['POST', '/auth/logout-all'],
        ['DELETE', `/auth/sessions/${s.sid}`],
      ] as const) {
        const res = await call(srv.url, method, path, { headers });
        assert.equal(
          res.status,
          403,
          `${method} ${path} ${JSON.stringify({ ...headers, cookie: undefined })}`,
        );
        assert.equal(res.body.error, 'csrf_failed');
      }
    }
    const pw = await call(srv.url, 'POST', '/auth/password', {
      headers: { cookie: s.cookie, origin: EVIL },
      body: { current_password: 'x', new_password: 'y' },
    });
    assert.equal(pw.body.error, 'csrf_failed');
    // still alive after all that
    assert.equal((await call(srv.url, 'GET', '/auth/me', { headers: { cookie: s.cookie } })).status, 200);
  });

  it('accepts the write with an allowed Origin or same-origin Sec-Fetch-Site and the bound token', async () => {
    const s = await sessionCookieLogin();
    const other = await sessionCookieLogin();
    const crossToken = await call(srv.url, 'POST', '/auth/logout', {
      headers: { cookie: s.cookie, origin: ALLOWED, 'x-csrf-token': other.csrf },
    });
    assert.equal(crossToken.status, 403, "another session's CSRF token does not fit");
    const sameSite = await call(srv.url, 'GET', '/auth/sessions', { headers: { cookie: s.cookie } });
    assert.equal(sameSite.status, 200, 'reads need no CSRF token');
    const ok = await call(srv.url, 'POST', '/auth/logout', {
      headers: { cookie: s.cookie, 'sec-fetch-site': 'same-origin', 'x-csrf-token': s.csrf },
    });
    assert.equal(ok.status, 204);
    const cleared = ok.cookies.tessera_session;
    assert.ok(
      cleared &&
        (cleared.value === '' ||
          cleared.attributes.some((a) => /max-age=0|expires=thu, 01 jan 1970/i.test(a))),
    );
    assert.equal((await call(srv.url, 'GET', '/auth/me', { headers: { cookie: s.cookie } })).status, 401);
  });

  it('a refused cookie write leaves the session to idle out (idle lifetime 30 min)', async () => {
    const me = (cookie: string) => call(srv.url, 'GET', '/auth/me', { headers: { cookie } });
    for (const refused of [
      { origin: EVIL, token: true },
      { origin: ALLOWED, token: false },
    ]) {
      for (const [method, path, body] of [
        ['POST', '/auth/logout'],
        ['POST', '/auth/logout-all'],
        ['POST', '/auth/password', { current_password: 'x', new_password: 'y' }],
        ['DELETE', '/auth/sessions/'],
      ] as const) {
        const s = await sessionCookieLogin();
        const headers: Record<string, string> = { cookie: s.cookie, origin: refused.origin };
        if (refused.token) headers['x-csrf-token'] = s.csrf;
        srv.clock.now += 20 * 60_000;
        const at = path.endsWith('/') ? `${path}${s.sid}` : path;
        const res = await call(srv.url, method, at, { headers, body });
        assert.equal(res.body.error, 'csrf_failed', `${method} ${path}`);
        srv.clock.now += 20 * 60_000;
        assert.equal((await me(s.cookie)).status, 401, `${method} ${path} from ${refused.origin}`);
      }
    }
  });

  it('a refused cookie refresh leaves the session cookie beside it to idle out', async () => {
    const me = (cookie: string) => call(srv.url, 'GET', '/auth/me', { headers: { cookie } });
    for (const origin of [EVIL, ALLOWED]) {
      // A session-mode sign-in beside a token-mode app's login in the same browser.
      const { username, login: signIn } = await registerAndLogin(
        srv.url,
        { mode: 'session', delivery: 'cookie' },
        { origin: ALLOWED },
      );
      const sessionCookie = `tessera_session=${signIn.cookies.tessera_session!.value}`;
      const app = await call(srv.url, 'POST', '/auth/login', {
        headers: { origin: ALLOWED, cookie: sessionCookie },
        body: { username, password: PASSWORD, mode: 'token', delivery: 'cookie' },
      });
      assert.equal(app.status, 200);
      const both = `${sessionCookie}; tessera_refresh=${app.cookies.tessera_refresh!.value}`;
      srv.clock.now += 20 * 60_000;
      const res = await call(srv.url, 'POST', '/auth/refresh', {
        headers: { origin, cookie: both, 'x-csrf-token': signIn.body.csrf_token },
      });
      srv.clock.now += 20 * 60_000;
      if (origin === EVIL) {
        assert.equal(res.body.error, 'csrf_failed');
        assert.equal((await me(sessionCookie)).status, 401, 'the refused refresh kept it alive');
      } else {
        assert.equal(res.status, 200, 'a refresh that passes still moves it on');
        assert.equal((await me(sessionCookie)).status, 200);
      }
    }
  });

  it('a cookie read another origin sent leaves the session to idle out; one from this site moves it on', async () => {
    const me = (headers: Record<string, string>) => call(srv.url, 'GET', '/auth/me', { headers });
    const foreigns: Record<string, string>[] = [
      { origin: EVIL },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const foreign of foreigns) {
      const s = await sessionCookieLogin();
      srv.clock.now += 20 * 60_000;
      assert.equal((await me({ cookie: s.cookie, ...foreign })).status, 200, 'reads still answer');
      const csrf = await call(srv.url, 'GET', '/auth/csrf', { headers: { cookie: s.cookie, ...foreign } });
      assert.equal(csrf.status, 200);
      srv.clock.now += 20 * 60_000;
      assert.equal((await me({ cookie: s.cookie })).status, 401, JSON.stringify(foreign));
    }
    const owns: Record<string, string>[] = [{ origin: ALLOWED }, { 'sec-fetch-site': 'same-origin' }, {}];
    for (const own of owns) {
      const s = await sessionCookieLogin();
      srv.clock.now += 20 * 60_000;
      assert.equal((await me({ cookie: s.cookie, ...own })).status, 200);
      srv.clock.now += 20 * 60_000;
      assert.equal((await me({ cookie: s.cookie })).status, 200, JSON.stringify(own));
    }
  });

  it('a top-level navigation from another site moves the session on; a frame it loads does not', async () => {
    // fetch sets Sec-Fetch-Mode itself, so these requests go in through Fastify's inject.
    const get = (cookie: string, dest: string) =>
      srv.app.fastify.inject({
        method: 'GET',
        url: '/auth/me',
        headers: {
          cookie,
          'sec-fetch-site': 'cross-site',
          'sec-fetch-mode': 'navigate',
          'sec-fetch-dest': dest,
        },
      });
    for (const [dest, moves] of [
      ['document', true],
      ['iframe', false],
    ] as const) {
      const s = await sessionCookieLogin();
      srv.clock.now += 20 * 60_000;
      assert.equal((await get(s.cookie, dest)).statusCode, 200);
      srv.clock.now += 20 * 60_000;
      const after = await call(srv.url, 'GET', '/auth/me', { headers: { cookie: s.cookie } });
      assert.equal(after.status, moves ? 200 : 401, dest);
    }
  });

  it('Bearer requests need no CSRF token', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'session', delivery: 'header' });
    const res = await call(srv.url, 'POST', '/auth/logout', {
      headers: { authorization: `Bearer ${login.body.session_token}`, origin: EVIL },
    });
    assert.equal(res.status, 204);
  });

  it('the cookie-delivered refresh needs the Origin and CSRF token of its family', async () => {
    const { login } = await registerAndLogin(
      srv.url,
      { mode: 'token', delivery: 'cookie' },
      { origin: ALLOWED },
    );
    const cookie = `tessera_refresh=${login.cookies.tessera_refresh!.value}`;
    const noCsrf = await call(srv.url, 'POST', '/auth/refresh', { headers: { cookie, origin: ALLOWED } });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.body.error, 'csrf_failed');
    const evil = await call(srv.url, 'POST', '/auth/refresh', {
      headers: { cookie, origin: EVIL, 'x-csrf-token': login.body.csrf_token },
    });
    assert.equal(evil.status, 403);
    const csrf = await call(srv.url, 'GET', '/auth/csrf', { headers: { cookie, origin: ALLOWED } });
    assert.equal(csrf.body.csrf_token, login.body.csrf_token);
    const ok = await call(srv.url, 'POST', '/auth/refresh', {
      headers: { cookie, origin: ALLOWED, 'x-csrf-token': login.body.csrf_token },
    });
    assert.equal(ok.status, 200);
    assert.ok(ok.body.access_token && !ok.body.refresh_token, 'the refresh token stays in its cookie');
    assert.ok(
      ok.cookies.tessera_refresh && ok.cookies.tessera_refresh.value !== login.cookies.tessera_refresh!.value,
    );
    // logout with only the refresh cookie (a reloaded page without its access token)
    const next = `tessera_refresh=${ok.cookies.tessera_refresh.value}`;
    const out = await call(srv.url, 'POST', '/auth/logout', {
      headers: { cookie: next, origin: ALLOWED, 'x-csrf-token': ok.body.csrf_token },
    });
    assert.equal(out.status, 204);
    assert.equal(
      (
        await call(srv.url, 'GET', '/auth/me', {
          headers: { authorization: `Bearer ${ok.body.access_token}` },
        })
      ).status,
      401,
    );
  });

  it('a disallowed origin cannot sign a browser in with cookies (login CSRF)', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const res = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: 'correct horse battery staple' },
      headers: { origin: EVIL },
    });
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'csrf_failed');
    assert.deepEqual(res.cookies, {});
  });

  it('only JSON reaches a handler: a form or text post gets 415', async () => {
    const s = await sessionCookieLogin();
    for (const type of [
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=x',
    ]) {
      const res = await call(srv.url, 'POST', '/auth/logout-all', {
        rawBody: 'a=b',
        headers: { cookie: s.cookie, 'content-type': type, origin: ALLOWED, 'x-csrf-token': s.csrf },
      });
      assert.equal(res.status, 415, type);
      assert.equal(res.body.error, 'unsupported_media_type');
    }
    assert.equal((await call(srv.url, 'GET', '/auth/me', { headers: { cookie: s.cookie } })).status, 200);
  });

  it('GET never changes state: GET on write routes is 404', async () => {
    for (const path of ['/auth/logout', '/auth/logout-all', '/auth/password', '/auth/login']) {
      const res = await call(srv.url, 'GET', path);
      assert.equal(res.status, 404, path);
    }
  });
});

describe('CORS', () => {
  it('reflects an allowed origin with credentials, and gives a disallowed one nothing', async () => {
    const ok = await call(srv.url, 'GET', '/auth/me', { headers: { origin: ALLOWED } });
    assert.equal(ok.headers.get('access-control-allow-origin'), ALLOWED);
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    assert.match(ok.headers.get('vary') ?? '', /Origin/);
    for (const origin of [EVIL, 'null', `${ALLOWED}.evil.example`, 'http://app.example', `${ALLOWED}:8443`]) {
      const res = await call(srv.url, 'GET', '/auth/me', { headers: { origin } });
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, origin);
    }
  });

  it('answers preflight for allowed origins only, never with *', async () => {
    const pre = await call(srv.url, 'OPTIONS', '/auth/login', {
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-csrf-token',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), ALLOWED);
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /X-CSRF-Token/);
    const evil = await call(srv.url, 'OPTIONS', '/auth/login', {
      headers: { origin: EVIL, 'access-control-request-method': 'POST' },
    });
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    assert.equal(evil.headers.get('access-control-allow-methods'), null);
  });
});

describe('secure cookies', () => {
  it('use the __Host- prefix, Secure, HttpOnly, SameSite and no Domain when the issuer is https', async () => {
    const secure = await startTestServer({ secureCookies: true, sameSite: 'strict', corsOrigins: [ALLOWED] });
    try {
      const { login } = await registerAndLogin(
        secure.url,
        { mode: 'session', delivery: 'cookie' },
        { origin: ALLOWED },
      );
      const cookie = login.cookies['__Host-tessera_session'];
      assert.ok(cookie, JSON.stringify(login.cookies));
      const attrs = cookie.attributes.map((a) => a.toLowerCase());
      for (const a of ['secure', 'httponly', 'samesite=strict', 'path=/']) assert.ok(attrs.includes(a), a);
      assert.ok(!attrs.some((a) => a.startsWith('domain')));
      const tokenLogin = await call(secure.url, 'POST', '/auth/login', {
        body: {
          username: (await registerAndLogin(secure.url, { mode: 'token', delivery: 'header' })).username,
          password: 'correct horse battery staple',
          delivery: 'cookie',
        },
        headers: { origin: ALLOWED },
      });
      assert.ok(
        tokenLogin.cookies['__Host-tessera_refresh']?.attributes
          .map((a) => a.toLowerCase())
          .includes('secure'),
      );
    } finally {
      await secure.close();
    }
  });
});
