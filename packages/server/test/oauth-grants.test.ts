// Users see and revoke the grants they gave (/auth/grants); admins manage clients over HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call } from './helpers.js';
import {
  basic,
  form,
  type OAuthFixture,
  pkce,
  signIn,
  startOAuthServer,
  WEB_REDIRECT,
  webAppTokens,
} from './oauth-helpers.js';

const ADMIN = 'admin-token-for-tests-0123456789abcdef';

let f: OAuthFixture;
before(async () => {
  f = await startOAuthServer({ adminToken: ADMIN });
});
after(async () => {
  await f.srv.close();
});

function grantTokens(cookie: string) {
  return webAppTokens(f, cookie);
}

describe('GET /auth/grants, DELETE /auth/grants/:id', () => {
  it('lists the grants a user gave and revokes one, killing its tokens', async () => {
    const alice = await signIn(f.srv);
    const tokens = await grantTokens(alice.cookie);
    const list = await call(f.srv.url, 'GET', '/auth/grants', { headers: { cookie: alice.cookie } });
    assert.equal(list.status, 200);
    assert.equal(list.body.grants.length, 1);
    const grant = list.body.grants[0];
    assert.equal(grant.client_id, f.web.client.client_id);
    assert.equal(grant.client_name, 'Web App');
    assert.deepEqual(grant.scope.split(' ').sort(), ['api', 'offline_access', 'openid']);

    // Someone else cannot see or revoke it.
    const bob = await signIn(f.srv);
    assert.equal(
      (await call(f.srv.url, 'GET', '/auth/grants', { headers: { cookie: bob.cookie } })).body.grants.length,
      0,
    );
    const stolen = await call(f.srv.url, 'DELETE', `/auth/grants/${grant.id}`, {
      headers: { cookie: bob.cookie, origin: f.srv.origin, 'x-csrf-token': bob.csrf },
    });
    assert.equal(stolen.status, 404);

    // A cookie write without CSRF is refused.
    const noCsrf = await call(f.srv.url, 'DELETE', `/auth/grants/${grant.id}`, {
      headers: { cookie: alice.cookie, origin: f.srv.origin },
    });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.body.error, 'csrf_failed');
    // An OAuth access token does not manage grants.
    const viaOAuth = await call(f.srv.url, 'GET', '/auth/grants', {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    assert.equal(viaOAuth.status, 401);

    const del = await call(f.srv.url, 'DELETE', `/auth/grants/${grant.id}`, {
      headers: { cookie: alice.cookie, origin: f.srv.origin, 'x-csrf-token': alice.csrf },
    });
    assert.equal(del.status, 204);
    const after = await call(f.srv.url, 'GET', '/auth/grants', { headers: { cookie: alice.cookie } });
    assert.equal(after.body.grants.length, 0);
    const intro = await form(
      f.srv,
      '/oauth/introspect',
      { token: tokens.access_token },
      basic(f.web.client.client_id, f.web.secret),
    );
    assert.equal(intro.body.active, false);
    const refresh = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      basic(f.web.client.client_id, f.web.secret),
    );
    assert.equal(refresh.body.error, 'invalid_grant');
    const feed = await call(f.srv.url, 'GET', '/auth/revocations');
    assert.ok(feed.body.entries.some((e: { sid?: string }) => e.sid === grant.id));
    // Consent is asked again next time.
    const { challenge } = await pkce();
    const q = new URLSearchParams({
      client_id: f.web.client.client_id,
      redirect_uri: WEB_REDIRECT,
      response_type: 'code',
      scope: 'api',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const page = await fetch(`${f.srv.url}/oauth/authorize?${q}`, {
      redirect: 'manual',
      headers: { cookie: alice.cookie },
    });
    assert.equal(page.status, 200);
  });

  it('works with a Bearer session token, and needs a signed-in caller', async () => {
    assert.equal((await call(f.srv.url, 'GET', '/auth/grants')).status, 401);
    const login = await call(f.srv.url, 'POST', '/auth/register', {
      body: { username: `grants${process.pid}`, password: 'correct horse battery staple' },
    });
    assert.equal(login.status, 201);
    const session = await call(f.srv.url, 'POST', '/auth/login', {
      body: { username: `grants${process.pid}`, password: 'correct horse battery staple', mode: 'token' },
    });
    const res = await call(f.srv.url, 'GET', '/auth/grants', {
      headers: { authorization: `Bearer ${session.body.access_token}` },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.grants, []);
    const bad = await call(f.srv.url, 'DELETE', '/auth/grants/..%2F..', {
      headers: { authorization: `Bearer ${session.body.access_token}` },
    });
    assert.ok(bad.status === 400 || bad.status === 404);
  });
});

describe('client admin API (TESSERA_ADMIN_TOKEN)', () => {
  const admin = { authorization: `Bearer ${ADMIN}` };

  it('needs the admin token', async () => {
    assert.equal((await call(f.srv.url, 'GET', '/oauth/clients')).status, 401);
    assert.equal(
      (await call(f.srv.url, 'GET', '/oauth/clients', { headers: { authorization: 'Bearer wrong' } })).status,
      401,
    );
  });

  it('registers, lists and removes clients; removal revokes their grants', async () => {
    const created = await call(f.srv.url, 'POST', '/oauth/clients', {
      headers: admin,
      body: {
        client_name: 'Admin-made',
        client_type: 'confidential',
        redirect_uris: ['https://made.example/cb'],
        scope: 'api',
        grant_types: ['client_credentials', 'authorization_code'],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.ok(created.body.client_secret);
    const id = created.body.client_id;
    const list = await call(f.srv.url, 'GET', '/oauth/clients', { headers: admin });
    assert.ok(list.body.clients.some((c: { client_id: string }) => c.client_id === id));
    assert.ok(!JSON.stringify(list.body).includes(created.body.client_secret));

    const cc = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'client_credentials', scope: 'api' },
      basic(id, created.body.client_secret),
    );
    assert.equal(cc.status, 200);
    assert.equal((await call(f.srv.url, 'DELETE', `/oauth/clients/${id}`, { headers: admin })).status, 204);
    assert.equal((await call(f.srv.url, 'DELETE', `/oauth/clients/${id}`, { headers: admin })).status, 404);
    const sid = JSON.parse(Buffer.from(cc.body.access_token.split('.')[1], 'base64url').toString()).sid;
    const feed = await call(f.srv.url, 'GET', '/auth/revocations');
    assert.ok(feed.body.entries.some((e: { sid?: string }) => e.sid === sid));
    const again = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'client_credentials' },
      basic(id, created.body.client_secret),
    );
    assert.equal(again.status, 401);
  });

  it('refuses bad registrations with 400', async () => {
    const bodies = [
      { client_name: 'x', client_type: 'confidential', redirect_uris: ['http://evil.example/cb'] },
      { client_name: 'x', client_type: 'public', redirect_uris: ['https://a.example/cb#frag'] },
      { client_name: 'x', client_type: 'public', redirect_uris: ['javascript:alert(1)'] },
      { client_name: 'x', client_type: 'public', grant_types: ['client_credentials'] },
      { client_name: 'x', client_type: 'public', redirect_uris: ['https://a.example/cb'], extra: 1 },
      { client_name: 'x', client_type: 'weird' },
    ];
    for (const body of bodies) {
      const res = await call(f.srv.url, 'POST', '/oauth/clients', { headers: admin, body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request');
    }
  });
});
