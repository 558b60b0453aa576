// Which tokens a first-party API takes: the account server's own user tokens, and OAuth tokens
// only when the API opts in to their resource. Tokens of third-party apps (openid only) and of
// machines (client credentials) are refused by the example API and by the README's recipe.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { call, registerAndLogin } from '../../../packages/server/test/helpers.js';
import {
  API_RESOURCE,
  addClient,
  authorize,
  insecure,
  type OAuthFixture,
  pkce,
  signIn,
  startOAuthServer,
  WEB_REDIRECT,
} from '../../../packages/server/test/oauth-helpers.js';
import { createVerifier, type Verifier, VerifyError } from '../../../packages/verify/src/index.js';
import { type ApiServer, startApiServer } from '../server.js';

let f: OAuthFixture;
let firstParty: ApiServer;
let optedIn: ApiServer;
let recipe: Verifier;

before(async () => {
  f = await startOAuthServer();
  const issuer = f.srv.config.issuer;
  firstParty = await startApiServer({ issuer, port: 0, dpop: false });
  optedIn = await startApiServer({ issuer, audience: API_RESOURCE, port: 0, dpop: false });
  // README, "How an API server trusts the tokens".
  recipe = createVerifier({
    issuer,
    audience: 'tessera',
    requiredScopes: ['api'],
    jwks: { url: `${issuer}/.well-known/jwks.json` },
  });
});
after(async () => {
  await firstParty?.close();
  await optedIn?.close();
  await f?.srv.close();
});

async function hello(api: ApiServer, token: string) {
  const res = await fetch(`${api.url}/api/hello`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { error?: string; sub?: string } };
}

async function recipeRefuses(token: string): Promise<string> {
  try {
    await recipe.verify(token);
  } catch (err) {
    if (err instanceof VerifyError) return err.code;
    throw err;
  }
  throw new Error('the recipe verifier accepted the token');
}

/** A user's consent to the web app, then the code redeemed (with `resource` when given). */
async function webToken(scope: string, resource?: string): Promise<string> {
  const { cookie } = await signIn(f.srv);
  const { verifier, challenge } = await pkce();
  const back = await authorize(f.srv, cookie, {
    client_id: f.web.client.client_id,
    redirect_uri: WEB_REDIRECT,
    response_type: 'code',
    scope,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const params = oauth.validateAuthResponse(f.as, f.web.client, back, oauth.expectNoState);
  const response = await oauth.authorizationCodeGrantRequest(
    f.as,
    f.web.client,
    f.web.auth,
    params,
    WEB_REDIRECT,
    verifier,
    { ...insecure, ...(resource ? { additionalParameters: { resource } } : {}) },
  );
  const tokens = await oauth.processAuthorizationCodeResponse(f.as, f.web.client, response, {
    requireIdToken: scope.includes('openid'),
    expectedNonce: oauth.expectNoNonce,
  });
  return tokens.access_token;
}

async function machineToken(scope: string, resource?: string): Promise<string> {
  const res = await oauth.clientCredentialsGrantRequest(
    f.as,
    f.service.client,
    f.service.auth,
    { scope, ...(resource ? { resource } : {}) },
    insecure,
  );
  return (await oauth.processClientCredentialsResponse(f.as, f.service.client, res)).access_token;
}

describe('first-party APIs and OAuth tokens', () => {
  test('a first-party user token passes the example API and the recipe', async () => {
    const { login } = await registerAndLogin(f.srv.url, { mode: 'token', delivery: 'header' });
    const token = login.body.access_token as string;
    const r = await hello(firstParty, token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await recipe.verify(token)).scope, 'api');
  });

  test("a third-party app's openid-only token is refused", async () => {
    const token = await webToken('openid');
    const r = await hello(firstParty, token);
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_audience');
    assert.equal(await recipeRefuses(token), 'invalid_audience');
  });

  test('a third-party token with scope api but no resource is refused too', async () => {
    const token = await webToken('api');
    assert.equal((await hello(firstParty, token)).status, 401);
    assert.equal(await recipeRefuses(token), 'invalid_audience');
  });

  test('a client-credentials token is refused', async () => {
    const token = await machineToken('api');
    const r = await hello(firstParty, token);
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_audience');
    assert.equal(await recipeRefuses(token), 'invalid_audience');
  });

  test('an API that opts in to its resource takes user-consented tokens for it, with the scope it needs', async () => {
    const token = await webToken('api', API_RESOURCE);
    const r = await hello(optedIn, token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // The same token is still refused by first-party APIs.
    assert.equal((await hello(firstParty, token)).status, 401);
    const openidOnly = await webToken('openid', API_RESOURCE);
    const refused = await hello(optedIn, openidOnly);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, 'insufficient_scope');
  });

  test('the token endpoint refuses a resource the client is not registered for', async () => {
    for (const resource of ['https://other.example', 'tessera']) {
      const res = await oauth.clientCredentialsGrantRequest(
        f.as,
        f.service.client,
        f.service.auth,
        { scope: 'api', resource },
        insecure,
      );
      await assert.rejects(
        oauth.processClientCredentialsResponse(f.as, f.service.client, res),
        (err: unknown) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_target',
      );
    }
  });

  test('no client may register the first-party audience as a resource', async () => {
    await assert.rejects(
      addClient(f.srv, {
        name: 'Sneaky',
        type: 'confidential',
        redirectUris: [],
        grantTypes: ['client_credentials'],
        scopes: ['api'],
        resources: [f.srv.config.audience],
      }),
      /resource "tessera"/,
    );
  });

  test("a machine's sub never equals a user's, even when its client id is a user's id", async () => {
    const { login } = await registerAndLogin(f.srv.url, { mode: 'token', delivery: 'header' });
    const me = await call(f.srv.url, 'GET', '/auth/me', {
      headers: { authorization: `Bearer ${login.body.access_token}` },
    });
    const userId = me.body.user.id as string;
    assert.ok(userId);
    const twin = await addClient(f.srv, {
      id: userId,
      name: 'Twin',
      type: 'confidential',
      authMethod: 'client_secret_post',
      redirectUris: [],
      grantTypes: ['client_credentials'],
      scopes: ['api'],
      resources: [API_RESOURCE],
    });
    const client = { client_id: userId };
    const res = await oauth.clientCredentialsGrantRequest(
      f.as,
      client,
      oauth.ClientSecretPost(twin.secret!),
      { scope: 'api', resource: API_RESOURCE },
      insecure,
    );
    const token = (await oauth.processClientCredentialsResponse(f.as, client, res)).access_token;
    const r = await hello(optedIn, token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.sub, `client:${userId}`);
    assert.notEqual(r.body.sub, userId);
  });
});
