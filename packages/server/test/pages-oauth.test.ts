// An OAuth authorization through the real pages in Chromium: authorize → sign in → consent → code.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import type { Browser } from 'playwright-core';
import { browserSkip, launchChromium, newPage } from '../../client/test/browser-helpers.js';
import { call, PASSWORD, uniqueName } from './helpers.js';
import { insecure, type OAuthFixture, SPA_REDIRECT, startOAuthServer } from './oauth-helpers.js';

describe('OAuth authorization through the pages in Chromium', { skip: browserSkip, timeout: 60_000 }, () => {
  let fx: OAuthFixture;
  let browser: Browser;
  before(async () => {
    [fx, browser] = await Promise.all([startOAuthServer(), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await fx?.srv.close();
  });

  test('a signed-out user signs in, consents, and the client gets a code it can redeem', async () => {
    const username = uniqueName('oauthpage');
    assert.equal(
      (await call(fx.srv.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status,
      201,
    );
    const verifier = oauth.generateRandomCodeVerifier();
    const challenge = await oauth.calculatePKCECodeChallenge(verifier);
    const url = new URL(`${fx.srv.url}/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: fx.spa.client.client_id,
      redirect_uri: SPA_REDIRECT,
      response_type: 'code',
      scope: 'openid api',
      state: 'state-123',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();

    const { context, page } = await newPage(browser);
    // The client's redirect URI has no server here: answer it in the browser.
    let landed: URL | undefined;
    await context.route(`${SPA_REDIRECT}**`, async (route) => {
      landed = new URL(route.request().url());
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'client callback' });
    });
    await page.goto(url.href);
    await page.waitForURL(/\/signin\?next=/);
    assert.ok(await page.locator('#mode-session').isChecked(), 'the continuing step gets a session cookie');
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${SPA_REDIRECT}**`);
    assert.ok(landed);
    assert.equal(landed.searchParams.get('state'), 'state-123');
    assert.equal(landed.searchParams.get('iss'), fx.srv.url);
    const params = oauth.validateAuthResponse(fx.as, fx.spa.client, landed, 'state-123');
    const res = await oauth.authorizationCodeGrantRequest(
      fx.as,
      fx.spa.client,
      fx.spa.auth,
      params,
      SPA_REDIRECT,
      verifier,
      insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(fx.as, fx.spa.client, res);
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.access_token);
    await context.close();
  });

  test('a next parameter pointing off-site is ignored', async () => {
    const username = uniqueName('offsite');
    await call(fx.srv.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } });
    for (const next of [
      '//evil.example/x',
      '/\\evil.example',
      'https://evil.example/',
      '/%2F%2Fevil.example',
      '/.//evil.example',
    ]) {
      // a fresh context each time: the last account page would otherwise navigate on its own
      const { context, page } = await newPage(browser);
      await page.goto(`${fx.srv.url}/signin?next=${encodeURIComponent(next)}`);
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.locator('#mode-session').check();
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${fx.srv.url}/account`);
      await context.close();
    }
  });
});
