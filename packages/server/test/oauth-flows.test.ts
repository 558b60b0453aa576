// The OAuth 2 / OIDC flows, driven by oauth4webapi as the client: discovery, authorization code
// with PKCE through the consent page, refresh, introspection, revocation, client credentials,
// userinfo and ID tokens.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { call } from './helpers.js';
import {
  authorize,
  get,
  insecure,
  type OAuthFixture,
  pkce,
  SPA_REDIRECT,
  signIn,
  startOAuthServer,
  WEB_REDIRECT,
} from './oauth-helpers.js';

let f: OAuthFixture;
before(async () => {
  f = await startOAuthServer();
});
after(async () => {
  await f.srv.close();
});

async function codeFlow(
  who: { client: oauth.Client; auth: oauth.ClientAuth },
  redirectUri: string,
  scope: string,
  cookie: string,
) {
  const { verifier, challenge } = await pkce();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const callback = await authorize(f.srv, cookie, {
    client_id: who.client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const params = oauth.validateAuthResponse(f.as, who.client, callback, state);
  const response = await oauth.authorizationCodeGrantRequest(
    f.as,
    who.client,
    who.auth,
    params,
    redirectUri,
    verifier,
    insecure,
  );
  const tokens = await oauth.processAuthorizationCodeResponse(f.as, who.client, response, {
    expectedNonce: scope.includes('openid') ? nonce : oauth.expectNoNonce,
    requireIdToken: scope.includes('openid'),
  });
  return { tokens, callback };
}

describe('discovery', () => {
  it('serves RFC 8414 and OIDC metadata with the same issuer', async () => {
    assert.equal(f.as.issuer, f.srv.url);
    assert.deepEqual(f.as.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(f.as.response_types_supported, ['code']);
    assert.equal(f.as.authorization_response_iss_parameter_supported, true);
    const rfc8414 = await call(f.srv.url, 'GET', '/.well-known/oauth-authorization-server');
    assert.equal(rfc8414.status, 200);
    assert.deepEqual(rfc8414.body, f.as);
    const jwks = await call(f.srv.url, 'GET', new URL(f.as.jwks_uri!).pathname);
    assert.equal(jwks.status, 200);
    assert.ok(jwks.body.keys.length >= 2);
  });
});

describe('authorization code + PKCE', () => {
  it('confidential client: consent page, code with iss, tokens, ID token, userinfo', async () => {
    const { cookie, username } = await signIn(f.srv);
    const scope = 'openid profile offline_access api';
    const { tokens, callback } = await codeFlow(f.web, WEB_REDIRECT, scope, cookie);
    assert.equal(callback.searchParams.get('iss'), f.srv.url);
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.scope, scope);
    assert.ok(tokens.refresh_token, 'offline_access: a refresh token');
    const id = oauth.getValidatedIdTokenClaims(tokens)!;
    assert.equal(id.aud, f.web.client.client_id);
    assert.equal(id.preferred_username, username);
    assert.equal(typeof id.auth_time, 'number');
    assert.equal(decodeProtectedHeader(tokens.id_token!).typ, 'JWT');

    // An RFC 9068 access token, signed with the server's keys; no resource asked, so its audience
    // is this server, never the first-party audience.
    const jwks = createLocalJWKSet((await call(f.srv.url, 'GET', '/.well-known/jwks.json')).body);
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: f.srv.url,
      audience: f.srv.url,
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.client_id, f.web.client.client_id);
    assert.equal(payload.scope, scope);
    assert.equal(payload.sub, id.sub);
    assert.equal(typeof payload.sid, 'string');
    assert.equal(payload.roles, undefined, 'third-party tokens carry no first-party roles');
    const request = new Request('https://api.example/x', {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    const validated = await oauth.validateJwtAccessToken(f.as, request, f.srv.url, insecure);
    assert.equal(validated.client_id, f.web.client.client_id);

    const info = await oauth.processUserInfoResponse(
      f.as,
      f.web.client,
      id.sub,
      await oauth.userInfoRequest(f.as, f.web.client, tokens.access_token, insecure),
    );
    assert.equal(info.preferred_username, username);

    // An OAuth token does not open the first-party account API.
    const me = await call(f.srv.url, 'GET', '/auth/me', {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    assert.equal(me.status, 401);
  });

  it('public client (PKCE, no secret) and remembered consent', async () => {
    const { cookie } = await signIn(f.srv);
    const first = await codeFlow(f.spa, SPA_REDIRECT, 'openid api', cookie);
    assert.ok(first.tokens.access_token);
    assert.equal(first.tokens.refresh_token, undefined, 'no offline_access, no refresh token');
    // Consent is remembered: the second authorization answers at once with a redirect.
    const { challenge } = await pkce();
    const again = await get(
      f.srv,
      `/oauth/authorize?${new URLSearchParams({
        client_id: f.spa.client.client_id,
        redirect_uri: SPA_REDIRECT,
        response_type: 'code',
        scope: 'api',
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })}`,
      cookie,
    );
    assert.equal(again.status, 302);
    assert.ok(new URL(again.location!).searchParams.get('code'));
  });

  it('the consent page is plain HTML without scripts, under a strict CSP', async () => {
    const { cookie } = await signIn(f.srv);
    const { challenge } = await pkce();
    const page = await get(
      f.srv,
      `/oauth/authorize?${new URLSearchParams({
        client_id: f.web.client.client_id,
        redirect_uri: WEB_REDIRECT,
        response_type: 'code',
        scope: 'openid api',
        state: '<script>alert(1)</script>',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })}`,
      cookie,
    );
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    const csp = page.headers.get('content-security-policy')!;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /style-src 'self'/);
    assert.match(csp, /form-action 'self' https:\/\/app\.example/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.doesNotMatch(page.html, /<script/i);
    assert.match(page.html, /Web App/);
    assert.match(page.html, /&lt;script&gt;/);
  });

  it('not signed in: redirects to /signin with next; prompt=none answers login_required', async () => {
    const { challenge } = await pkce();
    const params = {
      client_id: f.web.client.client_id,
      redirect_uri: WEB_REDIRECT,
      response_type: 'code',
      scope: 'api',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    };
    const res = await get(f.srv, `/oauth/authorize?${new URLSearchParams(params)}`);
    assert.equal(res.status, 302);
    const to = new URL(res.location!, f.srv.url);
    assert.equal(to.pathname, '/signin');
    assert.match(to.searchParams.get('next')!, /^\/oauth\/authorize\?/);
    const none = await get(
      f.srv,
      `/oauth/authorize?${new URLSearchParams({ ...params, prompt: 'none', state: 'z' })}`,
    );
    const back = new URL(none.location!);
    assert.equal(back.origin + back.pathname, WEB_REDIRECT);
    assert.equal(back.searchParams.get('error'), 'login_required');
    assert.equal(back.searchParams.get('state'), 'z');
    assert.equal(back.searchParams.get('iss'), f.srv.url);
  });

  it('deny answers access_denied on the redirect URI', async () => {
    const { cookie } = await signIn(f.srv);
    const { challenge } = await pkce();
    const back = await authorize(
      f.srv,
      cookie,
      {
        client_id: f.web.client.client_id,
        redirect_uri: WEB_REDIRECT,
        response_type: 'code',
        scope: 'api',
        state: 'st',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      },
      'deny',
    );
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 'st');
    assert.equal(back.searchParams.get('iss'), f.srv.url);
  });
});

describe('refresh, introspection, revocation', () => {
  it('refresh rotates; introspection sees the tokens; revocation ends the grant', async () => {
    const { cookie } = await signIn(f.srv);
    const { tokens } = await codeFlow(f.web, WEB_REDIRECT, 'api offline_access', cookie);
    const refreshed = await oauth.processRefreshTokenResponse(
      f.as,
      f.web.client,
      await oauth.refreshTokenGrantRequest(f.as, f.web.client, f.web.auth, tokens.refresh_token!, insecure),
    );
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    assert.equal(refreshed.scope, 'api offline_access');

    const introspect = async (token: string) =>
      oauth.processIntrospectionResponse(
        f.as,
        f.web.client,
        await oauth.introspectionRequest(f.as, f.web.client, f.web.auth, token, insecure),
      );
    const at = await introspect(refreshed.access_token);
    assert.equal(at.active, true);
    assert.equal(at.client_id, f.web.client.client_id);
    assert.equal(at.scope, 'api offline_access');
    assert.equal(at.token_type, 'Bearer');
    const rt = await introspect(refreshed.refresh_token!);
    assert.equal(rt.active, true);
    assert.equal((await introspect(tokens.refresh_token!)).active, false, 'the rotated-out token is spent');
    assert.equal((await introspect('not-a-token')).active, false);

    // Another client learns nothing about these tokens.
    const foreign = await oauth.processIntrospectionResponse(
      f.as,
      f.other.client,
      await oauth.introspectionRequest(f.as, f.other.client, f.other.auth, refreshed.access_token, insecure),
    );
    assert.equal(foreign.active, false);

    const cursor = (await call(f.srv.url, 'GET', '/auth/revocations')).body.cursor;
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(f.as, f.web.client, f.web.auth, refreshed.refresh_token!, insecure),
    );
    assert.equal((await introspect(refreshed.access_token)).active, false);
    assert.equal((await introspect(refreshed.refresh_token!)).active, false);
    // The feed names the grant id, which is the access token's sid: API servers drop it at once.
    const feed = await call(f.srv.url, 'GET', `/auth/revocations?after=${cursor}`);
    assert.ok(feed.body.entries.some((e: { sid?: string }) => e.sid === at.sid));
    const again = await oauth.refreshTokenGrantRequest(
      f.as,
      f.web.client,
      f.web.auth,
      refreshed.refresh_token!,
      insecure,
    );
    await assert.rejects(oauth.processRefreshTokenResponse(f.as, f.web.client, again), (err: unknown) => {
      return err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant';
    });
    // Revoking an unknown token is fine too (RFC 7009).
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(f.as, f.web.client, f.web.auth, 'whatever', insecure),
    );
  });

  it('client credentials: a token for the client itself, no refresh token, no user scopes', async () => {
    const res = await oauth.clientCredentialsGrantRequest(
      f.as,
      f.service.client,
      f.service.auth,
      { scope: 'reports' },
      insecure,
    );
    const tokens = await oauth.processClientCredentialsResponse(f.as, f.service.client, res);
    assert.equal(tokens.scope, 'reports');
    assert.equal(tokens.refresh_token, undefined);
    const request = new Request('https://api.example/x', {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    const claims = await oauth.validateJwtAccessToken(f.as, request, f.srv.url, insecure);
    assert.equal(claims.sub, `client:${f.service.client.client_id}`);
    assert.equal(claims.client_id, f.service.client.client_id);
    const bad = await oauth.clientCredentialsGrantRequest(
      f.as,
      f.service.client,
      f.service.auth,
      { scope: 'openid' },
      insecure,
    );
    await assert.rejects(
      oauth.processClientCredentialsResponse(f.as, f.service.client, bad),
      (err: unknown) => {
        return err instanceof oauth.ResponseBodyError && err.error === 'invalid_scope';
      },
    );
  });
});
