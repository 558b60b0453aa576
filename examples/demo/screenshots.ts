/**
 * Saves PNGs of the account pages to docs/screenshots/: signin, register, account (with a
 * connected OAuth app).
 * Run: node --import tsx examples/demo/screenshots.ts   (needs Chromium at /usr/bin/chromium or TESSERA_CHROMIUM)
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { launchChromium } from '../../packages/client/test/browser-helpers.js';
import { startTestServer } from '../../packages/server/test/helpers.js';
import { addClient, authorize, pkce } from '../../packages/server/test/oauth-helpers.js';

const out = path.resolve(import.meta.dirname, '../../docs/screenshots');
mkdirSync(out, { recursive: true });

const server = await startTestServer({}, { realClock: true });
const browser = await launchChromium();
try {
  const base = server.url;
  const username = 'ada.lovelace';
  const password = 'analytical engine notes';
  await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  // Two other devices, so the sessions list has something to show; the second one (a session
  // cookie) also allows an OAuth app, so "Apps with access" has one.
  const cookies: string[] = [];
  for (const [ua, delivery] of [
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
      'header',
    ],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0', 'cookie'],
  ] as const) {
    const res = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': ua, origin: server.origin },
      body: JSON.stringify({ username, password, mode: 'session', delivery }),
    });
    for (const c of res.headers.getSetCookie()) cookies.push(c.split(';')[0]!);
  }
  const app = await addClient(server, {
    name: 'Difference Engine Notes',
    type: 'confidential',
    redirectUris: ['https://notes.example/callback'],
    scopes: ['openid', 'profile', 'offline_access', 'notes'],
  });
  const session = cookies.find((c) => c.split('=')[0]!.endsWith('tessera_session'));
  if (session === undefined) throw new Error('no session cookie from the cookie login');
  await authorize(server, session, {
    client_id: app.client.id,
    redirect_uri: 'https://notes.example/callback',
    response_type: 'code',
    scope: 'openid profile offline_access notes',
    code_challenge: (await pkce()).challenge,
    code_challenge_method: 'S256',
  });
  const context = await browser.newContext({
    viewport: { width: 1100, height: 820 },
    deviceScaleFactor: 1,
    userAgent:
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  });
  const page = await context.newPage();

  await page.goto(`${base}/signin`);
  await page.getByLabel('Username').fill(username);
  await page.screenshot({ path: path.join(out, 'signin.png'), fullPage: true });

  await page.goto(`${base}/register`);
  await page.getByLabel('Username').fill('grace.hopper');
  await page.getByLabel('Password', { exact: true }).fill('password123');
  await page.getByLabel('Confirm password').fill('password123');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('alert').waitFor();
  await page.screenshot({ path: path.join(out, 'register.png'), fullPage: true });

  await page.goto(`${base}/signin`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/account`);
  await page.locator('#account').waitFor();
  await page.locator('#grants li').first().waitFor();
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.screenshot({ path: path.join(out, 'account.png'), fullPage: true });
  for (const name of ['signin', 'register', 'account']) console.log(path.join(out, `${name}.png`));
} finally {
  await browser.close();
  await server.close();
}
