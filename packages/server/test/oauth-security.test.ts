// RFC 9700 (OAuth 2.0 Security BCP) checklist: what the authorization server refuses.
// Every refusal is a 4xx with a stable OAuth error code, never a 500 and never a redirect to
// somewhere that was not registered.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { call, sendableHeader } from './helpers.js';
import {
  authorize,
  basic,
  form,
  formFields,
  get,
  insecure,
  type OAuthFixture,
  pkce,
  postConsent,
  SPA_REDIRECT,
  signIn,
  startOAuthServer,
  WEB_REDIRECT,
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

async function authParams(over: Record<string, string> = {}) {
  const { verifier, challenge } = await pkce();
  return {
    verifier,
    params: {
      client_id: f.web.client.client_id,
      redirect_uri: WEB_REDIRECT,
      response_type: 'code',
      scope: 'api',
      state: 'state-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...over,
    },
  };
}

/** A code for the web client (consent given), and its verifier. */
async function webCode(scope = 'api offline_access') {
  const { verifier, params } = await authParams({ scope });
  const back = await authorize(f.srv, cookie, params);
  return { code: back.searchParams.get('code')!, verifier };
}

const web = () => basic(f.web.client.client_id, f.web.secret);

async function exchange(code: string, verifier: string | undefined, headers = web(), extra = {}) {
  const fields: Record<string, string> = {
    grant_type: 'authorization_code',
    code,
    redirect_uri: WEB_REDIRECT,
    ...extra,
  };
  if (verifier !== undefined) fields.code_verifier = verifier;
  return form(f.srv, '/oauth/token', fields, headers);
}

async function introspect(token: string) {
  return (await form(f.srv, '/oauth/introspect', { token }, web())).body;
}

describe('redirect URIs (RFC 9700 §4.1): exact match, else an error page and no redirect', () => {
  const tricks = [
    'https://app.example/callbackx',
    'https://app.example/callback/',
    'https://app.example/callback/../evil',
    'https://app.example/callback/extra',
    'https://app.example/callback?x=1',
    'https://app.example/callback#frag',
    'https://app.example/callback%23frag',
    'http://app.example/callback',
    'https://app.example:8443/callback',
    'https://app.example:443/callback',
    'https://APP.example/callback',
    'https://app.example/Callback',
    'https://app.example.evil.example/callback',
    'https://evil.example/callback',
    'https://evil.example/?https://app.example/callback',
    'https://user@app.example/callback',
    '//evil.example/callback',
    'javascript:alert(1)',
    'https://app.example/other',
    'https://app.example/other?x=1&y=2',
    SPA_REDIRECT,
  ];
  for (const redirect of tricks) {
    it(`refuses ${redirect}`, async () => {
      const { params } = await authParams({ redirect_uri: redirect });
      const res = await get(f.srv, `/oauth/authorize?${new URLSearchParams(params)}`, cookie);
      assert.equal(res.status, 400);
      assert.equal(res.location, undefined);
      assert.match(res.html, /invalid_request/);
      assert.match(res.headers.get('content-security-policy')!, /default-src 'none'/);
    });
  }

  it('a loopback redirect is matched exactly too (other port or host name)', async () => {
    for (const redirect of ['http://127.0.0.1:5174/cb', 'http://localhost:5173/cb', 'http://[::1]:5173/cb']) {
      const { challenge } = await pkce();
      const q = new URLSearchParams({
        client_id: f.spa.client.client_id,
        redirect_uri: redirect,
        response_type: 'code',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      const res = await get(f.srv, `/oauth/authorize?${q}`, cookie);
      assert.equal(res.status, 400, redirect);
      assert.equal(res.location, undefined);
    }
  });

  it('unknown, missing or repeated client_id / redirect_uri: error page, even with other errors', async () => {
    const { params } = await authParams();
    const cases = [
      { ...params, client_id: 'nope' },
      { ...params, client_id: '' },
      { ...params, client_id: '../../etc/passwd' },
      { ...params, redirect_uri: 'https://evil.example/cb', response_type: 'token' },
    ];
    for (const c of cases) {
      const res = await get(f.srv, `/oauth/authorize?${new URLSearchParams(c)}`, cookie);
      assert.equal(res.status, 400, JSON.stringify(c));
      assert.equal(res.location, undefined);
    }
    const noClient = new URLSearchParams(params);
    noClient.delete('client_id');
    assert.equal((await get(f.srv, `/oauth/authorize?${noClient}`, cookie)).status, 400);
    const twice = new URLSearchParams(params);
    twice.append('redirect_uri', 'https://evil.example/cb');
    const res = await get(f.srv, `/oauth/authorize?${twice}`, cookie);
    assert.equal(res.status, 400);
    assert.equal(res.location, undefined);
    // A client with two registered URIs must name one.
    const missing = new URLSearchParams(params);
    missing.delete('redirect_uri');
    assert.equal((await get(f.srv, `/oauth/authorize?${missing}`, cookie)).status, 400);
  });
});

describe('authorization request errors go back to the registered URI, with state and iss', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['implicit grant', { response_type: 'token' }, 'unsupported_response_type'],
    ['hybrid', { response_type: 'code id_token' }, 'unsupported_response_type'],
    ['no response_type', { response_type: '' }, 'invalid_request'],
    ['no PKCE', { code_challenge: '' }, 'invalid_request'],
    ['PKCE plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['PKCE method missing (plain)', { code_challenge_method: '' }, 'invalid_request'],
    ['PKCE challenge malformed', { code_challenge: 'short' }, 'invalid_request'],
    ['scope not allowed', { scope: 'api admin' }, 'invalid_scope'],
    ['request object', { request: 'eyJ.eyJ.' }, 'request_not_supported'],
    ['request_uri', { request_uri: 'urn:x' }, 'request_uri_not_supported'],
    ['fragment response mode', { response_mode: 'fragment' }, 'invalid_request'],
    ['bad prompt', { prompt: 'select_account' }, 'invalid_request'],
    ['resource indicator', { resource: 'https://elsewhere.example' }, 'invalid_target'],
  ];
  for (const [name, over, error] of cases) {
    it(`${name} → ${error}`, async () => {
      const { params } = await authParams(over);
      const res = await get(f.srv, `/oauth/authorize?${new URLSearchParams(params)}`, cookie);
      assert.equal(res.status, 302);
      const back = new URL(res.location!);
      assert.equal(`${back.origin}${back.pathname}`, WEB_REDIRECT);
      assert.equal(back.searchParams.get('error'), error);
      assert.equal(back.searchParams.get('state'), 'state-1');
      assert.equal(back.searchParams.get('iss'), f.srv.url);
      assert.equal(back.searchParams.get('code'), null);
    });
  }

  it('a client without the authorization_code grant: unauthorized_client', async () => {
    const { challenge } = await pkce();
    // The machine client has no redirect URIs at all, so it gets a page, not a redirect.
    const q = new URLSearchParams({
      client_id: f.service.client.client_id,
      response_type: 'code',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const res = await get(f.srv, `/oauth/authorize?${q}`, cookie);
    assert.equal(res.status, 400);
    assert.equal(res.location, undefined);
  });
});

describe('mix-up defence (RFC 9207)', () => {
  it('every authorization response names the issuer; a client checking iss rejects another', async () => {
    const { params } = await authParams({ state: 'mix' });
    const back = await authorize(f.srv, cookie, params);
    assert.equal(back.searchParams.get('iss'), f.srv.url);
    assert.ok(oauth.validateAuthResponse(f.as, f.web.client, back, 'mix'));
    const forged = new URL(back);
    forged.searchParams.set('iss', 'https://attacker.example');
    assert.throws(() => oauth.validateAuthResponse(f.as, f.web.client, forged, 'mix'));
  });
});

describe('the consent form (CSRF bound to the session)', () => {
  async function consentForm() {
    const { params } = await authParams({ scope: 'openid profile api' });
    const page = await get(
      f.srv,
      `/oauth/authorize?${new URLSearchParams({ ...params, prompt: 'consent' })}`,
      cookie,
    );
    assert.equal(page.status, 200);
    return formFields(page.html);
  }

  it('binds the form to the exact request it showed, and to a time: another PKCE challenge or an old form is refused', async () => {
    const fields = await consentForm();
    const { challenge } = await pkce();
    const alterations: Record<string, string>[] = [{ code_challenge: challenge }, { nonce: 'another-nonce' }];
    for (const altered of alterations) {
      const res = await postConsent(
        f.srv,
        cookie,
        { ...fields, ...altered, decision: 'allow' },
        { origin: f.srv.origin },
      );
      assert.equal(res.status, 403, JSON.stringify(altered));
      assert.equal(res.location, undefined);
    }
    f.srv.clock.now += 601_000;
    const late = await postConsent(f.srv, cookie, { ...fields, decision: 'allow' }, { origin: f.srv.origin });
    assert.equal(late.status, 403, 'ten minutes on, the form has expired');
    const fresh = await consentForm();
    const ok = await postConsent(f.srv, cookie, { ...fresh, decision: 'allow' }, { origin: f.srv.origin });
    assert.equal(ok.status, 303, 'a fresh form works');
    assert.ok(new URL(ok.location!).searchParams.get('code'));
  });

  it('refuses a post without the token, with a wrong token, from another site, or altered', async () => {
    const fields = await consentForm();
    const { csrf_token: _token, ...noToken } = fields;
    const attempts: [Record<string, string>, Record<string, string>][] = [
      [{ ...noToken, decision: 'allow' }, { origin: f.srv.origin }],
      [{ ...fields, csrf_token: 'x'.repeat(43), decision: 'allow' }, { origin: f.srv.origin }],
      [{ ...fields, decision: 'allow' }, { origin: 'https://evil.example' }],
      [{ ...fields, decision: 'allow' }, {}],
      [
        { ...fields, decision: 'allow' },
        { origin: 'null', 'sec-fetch-site': 'cross-site' },
      ],
      [
        { ...fields, scope: 'openid profile api offline_access', decision: 'allow' },
        { origin: f.srv.origin },
      ],
      [{ ...fields, client_id: f.other.client.client_id, decision: 'allow' }, { origin: f.srv.origin }],
    ];
    for (const [body, headers] of attempts) {
      const res = await postConsent(f.srv, cookie, body, headers);
      assert.ok(res.status === 403 || res.status === 400, `${res.status} ${JSON.stringify(headers)}`);
      assert.equal(res.location, undefined);
    }
    // Another user's session cannot use this form.
    const other = await signIn(f.srv);
    const res = await postConsent(f.srv, other.cookie, { ...fields, decision: 'allow' });
    assert.equal(res.status, 403);
    // Same-origin without an Origin header (Sec-Fetch-Site) is fine.
    const ok = await postConsent(
      f.srv,
      cookie,
      { ...fields, decision: 'allow' },
      { 'sec-fetch-site': 'same-origin' },
    );
    assert.equal(ok.status, 303);
    assert.ok(new URL(ok.location!).searchParams.get('code'));
  });

  it('without a session the consent post goes to sign in, not to the client', async () => {
    const fields = await consentForm();
    const res = await postConsent(f.srv, 'tessera_session=nope.nope', { ...fields, decision: 'allow' });
    assert.equal(res.status, 303);
    assert.match(res.location!, /^\/signin\?next=/);
  });
});

describe('token endpoint', () => {
  it('PKCE downgrade: no verifier, a wrong one or a malformed one is refused', async () => {
    const { verifier, params } = await authParams();
    const code = (await authorize(f.srv, cookie, params)).searchParams.get('code')!;
    const none = await exchange(code, undefined);
    assert.equal(none.status, 400);
    assert.equal(none.body.error, 'invalid_request');
    const wrong = await exchange(code, oauth.generateRandomCodeVerifier());
    assert.equal(wrong.body.error, 'invalid_grant');
    const short = await exchange(code, 'abc');
    assert.equal(short.body.error, 'invalid_grant');
    // "plain" downgrade: the challenge itself presented as the verifier.
    const plainChallenge = await exchange(code, params.code_challenge);
    assert.equal(plainChallenge.body.error, 'invalid_grant');
    // The refusals did not burn the code for its rightful owner.
    const ok = await exchange(code, verifier);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('code replay: the second use fails and revokes what the first issued', async () => {
    const { code, verifier } = await webCode();
    const first = await exchange(code, verifier);
    assert.equal(first.status, 200);
    assert.equal((await introspect(first.body.access_token)).active, true);
    const second = await exchange(code, verifier);
    assert.equal(second.status, 400);
    assert.equal(second.body.error, 'invalid_grant');
    assert.equal(second.body.error_description.includes(code), false);
    assert.equal((await introspect(first.body.access_token)).active, false);
    const refresh = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: first.body.refresh_token },
      web(),
    );
    assert.equal(refresh.body.error, 'invalid_grant');
    const sid = JSON.parse(Buffer.from(first.body.access_token.split('.')[1], 'base64url').toString()).sid;
    const feed = await call(f.srv.url, 'GET', '/auth/revocations');
    assert.ok(
      feed.body.entries.some((e: { sid?: string }) => e.sid === sid),
      'the feed carries the grant id',
    );
  });

  it('codes expire after 60 seconds', async () => {
    const { code, verifier } = await webCode();
    f.srv.clock.now += 61_000;
    try {
      const res = await exchange(code, verifier);
      assert.equal(res.body.error, 'invalid_grant');
    } finally {
      f.srv.clock.now -= 61_000;
    }
  });

  it('a code is bound to its client and redirect URI', async () => {
    const { code, verifier } = await webCode();
    const otherClient = await exchange(code, verifier, basic(f.other.client.client_id, f.other.secret));
    assert.equal(otherClient.body.error, 'invalid_grant');
    const otherRedirect = await exchange(code, verifier, web(), {
      redirect_uri: 'https://app.example/other?x=1',
    });
    assert.equal(otherRedirect.body.error, 'invalid_grant');
    const noRedirect = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'authorization_code', code, code_verifier: verifier },
      web(),
    );
    assert.equal(noRedirect.body.error, 'invalid_grant');
    assert.equal((await exchange(code, verifier)).status, 200);
  });

  it('refresh reuse revokes the grant; a refresh token is bound to its client', async () => {
    const { code, verifier } = await webCode();
    const first = (await exchange(code, verifier)).body;
    const rotated = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: first.refresh_token },
      web(),
    );
    assert.equal(rotated.status, 200);
    const foreign = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: rotated.body.refresh_token },
      basic(f.other.client.client_id, f.other.secret),
    );
    assert.equal(foreign.body.error, 'invalid_grant');
    const widen = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: rotated.body.refresh_token, scope: 'api openid' },
      web(),
    );
    assert.equal(widen.body.error, 'invalid_scope');
    // A repeat within the grace window is a retry; after it, a reuse.
    f.srv.clock.now += (f.srv.config.refreshGraceSeconds + 1) * 1000;
    const reuse = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: first.refresh_token },
      web(),
    );
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, 'invalid_grant');
    const after = await form(
      f.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: rotated.body.refresh_token },
      web(),
    );
    assert.equal(after.body.error, 'invalid_grant', 'the whole grant died with the reuse');
    assert.equal((await introspect(rotated.body.access_token)).active, false);
  });

  it('client authentication: wrong secret, wrong method, unknown client → 401 invalid_client + Basic challenge', async () => {
    const { code, verifier } = await webCode();
    const id = f.web.client.client_id;
    const attempts: [Record<string, string>, Record<string, string>][] = [
      [{}, basic(id, 'wrong-secret')],
      [{}, basic('unknown-client', 'x')],
      [{}, { authorization: 'Basic !!!' }],
      [{}, { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` }],
      [{ client_id: id, client_secret: f.web.secret }, {}], // registered for client_secret_basic
      [{ client_id: id }, {}], // a confidential client without its secret
      [{ client_id: f.spa.client.client_id, client_secret: 'x' }, {}], // a public client has no secret
    ];
    for (const [body, headers] of attempts) {
      const res = await exchange(code, verifier, headers, body);
      assert.equal(res.status, 401, JSON.stringify([body, headers]));
      assert.equal(res.body.error, 'invalid_client');
      assert.match(res.headers.get('www-authenticate')!, /^Basic realm=/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
    const twoMethods = await exchange(code, verifier, web(), { client_secret: f.web.secret });
    assert.equal(twoMethods.status, 400);
    assert.equal(twoMethods.body.error, 'invalid_request');
    assert.equal((await exchange(code, verifier)).status, 200, 'none of that burnt the code');
  });

  it('unsupported and malformed requests answer stable codes', async () => {
    const cases: [Record<string, string>, Record<string, string>, number, string][] = [
      [{ grant_type: 'password', username: 'a', password: 'b' }, web(), 400, 'unsupported_grant_type'],
      [{ grant_type: 'implicit' }, web(), 400, 'unsupported_grant_type'],
      [{ grant_type: 'urn:ietf:params:oauth:grant-type:device_code' }, web(), 400, 'unsupported_grant_type'],
      [{}, web(), 400, 'invalid_request'],
      [{ grant_type: 'client_credentials' }, web(), 400, 'unauthorized_client'],
      [
        { grant_type: 'authorization_code', code: 'nope', code_verifier: 'x'.repeat(43) },
        web(),
        400,
        'invalid_grant',
      ],
      [{ grant_type: 'authorization_code', code_verifier: 'x'.repeat(43) }, web(), 400, 'invalid_request'],
      [{ grant_type: 'refresh_token', refresh_token: 'garbage' }, web(), 400, 'invalid_grant'],
      [{ grant_type: 'refresh_token' }, web(), 400, 'invalid_request'],
    ];
    for (const [body, headers, status, error] of cases) {
      const res = await form(f.srv, '/oauth/token', body, headers);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(res.body.error, error, JSON.stringify(body));
      assert.equal(typeof res.body.error_description, 'string');
    }
    const json = await call(f.srv.url, 'POST', '/oauth/token', {
      body: { grant_type: 'client_credentials' },
    });
    assert.equal(json.status, 400);
    assert.equal(json.body.error, 'invalid_request');
    const repeated = await call(f.srv.url, 'POST', '/oauth/token', {
      rawBody: 'grant_type=refresh_token&grant_type=client_credentials',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...web() },
    });
    assert.equal(repeated.body.error, 'invalid_request');
    const empty = await call(f.srv.url, 'POST', '/oauth/token', { headers: web() });
    assert.equal(empty.body.error, 'invalid_request');
  });

  it('public clients cannot use client credentials; introspection needs a confidential client', async () => {
    const cc = await form(f.srv, '/oauth/token', {
      grant_type: 'client_credentials',
      client_id: f.spa.client.client_id,
    });
    assert.equal(cc.body.error, 'unauthorized_client');
    const intro = await form(f.srv, '/oauth/introspect', { token: 'x', client_id: f.spa.client.client_id });
    assert.equal(intro.status, 401);
    assert.equal(intro.body.error, 'invalid_client');
    const noAuth = await form(f.srv, '/oauth/introspect', { token: 'x' });
    assert.equal(noAuth.status, 401);
    const revokeNoToken = await form(f.srv, '/oauth/revoke', {}, web());
    assert.equal(revokeNoToken.body.error, 'invalid_request');
  });

  it('userinfo refuses missing, malformed, revoked and scope-less tokens', async () => {
    const none = await call(f.srv.url, 'GET', '/oauth/userinfo');
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'invalid_token');
    assert.match(none.headers.get('www-authenticate')!, /Bearer/);
    const junk = await call(f.srv.url, 'GET', '/oauth/userinfo', {
      headers: { authorization: 'Bearer a.b.c' },
    });
    assert.equal(junk.status, 401);
    const { code, verifier } = await webCode('api');
    const tokens = (await exchange(code, verifier)).body;
    const noOpenid = await call(f.srv.url, 'GET', '/oauth/userinfo', {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    assert.equal(noOpenid.status, 403);
    assert.equal(noOpenid.body.error, 'insufficient_scope');
    const res = await oauth.clientCredentialsGrantRequest(
      f.as,
      f.service.client,
      f.service.auth,
      { scope: 'api' },
      insecure,
    );
    const cc = await oauth.processClientCredentialsResponse(f.as, f.service.client, res);
    const machine = await call(f.srv.url, 'GET', '/oauth/userinfo', {
      headers: { authorization: `Bearer ${cc.access_token}` },
    });
    assert.equal(machine.status, 401);
  });
});

describe('no input makes a 500', () => {
  it('survives odd values on every endpoint', async () => {
    const odd = [
      '',
      ' ',
      '\u0000',
      '%',
      'é',
      '😀',
      'a'.repeat(5000),
      '../../',
      '{"a":1}',
      'null',
      '[]',
      'a.b',
      'a.b.c',
    ];
    const names = [
      'grant_type',
      'code',
      'code_verifier',
      'redirect_uri',
      'refresh_token',
      'client_id',
      'client_secret',
      'scope',
      'token',
      'token_type_hint',
    ];
    let sent = 0;
    for (const value of odd) {
      for (const path of ['/oauth/token', '/oauth/introspect', '/oauth/revoke']) {
        const fields = Object.fromEntries(names.map((n) => [n, value]));
        const variants: Record<string, string>[] = [{}, web(), { authorization: `Basic ${value}` }];
        for (const headers of variants.filter((h) => sendableHeader(h.authorization ?? ''))) {
          const res = await form(f.srv, path, fields, headers);
          sent++;
          assert.ok(res.status >= 200 && res.status < 500, `${path} ${res.status} ${JSON.stringify(value)}`);
        }
      }
      const q = new URLSearchParams({
        client_id: value,
        redirect_uri: value,
        response_type: value,
        scope: value,
        state: value,
      });
      const a = await get(f.srv, `/oauth/authorize?${q}`, cookie);
      assert.ok(a.status < 500, `authorize ${a.status}`);
      const good = (await authParams({ scope: value, nonce: value, prompt: value, max_age: value })).params;
      const b = await get(f.srv, `/oauth/authorize?${new URLSearchParams(good)}`, cookie);
      assert.ok(b.status < 500, `authorize ${b.status}`);
    }
    assert.ok(sent >= odd.length * 3 * 2, `only ${sent} token-endpoint requests were sent`);
    for (const raw of ['%', '%%%', 'a=%zz', '&&&', '=', 'a'.repeat(20_000)]) {
      const res = await call(f.srv.url, 'POST', '/oauth/token', {
        rawBody: raw,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...web() },
      });
      assert.ok(res.status >= 400 && res.status < 500, `${res.status} for ${raw.slice(0, 10)}`);
    }
    const bad = await get(f.srv, '/oauth/authorize?client_id=%zz');
    assert.ok(bad.status < 500);
  });
});
