// The email pages in Chromium: a reset link from a real SMTP server followed through the pages,
// and the verification page; every page under the strict CSP with no inline script.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserSkip, launchChromium, newPage, watchErrors } from '../../client/test/browser-helpers.js';
import { call, PASSWORD, startTestServer, type TestServer, uniqueName } from './helpers.js';
import { linkUrl, startSmtp, type TestSmtp } from './mail.js';

describe('email pages in Chromium', { skip: browserSkip, timeout: 90_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let smtp: TestSmtp;

  before(async () => {
    smtp = await startSmtp();
    [server, browser] = await Promise.all([
      startTestServer({ smtpUrl: smtp.url }, { realClock: true }),
      launchChromium(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await smtp?.stop();
  });

  /** Creates an account on the registration page, with `email` when given; lands on /account. */
  async function signUp(page: Page, username: string, email?: string): Promise<void> {
    await page.goto(`${server.url}/register`);
    await page.getByLabel('Username').fill(username);
    if (email !== undefined) await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Confirm password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(`${server.url}/account`);
  }

  test('the email pages carry the strict CSP and no inline script or style', async () => {
    for (const path of ['/forgot-password', '/reset-password', '/verify-email', '/confirm-email']) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /unsafe-inline/);
      const html = await res.text();
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/);
      assert.doesNotMatch(html, /\sstyle=/);
    }
    const change = await fetch(`${server.url}/change-email`, { redirect: 'manual' });
    assert.equal(change.headers.get('location'), '/signin');
  });

  test('the account page of an account without an address offers to add one', async () => {
    const { context, page } = await newPage(browser);
    const errors = watchErrors(page);
    await signUp(page, uniqueName('noaddr'));
    await page.locator('#email-address').filter({ hasText: 'No email address' }).waitFor();
    assert.equal(await page.locator('#email-status').isHidden(), true);
    await page.getByRole('link', { name: 'Add an email address' }).click();
    await page.waitForURL(`${server.url}/change-email`);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('the account page mails the confirmation link again until the address is confirmed', async () => {
    const { context, page } = await newPage(browser);
    const errors = watchErrors(page);
    const username = uniqueName('resend');
    const email = `${username}@example.test`;
    await signUp(page, username, email);
    await smtp.waitFor(email, /Confirm your email address/);
    const resend = page.getByRole('button', { name: 'Mail the confirmation link again' });
    await resend.click();
    await page
      .locator('#email-notice')
      .filter({ hasText: `on their way to ${email}` })
      .waitFor();
    // A second mail, and its link confirms the address.
    const second = await smtp.waitFor(email, /Confirm your email address/, 1);
    await page.goto(linkUrl(second, 'verify-email'));
    await page.getByRole('button', { name: 'Confirm' }).click();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /is confirmed as your address/);
    await page.goto(`${server.url}/account`);
    await page.locator('#email-status').filter({ hasText: 'Verified' }).waitFor();
    assert.equal(await resend.isHidden(), true, 'nothing to confirm any more');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('sign up with an address, verify it, forget the password, follow the reset link, sign in', async () => {
    const { context, page } = await newPage(browser);
    const errors = watchErrors(page);
    const username = uniqueName('pages');
    const email = `${username}@example.test`;
    await signUp(page, username, email);
    // The account page reads the address, not yet verified, next to the change link.
    await page.locator('#email-status').filter({ hasText: 'Not verified' }).waitFor();
    assert.equal(await page.locator('#email-address').textContent(), email);
    await page.getByRole('link', { name: 'Change your email address' }).waitFor();

    const verify = await smtp.waitFor(email, /Confirm your email address/);
    await page.goto(linkUrl(verify, 'verify-email'));
    await page.getByRole('button', { name: 'Confirm' }).click();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /is confirmed as your address/);
    await page.goto(`${server.url}/account`);
    await page
      .locator('#email-status')
      .filter({ hasText: /^Verified$/ })
      .waitFor();
    assert.equal(await page.locator('#email-address').textContent(), email);

    // A fresh browser: forgot password.
    const other = await newPage(browser);
    const otherErrors = watchErrors(other.page);
    await other.page.goto(`${server.url}/signin`);
    await other.page.getByRole('link', { name: 'Forgot your password?' }).click();
    await other.page.waitForURL(`${server.url}/forgot-password`);
    await other.page.getByLabel('Email address').fill(email);
    await other.page.getByRole('button', { name: 'Send the link' }).click();
    assert.match((await other.page.getByRole('alert').textContent()) ?? '', /a link is on its way/);

    const reset = await smtp.waitFor(email, /Reset your password/);
    await other.page.goto(linkUrl(reset, 'reset-password'));
    const next = 'a new passphrase from the page';
    await other.page.getByLabel('New password').fill(next);
    await other.page.getByLabel('Confirm password').fill(next);
    await other.page.getByRole('button', { name: 'Set the password' }).click();
    await other.page.waitForURL(`${server.url}/signin?reset=1`);
    await other.page.getByLabel('Username').fill(email);
    await other.page.getByLabel('Password').fill(next);
    await other.page.getByRole('button', { name: 'Sign in' }).click();
    await other.page.waitForURL(`${server.url}/account`);
    await other.page.locator('#username').filter({ hasText: username }).waitFor();

    // The link works once.
    await other.page.goto(linkUrl(reset, 'reset-password'));
    await other.page.getByLabel('New password').fill('yet another passphrase here');
    await other.page.getByLabel('Confirm password').fill('yet another passphrase here');
    await other.page.getByRole('button', { name: 'Set the password' }).click();
    assert.match((await other.page.getByRole('alert').textContent()) ?? '', /no longer valid/);

    // The first browser's session ended with the reset.
    const me = await call(server.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
    });
    assert.equal(me.status, 401, 'the old password is gone');
    assert.deepEqual(errors, []);
    assert.deepEqual(otherErrors, []);
    await other.context.close();
    await context.close();
  });
});
