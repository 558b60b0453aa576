import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import {
  browserSkip,
  launchChromium,
  newPage,
  readableStorage,
  signIn,
  watchErrors,
} from '../../client/test/browser-helpers.js';
import { PASSWORD, startTestServer, type TestServer, uniqueName } from './helpers.js';

describe('account pages in Chromium', { skip: browserSkip, timeout: 60_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let base: string;

  before(async () => {
    [server, browser] = await Promise.all([startTestServer({}, { realClock: true }), launchChromium()]);
    base = server.url;
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function registerUser(): Promise<string> {
    const username = uniqueName('page');
    const res = await fetch(`${base}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: PASSWORD }),
    });
    assert.equal(res.status, 201);
    return username;
  }

  test('pages carry a strict CSP and no inline script or style', async () => {
    for (const path of ['/signin', '/register']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      const html = await res.text();
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/);
      assert.doesNotMatch(html, /\sstyle=/);
    }
    const root = await fetch(`${base}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/signin');
    const account = await fetch(`${base}/account`, { redirect: 'manual' });
    assert.equal(account.headers.get('location'), '/signin');
  });

  test('sign up, then the account page; errors are shown in words', async () => {
    const { context, page } = await newPage(browser);
    const errors = watchErrors(page);
    const username = uniqueName('signup');
    await page.goto(`${base}/register`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Confirm password').fill('something else entirely');
    await page.getByRole('button', { name: 'Create account' }).click();
    assert.equal(await page.getByRole('alert').textContent(), 'The two passwords do not match.');
    await page.getByLabel('Confirm password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/account`);
    await page.locator('#username').filter({ hasText: username }).waitFor();
    assert.equal(await page.locator('.session').count(), 1);
    assert.match(
      (await page.locator('.session').textContent()) ?? '',
      /Headless Chrome on Linux.*This device/,
    );

    // Taken username, in a fresh context.
    const other = await newPage(browser);
    await other.page.goto(`${base}/register`);
    await other.page.getByLabel('Username').fill(username);
    await other.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await other.page.getByLabel('Confirm password').fill(PASSWORD);
    await other.page.getByRole('button', { name: 'Create account' }).click();
    await other.page.getByText('That username is already taken').waitFor();
    await other.context.close();
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('an account page that cannot load says why, instead of loading for ever', async () => {
    const username = await registerUser();
    const { context, page } = await newPage(browser);
    await signIn(page, base, username, PASSWORD, 'session');
    await page.locator('#account').waitFor();
    // The store behind the session list goes away: its route answers 503 from now on.
    await page.route('**/auth/sessions', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: 'unavailable', message: 'The service is temporarily unavailable.' }),
      }),
    );
    await page.reload();
    const alert = page.locator('#account-error');
    await alert.waitFor({ state: 'visible' });
    assert.equal(await alert.textContent(), 'The service is temporarily unavailable. Try again in a moment.');
    assert.equal(await page.locator('#loading').isVisible(), false, 'no endless "Loading"');
    assert.equal(await page.locator('#account').isVisible(), false);
    await context.close();
  });

  for (const mode of ['token', 'session'] as const) {
    test(`${mode} mode: sign in, reload stays signed in, nothing readable by scripts, sign out`, async () => {
      const username = await registerUser();
      const { context, page } = await newPage(browser);
      const errors = watchErrors(page);
      // Wrong password first: a clear message, and the form stays usable.
      await page.goto(`${base}/signin`);
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill('not my password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('Wrong username or password.').waitFor();

      let body: { access_token?: string } = {};
      await page.route('**/auth/login', async (route) => {
        const response = await route.fetch();
        body = (await response.json()) as typeof body;
        await route.fulfill({ response });
      });
      await signIn(page, base, username, PASSWORD, mode);
      assert.equal(typeof body.access_token, mode === 'token' ? 'string' : 'undefined');
      assert.equal(
        await page.locator('#mode').textContent(),
        mode === 'token' ? 'Token mode' : 'Session mode',
      );

      await page.reload();
      await page.locator('#username').filter({ hasText: username }).waitFor();
      await page.goto(`${base}/`);
      await page.waitForURL(`${base}/account`);
      await page.locator('#username').filter({ hasText: username }).waitFor();

      const readable = await readableStorage(page);
      assert.equal(readable, JSON.stringify({ local: [], session: [], cookie: '' }));
      if (body.access_token) assert.ok(!readable.includes(body.access_token));
      const cookies = await context.cookies();
      assert.ok(cookies.every((c) => c.httpOnly));
      assert.deepEqual(
        cookies.map((c) => c.name),
        [mode === 'token' ? 'tessera_refresh' : 'tessera_session'],
      );

      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.waitForURL(`${base}/signin`);
      assert.deepEqual(await context.cookies(), []);
      await page.goto(`${base}/account`);
      await page.waitForURL(`${base}/signin`);
      assert.deepEqual(errors, []);
      await context.close();
    });
  }

  test('sign out everywhere from a second browser ends the first; end one session; change password', async () => {
    const username = await registerUser();
    const a = await newPage(browser);
    const b = await newPage(browser);
    const c = await newPage(browser);
    await signIn(a.page, base, username, PASSWORD, 'token');
    await signIn(c.page, base, username, PASSWORD, 'session');
    await signIn(b.page, base, username, PASSWORD, 'session');
    assert.equal(await b.page.locator('.session').count(), 3);

    // End c's session from b.
    const cId = await c.page.evaluate(
      async () => (await (await fetch('/auth/me')).json()).session.id as string,
    );
    await b.page.reload();
    await b.page.locator(`button[data-session="${cId}"]`).click();
    await b.page.getByText('Session ended.').waitFor();
    assert.equal(await b.page.locator('.session').count(), 2);
    await c.page.reload();
    await c.page.waitForURL(`${base}/signin`);

    // Wrong current password, then a right one; the page says what happened.
    await b.page.getByLabel('Current password').fill('wrong wrong wrong');
    await b.page.getByLabel('New password', { exact: true }).fill('a whole new passphrase');
    await b.page.getByLabel('Confirm new password').fill('a whole new passphrase');
    await b.page.getByRole('button', { name: 'Change password' }).click();
    await b.page.getByText('Wrong username or password.').waitFor();

    await b.page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await b.page.waitForURL(`${base}/signin`);
    await a.page.reload();
    await a.page.waitForURL(`${base}/signin`);
    for (const x of [a, b, c]) await x.context.close();
  });
});
