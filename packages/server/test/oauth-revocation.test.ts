// OAuth grants and tokens end with the user's sessions: "sign out everywhere", a password change
// and a disabled account end them (a setting keeps them for the first two), enabling the account
// again revives nothing, and introspection and userinfo honour every entry of the revocation feed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, PASSWORD, registerAndLogin } from './helpers.js';
import {
  authorize,
  basic,
  form,
  type OAuthFixture,
  pkce,
  signIn,
  startOAuthServer,
  WEB_REDIRECT,
  webAppTokens,
} from './oauth-helpers.js';

let f: OAuthFixture;
let kept: OAuthFixture;
before(async () => {
  f = await startOAuthServer();
  kept = await startOAuthServer({ oauthKeepGrants: true });
});
after(async () => {
  await f?.srv.close();
  await kept?.srv.close();
});

interface User {
  cookie: string;
  csrf: string;
  id: string;
}

async function user(fx: OAuthFixture): Promise<User> {
  const { cookie, csrf } = await signIn(fx.srv);
  const me = await call(fx.srv.url, 'GET', '/auth/me', { headers: { cookie } });
  return { cookie, csrf, id: me.body.user.id };
}

/** The web app's tokens for `who`, through consent and the code grant. */
async function grant(fx: OAuthFixture, who: User) {
  const body = await webAppTokens(fx, who.cookie);
  return { access: body.access_token as string, refresh: body.refresh_token as string };
}

async function active(fx: OAuthFixture, token: string): Promise<boolean> {
  const res = await form(
    fx.srv,
    '/oauth/introspect',
    { token },
    basic(fx.web.client.client_id, fx.web.secret),
  );
  assert.equal(res.status, 200);
  return res.body.active;
}

async function userinfo(fx: OAuthFixture, token: string): Promise<number> {
  return (await call(fx.srv.url, 'GET', '/oauth/userinfo', { headers: { authorization: `Bearer ${token}` } }))
    .status;
}

async function refresh(fx: OAuthFixture, token: string) {
  return form(
    fx.srv,
    '/oauth/token',
    { grant_type: 'refresh_token', refresh_token: token },
    basic(fx.web.client.client_id, fx.web.secret),
  );
}

/** Everything issued before now, one second back: the feed's cut-offs are whole seconds. */
function later(fx: OAuthFixture): void {
  fx.srv.clock.now += 1500;
}

function writeHeaders(fx: OAuthFixture, who: User): Record<string, string> {
  return { cookie: who.cookie, origin: fx.srv.origin, 'x-csrf-token': who.csrf };
}

describe('OAuth grants end with the sessions', () => {
  it('sign out everywhere ends them: refresh, introspection and userinfo all refuse', async () => {
    const who = await user(f);
    const t = await grant(f, who);
    assert.equal(await active(f, t.access), true);
    assert.equal(await userinfo(f, t.access), 200);
    later(f);
    const out = await call(f.srv.url, 'POST', '/auth/logout-all', {
      body: {},
      headers: writeHeaders(f, who),
    });
    assert.equal(out.status, 204, JSON.stringify(out.body));
    assert.equal(await active(f, t.access), false);
    assert.equal(await active(f, t.refresh), false);
    assert.equal(await userinfo(f, t.access), 401);
    assert.equal((await refresh(f, t.refresh)).body.error, 'invalid_grant');
    assert.deepEqual((await f.srv.app.fastify.oauth.listUserGrants(who.id)).length, 0);
  });

  it('a password change ends them', async () => {
    const who = await user(f);
    const t = await grant(f, who);
    later(f);
    const changed = await call(f.srv.url, 'POST', '/auth/password', {
      body: { current_password: PASSWORD, new_password: 'another long passphrase 42' },
      headers: writeHeaders(f, who),
    });
    assert.equal(changed.status, 204, JSON.stringify(changed.body));
    assert.equal(await active(f, t.refresh), false);
    assert.equal(await active(f, t.access), false);
    assert.equal((await refresh(f, t.refresh)).body.error, 'invalid_grant');
  });

  it('with oauthKeepGrants they survive sign out everywhere (access tokens still meet the cut-off)', async () => {
    const who = await user(kept);
    const t = await grant(kept, who);
    later(kept);
    const out = await call(kept.srv.url, 'POST', '/auth/logout-all', {
      body: {},
      headers: writeHeaders(kept, who),
    });
    assert.equal(out.status, 204);
    // The feed's user-wide cut-off still ends the access tokens issued before it, here as at APIs.
    assert.equal(await active(kept, t.access), false);
    later(kept);
    const next = await refresh(kept, t.refresh);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(await active(kept, next.body.access_token), true);
  });

  it('disable then enable revives neither OAuth nor first-party tokens issued before', async () => {
    const who = await user(f);
    const t = await grant(f, who);
    const { login } = await registerAndLogin(f.srv.url, { mode: 'token', delivery: 'header' });
    const me = await call(f.srv.url, 'GET', '/auth/me', {
      headers: { authorization: `Bearer ${login.body.access_token}` },
    });
    const firstParty = { id: me.body.user.id as string, access: login.body.access_token as string };
    later(f);
    for (const id of [who.id, firstParty.id]) assert.equal(await f.srv.app.auth.setDisabled(id, true), true);
    for (const id of [who.id, firstParty.id]) assert.equal(await f.srv.app.auth.setDisabled(id, false), true);
    later(f);
    assert.equal(await active(f, t.access), false);
    assert.equal(await active(f, t.refresh), false);
    assert.equal(await userinfo(f, t.access), 401);
    assert.equal((await refresh(f, t.refresh)).body.error, 'invalid_grant');
    const again = await call(f.srv.url, 'POST', '/auth/refresh', {
      body: { refresh_token: login.body.refresh_token },
    });
    assert.equal(again.status, 401);
    const meAgain = await call(f.srv.url, 'GET', '/auth/me', {
      headers: { authorization: `Bearer ${firstParty.access}` },
    });
    assert.equal(meAgain.status, 401);
  });
});

describe('introspection and userinfo honour the revocation feed', () => {
  it('a user-wide not_before revokes the access tokens issued before it', async () => {
    const who = await user(f);
    const t = await grant(f, who);
    later(f);
    // Recorded by any instance or tool (the grant itself stays live).
    await f.srv.app.revocations.revokeUser(who.id, 'logout_all', f.srv.clock.now);
    assert.equal(await active(f, t.access), false);
    assert.equal(await userinfo(f, t.access), 401);
    later(f);
    const next = await refresh(f, t.refresh);
    assert.equal(next.status, 200);
    assert.equal(await active(f, next.body.access_token), true, 'issued after the cut-off');
    assert.equal(await userinfo(f, next.body.access_token), 200);
  });

  it('a session entry naming the grant revokes its tokens', async () => {
    const who = await user(f);
    const t = await grant(f, who);
    const sid = JSON.parse(Buffer.from(t.access.split('.')[1]!, 'base64url').toString()).sid as string;
    await f.srv.app.revocations.revokeSessions([sid], 'test', f.srv.clock.now);
    assert.equal(await active(f, t.access), false);
    assert.equal(await active(f, t.refresh), false);
    assert.equal(await userinfo(f, t.access), 401);
  });
});

describe('OAuth security events are in the audit trail', () => {
  const types = async (userId?: string) =>
    (await f.srv.app.stores.audit.listAuditEvents({ userId, limit: 100 })).map((e) => e.type);

  it('consent, code replay, refresh reuse and grant revocation', async () => {
    const who = await user(f);
    const { verifier, challenge } = await pkce();
    const back = await authorize(f.srv, who.cookie, {
      client_id: f.web.client.client_id,
      redirect_uri: WEB_REDIRECT,
      response_type: 'code',
      scope: 'api offline_access',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const redeem = () =>
      form(
        f.srv,
        '/oauth/token',
        {
          grant_type: 'authorization_code',
          code: back.searchParams.get('code')!,
          redirect_uri: WEB_REDIRECT,
          code_verifier: verifier,
        },
        basic(f.web.client.client_id, f.web.secret),
      );
    assert.equal((await redeem()).status, 200);
    assert.ok((await types(who.id)).includes('oauth_consent'));
    assert.equal((await redeem()).body.error, 'invalid_grant');
    const afterReplay = await types(who.id);
    assert.ok(afterReplay.includes('oauth_code_replay'));
    assert.ok(afterReplay.includes('oauth_grant_revoked'));

    const t = await grant(f, who);
    assert.equal((await refresh(f, t.refresh)).status, 200);
    f.srv.clock.now += 60_000;
    assert.equal((await refresh(f, t.refresh)).body.error, 'invalid_grant');
    assert.ok((await types(who.id)).includes('oauth_refresh_reuse'));
  });

  it('clients added and removed', async () => {
    const { client } = await f.srv.app.fastify.oauth.addClient({
      name: 'Audited',
      type: 'confidential',
      redirectUris: ['https://audited.example/cb'],
      scopes: ['api'],
    });
    assert.equal(await f.srv.app.fastify.oauth.removeClient(client.id), true);
    const events = await f.srv.app.stores.audit.listAuditEvents({ limit: 100 });
    for (const type of ['oauth_client_added', 'oauth_client_removed'] as const) {
      assert.ok(
        events.some((e) => e.type === type && e.detail === `client ${client.id}`),
        type,
      );
    }
  });
});

describe('OAuth refresh grace', () => {
  it('a retry within refreshGraceSeconds gets the same successor; a reuse after it ends the grant', async () => {
    const who = await user(f);
    const t = await grant(f, who);
    const first = await refresh(f, t.refresh);
    assert.equal(first.status, 200);
    f.srv.clock.now += 1000;
    const retry = await refresh(f, t.refresh);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.refresh_token, first.body.refresh_token);
    assert.equal(await active(f, first.body.refresh_token), true, 'the grant is still live');
    f.srv.clock.now += f.srv.config.refreshGraceSeconds * 1000;
    assert.equal((await refresh(f, t.refresh)).body.error, 'invalid_grant');
    assert.equal(await active(f, first.body.refresh_token), false);
  });
});

describe('OAuth refresh chains', () => {
  const DAY = 86_400_000;
  // Its own server: these tests move its clock by weeks.
  let fx: OAuthFixture;
  before(async () => {
    fx = await startOAuthServer();
  });
  after(async () => {
    await fx?.srv.close();
  });

  it('a chain ends at the absolute refresh lifetime however often it is rotated', async () => {
    const t = await grant(fx, await user(fx));
    const absolute = fx.srv.config.refreshAbsoluteTtl * 1000;
    const start = fx.srv.clock.now;
    let token = t.refresh;
    while (fx.srv.clock.now + 6 * DAY < start + absolute) {
      fx.srv.clock.now += 6 * DAY; // within the idle lifetime (7 days) every time
      const next = await refresh(fx, token);
      assert.equal(next.status, 200, `day ${(fx.srv.clock.now - start) / DAY}`);
      token = next.body.refresh_token;
    }
    fx.srv.clock.now = start + absolute;
    const over = await refresh(fx, token);
    assert.equal(over.status, 400);
    assert.equal(over.body.error, 'invalid_grant');
  });

  it('a spent token replayed after upkeep has pruned, weeks later, is still reuse: the thief’s chain ends', async () => {
    const t = await grant(fx, await user(fx));
    const thief = await refresh(fx, t.refresh);
    assert.equal(thief.status, 200);
    fx.srv.clock.now += 6 * DAY;
    const kept = await refresh(fx, thief.body.refresh_token);
    assert.equal(kept.status, 200);
    fx.srv.clock.now += 3 * DAY; // the first token expired two days ago
    await fx.srv.tessera.oauth!.store.prune(fx.srv.clock.now);
    const late = await refresh(fx, t.refresh);
    assert.equal(late.body.error, 'invalid_grant');
    const after = await refresh(fx, kept.body.refresh_token);
    assert.equal(after.status, 400, 'the grant was revoked as reuse');
    assert.equal(after.body.error, 'invalid_grant');
  });
});
