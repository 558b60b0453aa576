// Signing in to one Tessera through another: the upstream is Tessera's own OpenID provider
// (discovery, ES256 ID tokens, `iss` in the answer, PKCE, the consent page), on another host name
// (localhost) so that the browser keeps the two servers' cookies apart as it would two sites.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser as Chromium, Page } from 'playwright-core';
import { browserSkip, launchChromium, newPage, watchErrors } from '../../client/test/browser-helpers.js';
import type { Config } from '../src/config.js';
import {
  freePort,
  PASSWORD,
  registerAndLogin,
  startTestServer,
  type TestServer,
  uniqueName,
} from './helpers.js';
import { Browser, errorCode } from './http-browser.js';
import { addClient, formFields } from './oauth-helpers.js';

describe('sign-in through another Tessera as the OpenID provider', () => {
  let up: TestServer;
  let down: TestServer;
  let upUrl = '';
  let downUrl = '';
  const upUsers = new Map<string, string>();

  /** A Tessera that signs in through the upstream, registered there as a client named `name`. */
  async function downstream(name: string, overrides: Partial<Config> = {}): Promise<TestServer> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const client = await addClient(up, {
      name,
      type: 'confidential',
      redirectUris: [`${url}/auth/providers/tessera/callback`],
      scopes: ['openid', 'profile'],
    });
    const provider = {
      id: 'tessera',
      name: 'Upstream Tessera',
      issuer: upUrl,
      client_id: client.client.id,
      client_secret: client.secret,
    };
    return startTestServer(
      { port, issuer: url, providers: [provider] as never, ...overrides },
      { realClock: true },
    );
  }

  before(async () => {
    const upPort = await freePort();
    upUrl = `http://localhost:${upPort}`;
    up = await startTestServer({ port: upPort, issuer: upUrl }, { realClock: true });
    down = await downstream('Downstream Tessera');
    downUrl = down.url;
  });
  after(async () => {
    await down?.close();
    await up?.close();
  });

  /** An account at the upstream, signed in (session cookie) in `browser`. */
  async function upstreamUser(browser: Browser): Promise<string> {
    const username = uniqueName('up');
    const reg = await browser.postJson(`${upUrl}/auth/register`, { username, password: PASSWORD });
    assert.equal(reg.status, 201);
    const id = ((await reg.json()) as { user: { id: string } }).user.id;
    upUsers.set(username, id);
    const login = await browser.postJson(`${upUrl}/auth/login`, {
      username,
      password: PASSWORD,
      mode: 'session',
      delivery: 'cookie',
    });
    assert.equal(login.status, 200);
    return username;
  }

  /**
   * From `start` on the downstream to wherever the browser lands back on it: through the
   * upstream's authorize endpoint and, the first time, its consent page (allowed).
   */
  async function through(browser: Browser, start: string, consent: 'allow' | 'deny' = 'allow') {
    const backHome = (u: URL) => u.origin === downUrl && !u.pathname.startsWith('/auth/providers/');
    let walk = await browser.follow(start, (u) => backHome(u) || u.pathname.endsWith('/callback'));
    if (walk.url.startsWith(upUrl) && walk.res.status === 200) {
      assert.match(walk.text, /Downstream Tessera/, 'the consent page names the client');
      const answer = await browser.postForm(`${upUrl}/oauth/authorize`, {
        ...formFields(walk.text),
        decision: consent,
      });
      assert.equal(answer.status, 303);
      walk = await browser.follow({ res: answer, url: `${upUrl}/oauth/authorize` }, (u) =>
        u.pathname.endsWith('/callback'),
      );
    }
    assert.ok(walk.url.startsWith(`${downUrl}/auth/providers/tessera/callback`), walk.url);
    const callback = walk.url;
    return { callback, landed: await browser.follow(callback, backHome) };
  }

  async function me(browser: Browser) {
    const res = await browser.get(`${downUrl}/auth/me`);
    return { status: res.status, body: (await res.json()) as { user: { id: string; username: string } } };
  }

  it('discovers the upstream and sends the browser there with PKCE S256, state and nonce', async () => {
    const browser = new Browser();
    const res = await browser.get(`${downUrl}/auth/providers/tessera/start?mode=session`);
    assert.equal(res.status, 302);
    const to = new URL(res.headers.get('location')!);
    assert.equal(`${to.origin}${to.pathname}`, `${upUrl}/oauth/authorize`);
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(to.searchParams.get('state') && to.searchParams.get('nonce'));
    // The default scopes, as far as the upstream's metadata lists them (it has no `email`).
    assert.equal(to.searchParams.get('scope'), 'openid profile');
    // The upstream signs the browser in first, then comes back to the same request.
    const signin = await browser.get(to.href);
    assert.equal(signin.status, 302);
    assert.match(signin.headers.get('location') ?? '', /^\/signin\?next=%2Foauth%2Fauthorize/);
  });

  it('signs up through the upstream in session mode, then signs the same person in to the same account in token mode', async () => {
    const browser = new Browser();
    const upName = await upstreamUser(browser);
    const first = await through(
      browser,
      `${downUrl}/auth/providers/tessera/start?mode=session&next=/account?x=1`,
    );
    assert.equal(first.landed.url, `${downUrl}/account?x=1`);
    const callback = new URL(first.callback);
    assert.equal(callback.searchParams.get('iss'), upUrl, 'RFC 9207 iss in the answer');
    const who = await me(browser);
    assert.equal(who.status, 200);
    // The username comes from the upstream's preferred_username (profile scope).
    assert.equal(who.body.user.username, upName);
    const ids = await browser.get(`${downUrl}/auth/identities`);
    const list = ((await ids.json()) as { identities: { provider: string }[] }).identities;
    assert.deepEqual(
      list.map((i) => i.provider),
      ['tessera'],
    );
    const identity = await down.tessera.stores.identities.getIdentity(upUrl, upUsers.get(upName)!);
    assert.equal(identity?.userId, who.body.user.id, 'keyed by (upstream issuer, upstream user id)');

    // Again, in a browser still signed in at the upstream: no consent asked the second time.
    browser.cookies(downUrl).clear();
    const second = await through(browser, `${downUrl}/auth/providers/tessera/start?mode=token`);
    assert.equal(second.landed.url, `${downUrl}/account`);
    assert.ok(browser.jar.has('tessera_refresh'), 'token mode: the refresh cookie');
    assert.ok(!browser.jar.has('tessera_session'));
    const csrf = await browser.get(`${downUrl}/auth/csrf`);
    const body = (await csrf.json()) as { mode: string };
    assert.equal(body.mode, 'token');
    const events = await down.tessera.stores.audit.listAuditEvents({ userId: who.body.user.id, limit: 20 });
    assert.equal(events.filter((e) => e.type === 'federated_login').length, 2);
  });

  it('a refused consent lands on the failure page, and no account is made', async () => {
    const before = (await down.tessera.stores.users.listUsers(10_000, 0)).length;
    const browser = new Browser();
    await upstreamUser(browser);
    const { callback, landed } = await through(
      browser,
      `${downUrl}/auth/providers/tessera/start?mode=session`,
      'deny',
    );
    assert.equal(new URL(callback).searchParams.get('error'), 'access_denied');
    assert.equal(landed.res.status, 400);
    assert.equal(errorCode(landed.text), 'provider_rejected');
    assert.equal((await down.tessera.stores.users.listUsers(10_000, 0)).length, before);
  });

  it('links the upstream account to a password account, which it then signs in to', async () => {
    const { username, login } = await registerAndLogin(
      downUrl,
      { mode: 'session', delivery: 'cookie' },
      { origin: downUrl },
    );
    const browser = new Browser();
    browser.jar.set('tessera_session', login.cookies.tessera_session!.value);
    await upstreamUser(browser);
    const linked = await through(browser, `${downUrl}/auth/providers/tessera/start?link=1`);
    assert.equal(linked.landed.url, `${downUrl}/account`);
    const owner = await me(browser);
    assert.equal(owner.body.user.username, username);

    const fresh = new Browser();
    for (const [k, v] of browser.cookies(upUrl)) fresh.cookies(upUrl).set(k, v);
    await through(fresh, `${downUrl}/auth/providers/tessera/start?mode=session`);
    assert.equal((await me(fresh)).body.user.id, owner.body.user.id);
  });

  /** A started flow in a browser signed in at the upstream, stopped before the authorize request. */
  async function started() {
    const browser = new Browser();
    await upstreamUser(browser);
    const res = await browser.get(`${downUrl}/auth/providers/tessera/start?mode=session`);
    return { browser, to: new URL(res.headers.get('location')!) };
  }

  /** The upstream's answer for `to` (consent allowed), not yet delivered to the callback. */
  async function answer(browser: Browser, to: URL): Promise<URL> {
    const page = await browser.get(to.href);
    assert.equal(page.status, 200);
    const res = await browser.postForm(`${upUrl}/oauth/authorize`, {
      ...formFields(await page.text()),
      decision: 'allow',
    });
    assert.equal(res.status, 303);
    return new URL(res.headers.get('location')!);
  }

  it('refuses a forged state, a mix-up, a wrong nonce, a wrong PKCE verifier and a replayed code, creating nothing', async () => {
    const before = (await down.tessera.stores.users.listUsers(10_000, 0)).length;

    const forged = await started();
    const back = await answer(forged.browser, forged.to);
    back.searchParams.set('state', 'forged-state-0123456789');
    const forgedRes = await forged.browser.get(back.href);
    assert.equal(forgedRes.status, 400);
    assert.equal(errorCode(await forgedRes.text()), 'provider_state_invalid');

    const mixed = await started();
    const mixedBack = await answer(mixed.browser, mixed.to);
    mixedBack.searchParams.set('iss', 'http://127.0.0.1:1');
    const mixRes = await mixed.browser.get(mixedBack.href);
    assert.equal(mixRes.status, 400);
    assert.equal(errorCode(await mixRes.text()), 'provider_issuer_mismatch');

    const nonce = await started();
    nonce.to.searchParams.set('nonce', 'another-nonce-than-the-cookie-holds');
    const nonceRes = await nonce.browser.get((await answer(nonce.browser, nonce.to)).href);
    assert.equal(errorCode(await nonceRes.text()), 'provider_response_invalid');

    // Another code challenge: the upstream's token endpoint refuses the downstream's verifier.
    const pkce = await started();
    pkce.to.searchParams.set('code_challenge', 'A'.repeat(43));
    const pkceRes = await pkce.browser.get((await answer(pkce.browser, pkce.to)).href);
    assert.equal(errorCode(await pkceRes.text()), 'provider_rejected');

    const replay = await started();
    const flow = replay.browser.jar.get('tessera_federation')!;
    const replayBack = await answer(replay.browser, replay.to);
    const ok = await replay.browser.get(replayBack.href);
    assert.equal(ok.status, 302);
    const again = new Browser();
    again.jar.set('tessera_federation', flow);
    const replayRes = await again.get(replayBack.href);
    assert.equal(replayRes.status, 400);
    assert.equal(errorCode(await replayRes.text()), 'provider_rejected');

    assert.equal((await down.tessera.stores.users.listUsers(10_000, 0)).length, before + 1);
  });

  describe('in Chromium, with SameSite=Strict cookies', { skip: browserSkip, timeout: 60_000 }, () => {
    // The way back from the provider is a chain of cross-site redirects: a Strict cookie set on
    // the callback is not sent on a redirect that continues the chain.
    let chromium: Chromium;
    let strict: TestServer;
    before(async () => {
      chromium = await launchChromium();
      strict = await downstream('Strict Tessera', { sameSite: 'strict' });
    });
    after(async () => {
      await chromium?.close();
      await strict?.close();
    });

    /** At the upstream: its sign-in page (a new account), then its consent page, allowed. */
    async function upstreamSignInAndConsent(page: Page): Promise<string> {
      const username = uniqueName('up');
      const reg = await new Browser().postJson(`${upUrl}/auth/register`, { username, password: PASSWORD });
      assert.equal(reg.status, 201);
      await page.waitForURL(`${upUrl}/signin?**`);
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Allow' }).click();
      return username;
    }

    it('signs in through the provider and lands on the account page signed in, in both modes', async () => {
      for (const mode of ['session', 'token'] as const) {
        const { context, page } = await newPage(chromium);
        const errors = watchErrors(page);
        try {
          await page.goto(`${strict.url}/signin`);
          await page.locator(`#mode-${mode}`).check();
          await page.click('a[data-provider="tessera"]');
          const username = await upstreamSignInAndConsent(page);
          await page.waitForURL(`${strict.url}/account`).catch((err) => {
            throw new Error(`landed on ${page.url()}`, { cause: err });
          });
          await page.locator('#username').filter({ hasText: username }).waitFor();
          const cookie = (await context.cookies(strict.url)).find((c) => c.name.startsWith('tessera_'));
          assert.equal(cookie?.sameSite, 'Strict');
          assert.deepEqual(errors, []);
        } finally {
          await context.close();
        }
      }
    });

    it('links the provider from the account page and comes back to it signed in', async () => {
      const { context, page } = await newPage(chromium);
      const errors = watchErrors(page);
      try {
        const { username } = await registerAndLogin(strict.url, { mode: 'session', delivery: 'header' });
        await page.goto(`${strict.url}/signin`);
        await page.getByLabel('Username').fill(username);
        await page.getByLabel('Password').fill(PASSWORD);
        await page.locator('#mode-session').check();
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.waitForURL(`${strict.url}/account`);
        await page.click('a[data-provider="tessera"]');
        await upstreamSignInAndConsent(page);
        await page.waitForURL(`${strict.url}/account`);
        await page.locator('#username').filter({ hasText: username }).waitFor();
        await page.locator('#identities li').first().waitFor();
        assert.match((await page.locator('#identities').textContent()) ?? '', /Upstream Tessera/);
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  });
});
