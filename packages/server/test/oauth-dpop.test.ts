// DPoP (RFC 9449): proofs at the token endpoint, cnf.jkt in the access token, refresh tokens of
// public clients bound to the key, userinfo with the DPoP scheme, and the proofs refused.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { call } from './helpers.js';
import {
  authorize,
  form,
  insecure,
  type OAuthFixture,
  pkce,
  SPA_REDIRECT,
  signIn,
  startOAuthServer,
} from './oauth-helpers.js';

let f: OAuthFixture;
let cookie: string;
before(async () => {
  f = await startOAuthServer();
  cookie = (await signIn(f.srv)).cookie;
});
after(async () => {
  await f.srv.close();
});

async function spaCode(extra: Record<string, string> = {}) {
  const { verifier, challenge } = await pkce();
  const back = await authorize(f.srv, cookie, {
    client_id: f.spa.client.client_id,
    redirect_uri: SPA_REDIRECT,
    response_type: 'code',
    scope: 'openid api offline_access',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
  return { back, verifier };
}

interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
}

async function proofKey(): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, jwk: await exportJWK(publicKey) };
}

async function proof(
  key: ProofKey,
  over: {
    htm?: string;
    htu?: string;
    iat?: number;
    jti?: string;
    typ?: string;
    jwk?: JWK;
    ath?: string;
  } = {},
): Promise<string> {
  const claims: Record<string, unknown> = {
    htm: over.htm ?? 'POST',
    htu: over.htu ?? `${f.srv.url}/oauth/token`,
    iat: over.iat ?? Math.floor(f.srv.clock.now / 1000),
    jti: over.jti ?? randomUUID(),
  };
  if (over.ath) claims.ath = over.ath;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: over.typ ?? 'dpop+jwt', jwk: over.jwk ?? key.jwk })
    .sign(key.privateKey);
}

describe('DPoP', () => {
  it('binds the tokens of a public client to its key (oauth4webapi as the client)', async () => {
    const keyPair = await oauth.generateKeyPair('ES256');
    const dpop = oauth.DPoP(f.spa.client, keyPair);
    const { back, verifier } = await spaCode();
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
          ...insecure,
        },
      ),
      { requireIdToken: true, expectedNonce: oauth.expectNoNonce },
    );
    assert.equal(tokens.token_type, 'dpop');
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
    const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
    assert.equal(claims.cnf.jkt, await calculateJwkThumbprint(jwk as JWK));

    // userinfo needs the DPoP scheme and a proof with ath.
    const info = await oauth.processUserInfoResponse(
      f.as,
      f.spa.client,
      oauth.skipSubjectCheck,
      await oauth.userInfoRequest(f.as, f.spa.client, tokens.access_token, { DPoP: dpop, ...insecure }),
    );
    assert.equal(info.sub, claims.sub);
    const asBearer = await call(f.srv.url, 'GET', '/oauth/userinfo', {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    assert.equal(asBearer.status, 401);
    assert.equal(asBearer.body.error, 'invalid_token');

    // Refresh with the same key works; with no proof or another key it does not.
    const refreshed = await oauth.processRefreshTokenResponse(
      f.as,
      f.spa.client,
      await oauth.refreshTokenGrantRequest(f.as, f.spa.client, f.spa.auth, tokens.refresh_token!, {
        DPoP: dpop,
        ...insecure,
      }),
    );
    assert.equal(refreshed.token_type, 'dpop');
    const noProof = await form(f.srv, '/oauth/token', {
      grant_type: 'refresh_token',
      refresh_token: refreshed.refresh_token!,
      client_id: f.spa.client.client_id,
    });
    assert.equal(noProof.body.error, 'invalid_dpop_proof');
    const other = await proofKey();
    const otherKey = await form(
      f.srv,
      '/oauth/token',
      {
        grant_type: 'refresh_token',
        refresh_token: refreshed.refresh_token!,
        client_id: f.spa.client.client_id,
      },
      { dpop: await proof(other) },
    );
    assert.equal(otherKey.body.error, 'invalid_dpop_proof');

    // An API server can check the binding (here oauth4webapi's RFC 9068 + DPoP validator).
    const url = 'https://api.example/hello';
    const apiProof = await proof(
      { privateKey: keyPair.privateKey as unknown as CryptoKey, jwk: jwk as JWK },
      {
        htm: 'GET',
        htu: url,
        ath: createHash('sha256').update(refreshed.access_token).digest('base64url'),
      },
    );
    const request = new Request(url, {
      headers: { authorization: `DPoP ${refreshed.access_token}`, dpop: apiProof },
    });
    const validated = await oauth.validateJwtAccessToken(f.as, request, f.srv.url, insecure);
    assert.equal((validated.cnf as { jkt: string }).jkt, claims.cnf.jkt);
  });

  it('a code bound with dpop_jkt needs a proof from that key', async () => {
    const key = await proofKey();
    const jkt = await calculateJwkThumbprint(key.jwk);
    const { back, verifier } = await spaCode({ dpop_jkt: jkt });
    const code = back.searchParams.get('code')!;
    const fields = {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: SPA_REDIRECT,
      client_id: f.spa.client.client_id,
    };
    const other = await form(f.srv, '/oauth/token', fields, { dpop: await proof(await proofKey()) });
    assert.equal(other.body.error, 'invalid_dpop_proof');
    const none = await form(f.srv, '/oauth/token', fields);
    assert.equal(none.body.error, 'invalid_dpop_proof');
    const ok = await form(f.srv, '/oauth/token', fields, { dpop: await proof(key) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.token_type, 'DPoP');
  });

  it('refuses bad proofs with invalid_dpop_proof', async () => {
    const key = await proofKey();
    const now = Math.floor(f.srv.clock.now / 1000);
    const { d: _d, ...pub } = (await exportJWK(
      (
        await generateKeyPair('ES256', { extractable: true })
      ).privateKey,
    )) as JWK;
    const privateJwk = (await exportJWK(
      (
        await generateKeyPair('ES256', { extractable: true })
      ).privateKey,
    )) as JWK;
    const replayed = await proof(key, { jti: 'replayed-jti-0001' });
    const hs = await new SignJWT({
      htm: 'POST',
      htu: `${f.srv.url}/oauth/token`,
      iat: now,
      jti: randomUUID(),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt' })
      .sign(new Uint8Array(32));
    const bad: [string, string][] = [
      ['wrong method', await proof(key, { htm: 'GET' })],
      ['wrong url', await proof(key, { htu: `${f.srv.url}/oauth/other` })],
      ['other host', await proof(key, { htu: 'https://evil.example/oauth/token' })],
      ['user info in htu', await proof(key, { htu: `${f.srv.url.replace('//', '//user:pw@')}/oauth/token` })],
      ['too old', await proof(key, { iat: now - 3600 })],
      ['from the future', await proof(key, { iat: now + 3600 })],
      ['wrong typ', await proof(key, { typ: 'JWT' })],
      ['jwk not the signer', await proof(key, { jwk: pub })],
      ['private key in jwk', await proof(key, { jwk: privateJwk })],
      ['HS256', hs],
      ['not a JWT', 'not-a-jwt'],
      ['two proofs', `${await proof(key)}, ${await proof(key)}`],
    ];
    const cc = async (dpop: string) =>
      form(
        f.srv,
        '/oauth/token',
        {
          grant_type: 'client_credentials',
          client_id: f.service.client.client_id,
          client_secret: f.service.secret,
        },
        { dpop },
      );
    for (const [name, value] of bad) {
      const res = await cc(value);
      assert.equal(res.status, 400, name);
      assert.equal(res.body.error, 'invalid_dpop_proof', name);
    }
    assert.equal((await cc(replayed)).status, 200);
    const again = await cc(replayed);
    assert.equal(again.body.error, 'invalid_dpop_proof', 'a jti is accepted once');
  });
});
