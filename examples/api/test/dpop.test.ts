// End to end: a public SPA client gets a DPoP-bound access token from a real in-process Tessera
// (authorization code + PKCE, oauth4webapi as the client with a DPoP key), then calls the example
// API with it. A fresh proof works; no proof, Bearer, a replayed proof or a proof made for another
// URL or method do not.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { freePort } from '../../../packages/server/test/helpers.js';
import {
  API_RESOURCE,
  authorize,
  insecure,
  type OAuthFixture,
  pkce,
  SPA_REDIRECT,
  signIn,
  startOAuthServer,
} from '../../../packages/server/test/oauth-helpers.js';
import { jwkThumbprint } from '../../../packages/verify/src/index.js';
import { type ApiServer, startApiServer } from '../server.js';

let f: OAuthFixture;
let api: ApiServer;
let keyPair: CryptoKeyPair;
let dpop: oauth.DPoPHandle;
let accessToken = '';

before(async () => {
  f = await startOAuthServer();
  // This API opts in to OAuth tokens issued for its resource.
  const port = await freePort();
  api = await startApiServer({
    issuer: f.srv.config.issuer,
    audience: API_RESOURCE,
    port,
    publicUrl: `http://127.0.0.1:${port}`,
  });

  // The SPA: authorization code + PKCE, DPoP key pair held by the client.
  const { cookie } = await signIn(f.srv);
  keyPair = await oauth.generateKeyPair('ES256');
  dpop = oauth.DPoP(f.spa.client, keyPair);
  const { verifier, challenge } = await pkce();
  const back = await authorize(f.srv, cookie, {
    client_id: f.spa.client.client_id,
    redirect_uri: SPA_REDIRECT,
    response_type: 'code',
    scope: 'openid api',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const params = oauth.validateAuthResponse(f.as, f.spa.client, back, oauth.expectNoState);
  const tokens = await oauth.processAuthorizationCodeResponse(
    f.as,
    f.spa.client,
    await oauth.authorizationCodeGrantRequest(
      f.as,
      f.spa.client,
      f.spa.auth,
      params,
      SPA_REDIRECT,
      verifier,
      {
        DPoP: dpop,
        additionalParameters: { resource: API_RESOURCE },
        ...insecure,
      },
    ),
    { requireIdToken: true, expectedNonce: oauth.expectNoNonce },
  );
  assert.equal(tokens.token_type, 'dpop');
  accessToken = tokens.access_token;
});

after(async () => {
  await api?.close();
  await f?.srv.close();
});

interface Answer {
  status: number;
  challenge: string;
  body: { error?: string; sub?: string; scope?: string };
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate') ?? '',
    body: text ? JSON.parse(text) : {},
  };
}

/** A request to the API made by oauth4webapi (fresh DPoP proof with ath), sent for real. */
async function viaClient(path = '/api/hello', method = 'GET'): Promise<Answer> {
  return answer(
    await oauth.protectedResourceRequest(accessToken, method, new URL(path, api.url), undefined, undefined, {
      DPoP: dpop,
      ...insecure,
    }),
  );
}

/**
 * The Authorization and DPoP headers oauth4webapi would send for `method url` (with `handle`'s
 * key), captured without sending anything.
 */
async function headersFor(
  path: string,
  method = 'GET',
  options: { handle?: oauth.DPoPHandle; base?: string } = {},
): Promise<{ authorization: string; dpop: string }> {
  let seen: Record<string, string> | undefined;
  await oauth.protectedResourceRequest(
    accessToken,
    method,
    new URL(path, options.base ?? api.url),
    undefined,
    undefined,
    {
      DPoP: options.handle ?? dpop,
      ...insecure,
      [oauth.customFetch]: async (
        _url: string,
        init: oauth.CustomFetchOptions<string, oauth.ProtectedResourceRequestBody>,
      ) => {
        seen = init.headers;
        return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
      },
    },
  );
  assert.ok(seen?.['authorization'] && seen['dpop']);
  return { authorization: seen['authorization'], dpop: seen['dpop'] };
}

async function hello(headers: Record<string, string>, base = api.url): Promise<Answer> {
  return answer(await fetch(`${base}/api/hello`, { headers }));
}

describe('example API with a DPoP-bound token from Tessera', () => {
  test('the access token is bound to the client key (cnf.jkt)', async () => {
    const claims = JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString());
    const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
    assert.equal(claims.cnf.jkt, jwkThumbprint(jwk as { x: string; y: string }));
  });

  test('GET /api/hello with a fresh proof: 200, every time', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await viaClient();
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(typeof r.body.sub, 'string');
      assert.match(r.body.scope ?? '', /\bapi\b/);
    }
    assert.equal((await viaClient('/api/hello?x=1')).status, 200);
  });

  test('DPoP scheme without a proof: 401 invalid_dpop_proof', async () => {
    const r = await hello({ authorization: `DPoP ${accessToken}` });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'dpop_proof_invalid');
    assert.match(r.challenge, /^DPoP realm="tessera", algs="ES256", error="invalid_dpop_proof"/);
  });

  test('the token as Bearer (with or without a proof): 401 invalid_token', async () => {
    const { dpop: proof } = await headersFor('/api/hello');
    for (const headers of [
      { authorization: `Bearer ${accessToken}`, dpop: proof },
      { authorization: `Bearer ${accessToken}` },
    ] as Record<string, string>[]) {
      const r = await hello(headers);
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'dpop_required');
      assert.match(r.challenge, /^Bearer realm="tessera", error="invalid_token"/);
    }
  });

  test('no credentials at all: 401 with Bearer and DPoP challenges', async () => {
    const r = await hello({});
    assert.equal(r.status, 401);
    assert.equal(r.challenge, 'Bearer realm="tessera", DPoP realm="tessera", algs="ES256"');
  });

  test('a replayed proof: 401 dpop_replayed', async () => {
    const headers = await headersFor('/api/hello');
    assert.match(headers.authorization, /^DPoP /);
    const first = await hello(headers);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const again = await hello(headers);
    assert.equal(again.status, 401);
    assert.equal(again.body.error, 'dpop_replayed');
    assert.match(again.challenge, /error="invalid_dpop_proof"/);
  });

  test('a proof made for another URL or method: 401', async () => {
    for (const [path, method] of [
      ['/api/other', 'GET'],
      ['/healthz', 'GET'],
      ['/api/hello', 'POST'],
      ['/api/hello', 'DELETE'],
    ] as const) {
      const r = await hello(await headersFor(path, method));
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.equal(r.body.error, 'dpop_proof_invalid', `${method} ${path}`);
    }
    // The same server under another host name is another URL too.
    const localhost = await headersFor('/api/hello', 'GET', {
      base: api.url.replace('127.0.0.1', 'localhost'),
    });
    const r = await hello(localhost);
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'dpop_proof_invalid');
  });

  test('a proof from a key other than the bound one: 401', async () => {
    const otherKey = await oauth.generateKeyPair('ES256');
    const otherHandle = oauth.DPoP(f.spa.client, otherKey);
    const wrongKey = await hello(await headersFor('/api/hello', 'GET', { handle: otherHandle }));
    assert.equal(wrongKey.status, 401);
    assert.equal(wrongKey.body.error, 'dpop_binding_mismatch');
  });

  test('with DPoP turned off, the bound token is refused outright', async () => {
    const bearerOnly = await startApiServer({
      issuer: f.srv.config.issuer,
      audience: API_RESOURCE,
      port: 0,
      dpop: false,
    });
    try {
      const r = await hello(await headersFor('/api/hello', 'GET', { base: bearerOnly.url }), bearerOnly.url);
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'token_missing'); // the DPoP scheme is not offered
      assert.equal(r.challenge, 'Bearer realm="tessera"');
      const asBearer = await answer(
        await fetch(`${bearerOnly.url}/api/hello`, { headers: { authorization: `Bearer ${accessToken}` } }),
      );
      assert.equal(asBearer.status, 401);
      assert.equal(asBearer.body.error, 'unsupported_confirmation');
    } finally {
      await bearerOnly.close();
    }
  });

  test('a proof made for another API, sent with that API as Host: 401', async () => {
    const other = 'http://other-api.example.test';
    const headers = await headersFor('/api/hello', 'GET', { base: other });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${api.url}/api/hello`,
        { headers: { ...headers, host: new URL(other).host } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.once('error', reject);
      req.end();
    });
    assert.equal(status, 401);
  });

  test('DPoP on without publicUrl: a TypeError at start', async () => {
    await assert.rejects(
      startApiServer({ issuer: f.srv.config.issuer, audience: f.srv.config.audience, port: 0 }),
      TypeError,
    );
  });

  test('behind a proxy: publicUrl is what the proof must name', async () => {
    const proxied = await startApiServer({
      issuer: f.srv.config.issuer,
      audience: API_RESOURCE,
      port: 0,
      publicUrl: 'https://api.example.test',
    });
    try {
      // What a client addressing https://api.example.test sends; the proxy forwards it here.
      const headers = await headersFor('/api/hello', 'GET', { base: 'https://api.example.test' });
      const ok = await answer(await fetch(`${proxied.url}/api/hello`, { headers }));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      // A proof naming the internal address is refused there.
      const internal = await hello(await headersFor('/api/hello', 'GET', { base: proxied.url }), proxied.url);
      assert.equal(internal.status, 401);
      assert.equal(internal.body.error, 'dpop_proof_invalid');
    } finally {
      await proxied.close();
    }
  });
});
