// Signing in through upstream providers, driven by HTTP against a real OpenID provider
// (oidc-provider, on this machine) and a small plain-OAuth 2 provider written here.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Provider from 'oidc-provider';
import type { Browser as Chromium } from 'playwright-core';
import { browserSkip, launchChromium, newPage, watchErrors } from '../../client/test/browser-helpers.js';
import {
  call,
  freePort,
  PASSWORD,
  registerAndLogin,
  startTestServer,
  type TestServer,
  uniqueName,
} from './helpers.js';
import { Browser, errorCode } from './http-browser.js';
import { linkToken, outbox } from './mail.js';

interface Upstream {
  issuer: string;
  /** Who signs in at the provider next. */
  account: { id: string };
  close(): Promise<void>;
}

/** oidc-provider with an interaction that signs `account.id` in and consents at once. */
async function startOidcProvider(redirectBase: () => string): Promise<Upstream> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const account = { id: 'alice' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'tessera',
        client_secret: 'oidc-client-secret-0123456789',
        redirect_uris: [`${redirectBase()}/auth/providers/corp/callback`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({
        sub,
        email: `${sub}@example.test`,
        email_verified: true,
        name: `Person ${sub}`,
        preferred_username: sub,
      }),
    }),
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['oidc-provider-cookie-key-0123456789'] },
  });
  const server = http.createServer(async (req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: account.id } },
          {
            mergeWithLastSubmission: false,
          },
        );
        return;
      }
      const grant = new provider.Grant({ accountId: details.session!.accountId, clientId: 'tessera' });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    provider.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    issuer,
    account,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A GitHub-style provider: authorize, token and user-info endpoints, no ID token, PKCE checked. */
async function startPlainOAuth2(): Promise<Upstream & { base: string }> {
  const account = { id: '4242' };
  const codes = new Map<string, { challenge: string; redirect: string; user: string }>();
  const tokens = new Map<string, string>();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/authorize') {
      const code = randomBytes(16).toString('hex');
      codes.set(code, {
        challenge: url.searchParams.get('code_challenge') ?? '',
        redirect: url.searchParams.get('redirect_uri') ?? '',
        user: account.id,
      });
      const back = new URL(url.searchParams.get('redirect_uri') ?? '');
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const entry = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      const ok =
        entry &&
        form.get('client_id') === 'gh' &&
        form.get('client_secret') === 'gh-client-secret-0123456789' &&
        entry.redirect === form.get('redirect_uri') &&
        createHash('sha256').update(verifier).digest('base64url') === entry.challenge;
      res.setHeader('content-type', 'application/json');
      if (!ok) {
        res.writeHead(400).end(JSON.stringify({ error: 'invalid_grant' }));
        return;
      }
      const token = randomBytes(16).toString('hex');
      tokens.set(token, entry.user);
      res.end(JSON.stringify({ access_token: token, token_type: 'bearer', scope: 'read:user' }));
      return;
    }
    if (url.pathname === '/user') {
      const user = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /i, ''));
      if (!user) {
        res.writeHead(401).end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ id: Number(user), login: `octo${user}`, email: 'alice@example.test', name: 'Octo' }),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer: base,
    base,
    account,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('sign-in through upstream providers', () => {
  let srv: TestServer;
  let oidcUp: Upstream;
  let gh: Upstream & { base: string };
  let tesseraUrl = '';

  before(async () => {
    const port = await freePort();
    tesseraUrl = `http://127.0.0.1:${port}`;
    oidcUp = await startOidcProvider(() => tesseraUrl);
    gh = await startPlainOAuth2();
    srv = await startTestServer(
      {
        port,
        issuer: tesseraUrl,
        // No grace window: a rotated refresh token is spent at once, so tests on this real clock see it.
        refreshGraceSeconds: 0,
        providers: [
          {
            id: 'corp',
            name: 'Corp ID',
            issuer: oidcUp.issuer,
            client_id: 'tessera',
            client_secret: 'oidc-client-secret-0123456789',
          },
          {
            id: 'gh',
            type: 'oauth2',
            name: 'GitHub-style',
            client_id: 'gh',
            client_secret: 'gh-client-secret-0123456789',
            authorization_endpoint: `${gh.base}/authorize`,
            token_endpoint: `${gh.base}/token`,
            userinfo_endpoint: `${gh.base}/user`,
            scopes: ['read:user'],
            mapping: { subject: 'id', email: 'email', name: 'name' },
          },
          {
            id: 'down',
            name: 'Down',
            issuer: 'http://127.0.0.1:1',
            client_id: 'x',
            client_secret: 'down-client-secret-0123456789',
          },
        ] as never,
      },
      { realClock: true },
    );
  });
  after(async () => {
    await srv?.close();
    await oidcUp?.close();
    await gh?.close();
  });

  /** A full sign-in in a fresh (or given) browser; returns the browser and where it landed. */
  async function signIn(provider: string, query = 'mode=session', browser = new Browser()) {
    const landed = await browser.follow(
      `${tesseraUrl}/auth/providers/${provider}/start?${query}`,
      (u) => u.origin === tesseraUrl && !u.pathname.startsWith('/auth/providers/'),
    );
    return { browser, landed };
  }

  async function me(browser: Browser) {
    return call(tesseraUrl, 'GET', '/auth/me', { headers: { cookie: browser.cookieHeader() } });
  }

  it('lists the providers by id and name only, and never the secrets', async () => {
    const list = await call(tesseraUrl, 'GET', '/auth/providers');
    assert.deepEqual(list.body, {
      providers: [
        { id: 'corp', name: 'Corp ID' },
        { id: 'gh', name: 'GitHub-style' },
        { id: 'down', name: 'Down' },
      ],
    });
    assert.doesNotMatch(JSON.stringify(list.body), /secret/);
  });

  it('starts with state, nonce and PKCE S256 bound to the browser by a signed HttpOnly cookie', async () => {
    const browser = new Browser();
    const res = await browser.get(`${tesseraUrl}/auth/providers/corp/start?mode=session&next=/somewhere`);
    assert.equal(res.status, 302);
    const to = new URL(res.headers.get('location')!);
    assert.equal(to.origin, oidcUp.issuer);
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(
      to.searchParams.get('state') && to.searchParams.get('nonce') && to.searchParams.get('code_challenge'),
    );
    assert.equal(to.searchParams.get('redirect_uri'), `${tesseraUrl}/auth/providers/corp/callback`);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('tessera_federation='))!;
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Lax/i);
  });

  it('signs up a new identity in session mode, then signs the same identity in to the same account', async () => {
    oidcUp.account.id = `u${uniqueName().slice(-10)}`;
    const first = await signIn('corp', 'mode=session&next=/account?tab=1');
    assert.equal(new URL(first.landed.url).pathname + new URL(first.landed.url).search, '/account?tab=1');
    const who = await me(first.browser);
    assert.equal(who.status, 200);
    assert.equal(who.body.session.mode, 'session');
    const ids = await call(tesseraUrl, 'GET', '/auth/identities', {
      headers: { cookie: first.browser.cookieHeader() },
    });
    assert.equal(ids.body.identities.length, 1);
    assert.equal(ids.body.identities[0].provider, 'corp');
    assert.equal(ids.body.identities[0].provider_name, 'Corp ID');

    const second = await signIn('corp', 'mode=token');
    assert.equal(new URL(second.landed.url).pathname, '/account');
    assert.ok(second.browser.jar.has('tessera_refresh'), 'token mode: the refresh cookie');
    const csrf = await call(tesseraUrl, 'GET', '/auth/csrf', {
      headers: { cookie: second.browser.cookieHeader() },
    });
    assert.equal(csrf.body.mode, 'token');
    const events = await srv.tessera.stores.audit.listAuditEvents({ userId: who.body.user.id, limit: 20 });
    assert.ok(events.some((e) => e.type === 'federated_login'));
    assert.ok(events.some((e) => e.type === 'identity_linked'));
  });

  it('goes back only to a path on this server: any other next is dropped for /account', async () => {
    for (const next of [
      'https://evil.example/',
      '//evil.example',
      '/%2F%2Fevil.example',
      '/.//evil.example',
    ]) {
      oidcUp.account.id = `u${uniqueName().slice(-10)}`;
      const { landed } = await signIn('corp', `mode=session&next=${encodeURIComponent(next)}`);
      assert.equal(landed.url, `${tesseraUrl}/account`, next);
    }
  });

  it('never signs into an existing account by a matching email: an unknown identity gets an account of its own', async () => {
    // The plain-OAuth 2 provider says alice@example.test, as the OpenID provider did for alice.
    gh.account.id = String(Math.floor(Math.random() * 1e9));
    const { browser } = await signIn('gh');
    const who = await me(browser);
    assert.equal(who.status, 200);
    oidcUp.account.id = 'alice';
    const alice = await signIn('corp');
    const aliceWho = await me(alice.browser);
    assert.notEqual(who.body.user.id, aliceWho.body.user.id);
    // And the account without a password cannot sign in with one, nor change it.
    const login = await call(tesseraUrl, 'POST', '/auth/login', {
      body: { username: who.body.user.username, password: PASSWORD, mode: 'token', delivery: 'header' },
    });
    assert.equal(login.body.error, 'invalid_credentials');
  });

  it('links a provider to a signed-in account, refuses to unlink the last way in, unlinks the others', async () => {
    oidcUp.account.id = `u${uniqueName().slice(-10)}`;
    const { browser } = await signIn('corp');
    const owner = (await me(browser)).body.user.id;
    gh.account.id = String(Math.floor(Math.random() * 1e9));
    const linked = await browser.follow(
      `${tesseraUrl}/auth/providers/gh/start?link=1`,
      (u) => u.origin === tesseraUrl && !u.pathname.startsWith('/auth/providers/'),
    );
    assert.equal(new URL(linked.url).pathname, '/account');
    const cookie = browser.cookieHeader();
    const list = await call(tesseraUrl, 'GET', '/auth/identities', { headers: { cookie } });
    assert.deepEqual(
      list.body.identities.map((i: { provider: string }) => i.provider),
      ['corp', 'gh'],
    );
    // The linked identity signs in to the same account.
    const viaGh = await signIn('gh');
    assert.equal((await me(viaGh.browser)).body.user.id, owner);

    const csrf = (await call(tesseraUrl, 'GET', '/auth/csrf', { headers: { cookie } })).body.csrf_token;
    const write = { cookie, origin: tesseraUrl, 'x-csrf-token': csrf };
    const [corp, ghId] = list.body.identities;
    const first = await call(tesseraUrl, 'DELETE', `/auth/identities/${corp.id}`, { headers: write });
    assert.equal(first.status, 204);
    const last = await call(tesseraUrl, 'DELETE', `/auth/identities/${ghId.id}`, { headers: write });
    assert.equal(last.status, 409);
    assert.equal(last.body.error, 'last_sign_in_method');
    const types = (await srv.tessera.stores.audit.listAuditEvents({ userId: owner, limit: 50 })).map(
      (e) => e.type,
    );
    assert.ok(types.includes('identity_unlinked') && types.includes('identity_linked'));
  });

  it('tells the verified address of the account when a provider is linked to it, and unlinked', async () => {
    const username = uniqueName('fedmail');
    const email = `${username}@example.test`;
    const reg = await call(tesseraUrl, 'POST', '/auth/register', {
      body: { username, password: PASSWORD, email },
    });
    assert.equal(reg.status, 201);
    await srv.tessera.email.settled();
    const verifyMail = (await outbox(srv.config.dataDir)).find((m) => m.to === email)!;
    const verified = await call(tesseraUrl, 'POST', '/auth/email/verify', {
      body: { token: linkToken(verifyMail, 'verify-email') },
    });
    assert.equal(verified.status, 200);
    const login = await call(tesseraUrl, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'session', delivery: 'cookie' },
      headers: { origin: tesseraUrl },
    });
    const browser = new Browser();
    browser.jar.set('tessera_session', login.cookies.tessera_session!.value);
    gh.account.id = String(Math.floor(Math.random() * 1e9));
    const linked = await browser.follow(
      `${tesseraUrl}/auth/providers/gh/start?link=1`,
      (u) => u.origin === tesseraUrl && !u.pathname.startsWith('/auth/providers/'),
    );
    assert.equal(new URL(linked.url).pathname, '/account');
    await srv.tessera.email.settled();
    const notice = (await outbox(srv.config.dataDir)).find(
      (m) => m.to === email && /provider was linked/.test(m.subject),
    );
    assert.ok(notice, 'a notice went to the verified address');
    assert.match(notice.text, /GitHub-style was linked/);

    const cookie = browser.cookieHeader();
    const [identity] = (await call(tesseraUrl, 'GET', '/auth/identities', { headers: { cookie } })).body
      .identities;
    const csrf = (await call(tesseraUrl, 'GET', '/auth/csrf', { headers: { cookie } })).body.csrf_token;
    const unlinked = await call(tesseraUrl, 'DELETE', `/auth/identities/${identity.id}`, {
      headers: { cookie, origin: tesseraUrl, 'x-csrf-token': csrf },
    });
    assert.equal(unlinked.status, 204);
    await srv.tessera.email.settled();
    const gone = (await outbox(srv.config.dataDir)).find(
      (m) => m.to === email && /provider was unlinked/.test(m.subject),
    );
    assert.ok(gone, 'and when it is unlinked');
    assert.match(gone.text, /GitHub-style was unlinked/);
  });

  it('links in token mode too: the browser signed in by its refresh cookie', async () => {
    oidcUp.account.id = `u${uniqueName().slice(-10)}`;
    const { browser } = await signIn('corp', 'mode=token');
    assert.ok(browser.jar.has('tessera_refresh') && !browser.jar.has('tessera_session'));
    const owner = await srv.tessera.stores.identities.getIdentity(oidcUp.issuer, oidcUp.account.id);
    gh.account.id = String(Math.floor(Math.random() * 1e9));
    const linked = await browser.follow(
      `${tesseraUrl}/auth/providers/gh/start?link=1`,
      (u) => u.origin === tesseraUrl && !u.pathname.startsWith('/auth/providers/'),
    );
    assert.equal(linked.url, `${tesseraUrl}/account`);
    const ghIdentity = await srv.tessera.stores.identities.getIdentity(gh.issuer, gh.account.id);
    assert.ok(owner && ghIdentity, 'both identities are stored');
    assert.equal(ghIdentity.userId, owner.userId);
  });

  it('refuses a link asked for with a spent refresh cookie: the account of its session gets nothing', async () => {
    const { login } = await registerAndLogin(
      tesseraUrl,
      { mode: 'token', delivery: 'cookie' },
      { origin: tesseraUrl },
    );
    const spent = login.cookies.tessera_refresh!.value;
    const rotated = await call(tesseraUrl, 'POST', '/auth/refresh', { body: { refresh_token: spent } });
    assert.equal(rotated.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 5)); // past the (empty) grace window
    const thief = new Browser();
    thief.jar.set('tessera_refresh', spent);
    gh.account.id = String(Math.floor(Math.random() * 1e9));
    const start = await thief.get(`${tesseraUrl}/auth/providers/gh/start?link=1`);
    assert.equal(start.status, 401);
    assert.equal(errorCode(await start.text()), 'unauthorized');
    assert.ok(!thief.jar.has('tessera_federation'), 'no flow started');
    assert.equal(await srv.tessera.stores.identities.getIdentity(gh.issuer, gh.account.id), null);
    // The current token still links, so the refusal is about the spent one.
    const owner = new Browser();
    owner.jar.set('tessera_refresh', rotated.body.refresh_token ?? rotated.cookies.tessera_refresh!.value);
    assert.equal((await owner.get(`${tesseraUrl}/auth/providers/gh/start?link=1`)).status, 302);
  });

  it('links only while the session that started the link lives', async () => {
    const { login } = await registerAndLogin(
      tesseraUrl,
      { mode: 'session', delivery: 'cookie' },
      { origin: tesseraUrl },
    );
    const session = login.cookies.tessera_session!.value;
    const browser = new Browser();
    browser.jar.set('tessera_session', session);
    gh.account.id = String(Math.floor(Math.random() * 1e9));
    const toProvider = await browser.get(`${tesseraUrl}/auth/providers/gh/start?link=1`);
    assert.equal(toProvider.status, 302);
    const out = await call(tesseraUrl, 'POST', '/auth/logout', {
      headers: {
        cookie: `tessera_session=${session}`,
        origin: tesseraUrl,
        'x-csrf-token': login.body.csrf_token,
      },
    });
    assert.equal(out.status, 204);
    const landed = await browser.follow(toProvider.headers.get('location')!);
    assert.equal(landed.res.status, 401);
    assert.equal(errorCode(landed.text), 'unauthorized');
    const owner = await srv.tessera.stores.identities.getIdentity(gh.issuer, gh.account.id);
    assert.equal(owner, null, 'nothing linked');
  });

  it('refuses a link started by another site, but not a sign-in', async () => {
    const { login } = await registerAndLogin(
      tesseraUrl,
      { mode: 'session', delivery: 'cookie' },
      { origin: tesseraUrl },
    );
    const browser = new Browser();
    browser.jar.set('tessera_session', login.cookies.tessera_session!.value);
    const start = `${tesseraUrl}/auth/providers/gh/start?link=1`;
    const foreign: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
    ];
    for (const headers of foreign) {
      const res = await browser.get(start, headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.equal(errorCode(await res.text()), 'csrf_failed');
      assert.ok(!browser.jar.has('tessera_federation'), 'no flow started');
    }
    // From the account page, or an address typed in: the flow starts.
    const own: Record<string, string>[] = [
      { 'sec-fetch-site': 'same-origin' },
      { 'sec-fetch-site': 'none' },
      {},
    ];
    for (const headers of own) {
      const res = await browser.get(start, headers);
      assert.equal(res.status, 302, JSON.stringify(headers));
    }
    // Signing in may start anywhere: an app on another site sends people here to sign in.
    const signin = await new Browser().get(`${tesseraUrl}/auth/providers/gh/start`, {
      'sec-fetch-site': 'cross-site',
    });
    assert.equal(signin.status, 302);
  });

  it('refuses to link an identity that belongs to another account', async () => {
    oidcUp.account.id = `u${uniqueName().slice(-10)}`;
    await signIn('corp');
    const other = await call(tesseraUrl, 'POST', '/auth/register', {
      body: { username: uniqueName(), password: PASSWORD },
    });
    const login = await call(tesseraUrl, 'POST', '/auth/login', {
      body: { username: other.body.user.username, password: PASSWORD, mode: 'session', delivery: 'cookie' },
    });
    const browser = new Browser();
    browser.jar.set('tessera_session', login.cookies.tessera_session!.value);
    const res = await browser.follow(`${tesseraUrl}/auth/providers/corp/start?link=1`);
    assert.equal(res.res.status, 409);
    assert.equal(errorCode(res.text), 'identity_taken');
  });

  /** A started flow: the browser with its cookie, and the authorization request's parameters. */
  async function started(provider = 'corp') {
    const browser = new Browser();
    const res = await browser.get(`${tesseraUrl}/auth/providers/${provider}/start?mode=session`);
    return { browser, to: new URL(res.headers.get('location')!) };
  }

  it('refuses a forged state, a missing state cookie and a mix-up (wrong iss) with their codes, creating nothing', async () => {
    const before = (await srv.tessera.stores.users.listUsers(10_000, 0)).length;
    const { browser, to } = await started();
    const state = to.searchParams.get('state')!;
    const cb = `${tesseraUrl}/auth/providers/corp/callback`;

    const forged = await browser.get(`${cb}?code=abc&state=forged&iss=${encodeURIComponent(oidcUp.issuer)}`);
    assert.equal(forged.status, 400);
    const forgedHtml = await forged.text();
    assert.equal(errorCode(forgedHtml), 'provider_state_invalid');
    assert.match(forged.headers.get('content-security-policy') ?? '', /script-src 'self'/);

    const again = await started();
    const noCookie = await new Browser().get(
      `${cb}?code=abc&state=${again.to.searchParams.get('state')}&iss=${encodeURIComponent(oidcUp.issuer)}`,
    );
    assert.equal(errorCode(await noCookie.text()), 'provider_state_invalid');

    const mixed = await started();
    const mixUp = await mixed.browser.get(
      `${cb}?code=abc&state=${mixed.to.searchParams.get('state')}&iss=${encodeURIComponent(gh.base)}`,
    );
    assert.equal(mixUp.status, 400);
    assert.equal(errorCode(await mixUp.text()), 'provider_issuer_mismatch');

    // A flow cookie of one provider does not serve another's callback.
    const other = await browser.get(`${tesseraUrl}/auth/providers/gh/callback?code=abc&state=${state}`);
    assert.equal(errorCode(await other.text()), 'provider_state_invalid');
    assert.equal((await srv.tessera.stores.users.listUsers(10_000, 0)).length, before);
  });

  it('refuses an ID token with another nonce, and a code used twice', async () => {
    oidcUp.account.id = `u${uniqueName().slice(-10)}`;
    const { browser, to } = await started();
    to.searchParams.set('nonce', 'another-nonce-than-the-cookie-holds');
    const landed = await browser.follow(to.href);
    assert.equal(errorCode(landed.text), 'provider_response_invalid');

    // A successful callback, replayed with the same cookie and code: the provider refuses the code.
    const fresh = await started();
    const flowCookie = fresh.browser.jar.get('tessera_federation')!;
    const callbackUrl = await fresh.browser.follow(fresh.to.href, (u) => u.pathname.endsWith('/callback'));
    const ok = await fresh.browser.get(callbackUrl.url);
    assert.equal(ok.status, 302);
    const replay = new Browser();
    replay.jar.set('tessera_federation', flowCookie);
    const res = await replay.get(callbackUrl.url);
    assert.equal(res.status, 400);
    assert.equal(errorCode(await res.text()), 'provider_rejected');
  });

  it('a provider that is down gets a clear page, and the server stays up', async () => {
    const res = await new Browser().get(`${tesseraUrl}/auth/providers/down/start?mode=session`);
    assert.equal(res.status, 502);
    assert.equal(errorCode(await res.text()), 'provider_unavailable');
    assert.equal((await call(tesseraUrl, 'GET', '/healthz')).status, 200);
    const unknown = await new Browser().get(`${tesseraUrl}/auth/providers/nope/start`);
    assert.equal(unknown.status, 404);
  });

  describe('in Chromium', { skip: browserSkip, timeout: 60_000 }, () => {
    let chromium: Chromium;
    before(async () => {
      chromium = await launchChromium();
    });
    after(async () => {
      await chromium?.close();
    });

    it('the sign-in page button goes through the provider and back to the account page, which lists it', async () => {
      oidcUp.account.id = `u${uniqueName().slice(-10)}`;
      const { context, page } = await newPage(chromium);
      const errors = watchErrors(page);
      try {
        await page.goto(`${tesseraUrl}/signin`);
        await page.click('a[data-provider="corp"]');
        await page.waitForURL(`${tesseraUrl}/account`);
        await page.locator('#identities li').first().waitFor();
        assert.match((await page.locator('#identities').textContent()) ?? '', /Corp ID/);
        assert.match((await page.locator('#username').textContent()) ?? '', new RegExp(oidcUp.account.id));
        // The only way in: unlinking says so, in words.
        await page.click('#identities button[data-identity]');
        await page.locator('#identities-error').waitFor();
        assert.match((await page.locator('#identities-error').textContent()) ?? '', /only way to sign in/);
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });

    it('the provider buttons start the mode the sign-in page’s radios say', async () => {
      for (const mode of ['session', 'token'] as const) {
        oidcUp.account.id = `u${uniqueName().slice(-10)}`;
        const { context, page } = await newPage(chromium);
        const errors = watchErrors(page);
        try {
          await page.goto(`${tesseraUrl}/signin`);
          await page.locator(`#mode-${mode}`).check();
          await page.click('a[data-provider="corp"]');
          await page.waitForURL(`${tesseraUrl}/account`);
          await page.locator('#username').filter({ hasText: oidcUp.account.id }).waitFor();
          assert.equal(
            await page.locator('#mode').textContent(),
            mode === 'session' ? 'Session mode' : 'Token mode',
          );
          const names = (await context.cookies()).map((c) => c.name);
          assert.ok(names.includes(mode === 'session' ? 'tessera_session' : 'tessera_refresh'), names.join());
          assert.deepEqual(errors, []);
        } finally {
          await context.close();
        }
      }
    });

    it('with next, the buttons continue there in session mode only, as the form does', async () => {
      const { context, page } = await newPage(chromium);
      try {
        await page.goto(`${tesseraUrl}/signin?next=${encodeURIComponent('/account?tab=1')}`);
        const button = page.locator('a[data-provider="corp"]');
        assert.equal(
          await button.getAttribute('href'),
          '/auth/providers/corp/start?mode=session&next=%2Faccount%3Ftab%3D1',
        );
        await page.locator('#mode-token').check();
        assert.equal(await button.getAttribute('href'), '/auth/providers/corp/start?mode=token');
      } finally {
        await context.close();
      }
    });
  });
});
