// "Apps with access to your account" on the account page, in Chromium: a real OAuth grant is
// listed, revoked from the page (keyboard), and its refresh token stops working.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import {
  browserSkip,
  launchChromium,
  newPage,
  signIn as signInOnPage,
  watchErrors,
} from '../../client/test/browser-helpers.js';
import { call, PASSWORD } from './helpers.js';
import { basic, form, type OAuthFixture, signIn, startOAuthServer, webAppTokens } from './oauth-helpers.js';

describe('connected apps on the account page in Chromium', { skip: browserSkip, timeout: 60_000 }, () => {
  let fx: OAuthFixture;
  let browser: Browser;
  before(async () => {
    [fx, browser] = await Promise.all([startOAuthServer(), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await fx?.srv.close();
  });

  /** The web app asks for openid, api and offline_access; the user allows it. Returns its refresh token. */
  async function grantWebApp(cookie: string): Promise<string> {
    const body = await webAppTokens(fx, cookie);
    assert.ok(body.refresh_token);
    return body.refresh_token;
  }

  const listGrants = async (cookie: string) =>
    (await call(fx.srv.url, 'GET', '/auth/grants', { headers: { cookie } })).body.grants as { id: string }[];

  test('the app is listed with its scopes, Revoke ends its access, the empty state shows', async () => {
    const user = await signIn(fx.srv);
    const refreshToken = await grantWebApp(user.cookie);
    const { context, page } = await newPage(browser);
    const errors = watchErrors(page);
    await signInOnPage(page, fx.srv.url, user.username, PASSWORD, 'session');

    const section = page.getByRole('region', { name: 'Apps with access to your account' });
    const item = section.getByRole('listitem').filter({ hasText: 'Web App' }).first();
    await item.waitFor();
    for (const words of ['Know who you are', 'Keep access while you are away', 'api'])
      assert.ok(await item.getByText(words, { exact: true }).isVisible(), `scope chip "${words}"`);
    assert.match((await item.locator('.session-meta').textContent()) ?? '', /^Allowed \w/);
    assert.equal(await page.locator('#grant-count').textContent(), '1 app');
    assert.ok(await page.getByText('No apps have access.').isHidden());

    // Keyboard: focus the button and press Enter.
    const revoke = section.getByRole('button', { name: 'Revoke access for Web App' });
    await revoke.focus();
    await page.keyboard.press('Enter');
    const done = page.locator('#grants-error');
    await done.filter({ hasText: 'Web App no longer has access to your account.' }).waitFor();
    assert.equal(await done.getAttribute('class'), 'alert alert-success');
    await page.getByText('No apps have access.').waitFor();
    assert.ok(await page.locator('#grants').isHidden());
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'grants-title');

    // The app's refresh token is dead, and the server agrees the list is empty.
    const refreshed = await form(
      fx.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: refreshToken },
      basic(fx.web.client.client_id, fx.web.secret),
    );
    assert.equal(refreshed.status, 400);
    assert.equal(refreshed.body.error, 'invalid_grant');
    assert.deepEqual(await listGrants(user.cookie), []);
    // After a reload, too.
    await page.reload();
    await page.getByText('No apps have access.').waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('an app revoked elsewhere meanwhile: a clear error and the list as it is now', async () => {
    const user = await signIn(fx.srv);
    await grantWebApp(user.cookie);
    const { context, page } = await newPage(browser);
    const errors = watchErrors(page);
    await signInOnPage(page, fx.srv.url, user.username, PASSWORD, 'session');
    const revoke = page.getByRole('button', { name: 'Revoke access for Web App' });
    await revoke.waitFor();

    const [grant] = await listGrants(user.cookie);
    const gone = await call(fx.srv.url, 'DELETE', `/auth/grants/${grant!.id}`, {
      headers: { cookie: user.cookie, origin: fx.srv.origin, 'x-csrf-token': user.csrf },
    });
    assert.equal(gone.status, 204);

    await revoke.click();
    await page.locator('#grants-error').filter({ hasText: 'That item no longer exists.' }).waitFor();
    assert.equal(await page.locator('#grants-error').getAttribute('class'), 'alert alert-error');
    await page.getByText('No apps have access.').waitFor();
    // The rest of the page is untouched: still signed in.
    assert.ok(await page.locator('#account').isVisible());
    assert.deepEqual(errors, []);
    await context.close();
  });
});
