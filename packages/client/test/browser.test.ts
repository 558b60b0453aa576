import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { type ApiServer, startApiServer } from '../../../examples/api/server.js';
import { type DemoServer, startDemoServer } from '../../../examples/demo/server.js';
import {
  freePort,
  PASSWORD,
  startTestServer,
  type TestServer,
  uniqueName,
} from '../../server/test/helpers.js';
import {
  browserSkip,
  launchChromium,
  newPage,
  readableStorage,
  type StaticSite,
  signIn,
  staticSite,
  watchErrors,
} from './browser-helpers.js';

async function register(base: string): Promise<string> {
  const username = uniqueName('br');
  const res = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(res.status, 201);
  return username;
}

function metric(text: string, name: string, label = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(label));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('SDK in Chromium', { skip: browserSkip, timeout: 60_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let api: ApiServer;
  let demo: DemoServer;
  let evil: StaticSite;
  let base: string;

  before(async () => {
    const demoPort = await freePort();
    const demoOrigin = `http://127.0.0.1:${demoPort}`;
    // No grace window: a refresh cookie presented twice would end the session, so the
    // ten-tab test proves the tabs really take turns.
    [server, browser] = await Promise.all([
      startTestServer({ corsOrigins: [demoOrigin], refreshGraceSeconds: 0 }, { realClock: true }),
      launchChromium(),
    ]);
    base = server.url;
    const apiPort = await freePort();
    api = await startApiServer({
      issuer: base,
      port: apiPort,
      publicUrl: `http://127.0.0.1:${apiPort}`,
      corsOrigins: [demoOrigin],
    });
    demo = await startDemoServer({ port: demoPort, issuer: base, apiUrl: api.url });
    evil = await staticSite({ '/': '<!doctype html><title>elsewhere</title><p>another site</p>' });
  });
  after(async () => {
    await browser?.close();
    await Promise.all([demo?.close(), api?.close(), evil?.close()]);
    await server?.close();
  });

  test('demo on another origin: token mode with cookie delivery, API call with Bearer, reload, sign out', async () => {
    const username = await register(base);
    const { context, page } = await newPage(browser);
    const errors = watchErrors(page);
    await page.goto(demo.url);
    await page.locator('body[data-ready="true"]').waitFor();
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#who').filter({ hasText: username }).waitFor();

    await page.getByRole('button', { name: 'Call the API' }).click();
    await page.locator('#api-result').filter({ hasText: /^200 / }).waitFor();
    const result = JSON.parse(((await page.locator('#api-result').textContent()) ?? '').slice(4)) as {
      sub: string;
      sid: string;
    };
    assert.ok(result.sub && result.sid);

    // Nothing a script on the demo origin can read, before and after a reload.
    assert.equal(await readableStorage(page), JSON.stringify({ local: [], session: [], cookie: '' }));
    await page.reload();
    await page.locator('#who').filter({ hasText: username }).waitFor();
    await page.getByRole('button', { name: 'Call the API' }).click();
    await page.locator('#api-result').filter({ hasText: /^200 / }).waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#status').filter({ hasText: 'Signed out' }).waitFor();
    await page.reload();
    await page.locator('body[data-ready="true"]').waitFor();
    assert.equal(await page.locator('#status').textContent(), 'Signed out');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a disallowed origin cannot use the cookies to write, refresh or read the CSRF token', async () => {
    const username = await register(base);
    // One browser signed in with a session cookie, another with a refresh cookie.
    const a = await newPage(browser);
    await signIn(a.page, base, username, PASSWORD, 'session');
    const b = await newPage(browser);
    await signIn(b.page, base, username, PASSWORD, 'token');

    for (const { context } of [a, b]) {
      const attacker = await context.newPage();
      await attacker.goto(evil.origin);
      const outcomes = (await attacker.evaluate(`(async () => {
        const base = ${JSON.stringify(base)};
        const attempt = async (path, init) => {
          try {
            const r = await fetch(base + path, { credentials: 'include', ...init });
            return path + ' read ' + r.status;
          } catch (e) {
            return path + ' blocked';
          }
        };
        return [
          await attempt('/auth/logout-all', { method: 'POST' }),
          await attempt('/auth/logout', { method: 'POST' }),
          await attempt('/auth/refresh', { method: 'POST' }),
          await attempt('/auth/password', { method: 'POST', body: '{}' }),
          await attempt('/auth/logout-all', { method: 'POST', headers: { 'x-csrf-token': 'guess' } }),
          await attempt('/auth/csrf', {}),
          await attempt('/auth/sessions', {}),
        ];
      })()`)) as string[];
      // CORS keeps every answer from the attacker's script...
      assert.ok(
        outcomes.every((o) => o.endsWith('blocked')),
        outcomes.join(', '),
      );
      await attacker.close();
    }
    // ...and the server refused the simple (no-preflight) writes: both logins are still alive.
    for (const { page } of [a, b]) {
      await page.reload();
      await page.locator('#username').filter({ hasText: username }).waitFor();
      assert.equal(await page.locator('.session').count(), 2);
    }
    await a.context.close();
    await b.context.close();
  });

  test('ten tabs refreshing at once stay signed in (no grace window to hide behind)', async () => {
    const username = await register(base);
    const { context, page } = await newPage(browser);
    await signIn(page, base, username, PASSWORD, 'token');
    const before = await (await fetch(`${base}/metrics`)).text();

    // Nine more tabs load the account page at once: each restores through POST /auth/refresh.
    const tabs: Page[] = [page];
    for (let i = 0; i < 9; i++) tabs.push(await context.newPage());
    await Promise.all(tabs.slice(1).map((t) => t.goto(`${base}/account`)));
    await Promise.all(tabs.map((t) => t.locator('#username').filter({ hasText: username }).waitFor()));

    // Then every tab forces a refresh at the same moment, through its own SDK instance too.
    const refreshed = await Promise.all(
      tabs.map((t) =>
        t.evaluate(`(async () => {
          const { TesseraClient } = await import('/assets/sdk.js');
          const c = new TesseraClient({ issuer: location.origin });
          await c.restore();
          await c.refresh();
          const me = await c.me();
          c.close();
          return me.user.username;
        })()`),
      ),
    );
    assert.deepEqual(refreshed, Array(10).fill(username));
    const afterText = await (await fetch(`${base}/metrics`)).text();
    assert.equal(
      metric(afterText, 'tessera_refresh_reuse_total') - metric(before, 'tessera_refresh_reuse_total'),
      0,
    );
    assert.equal(
      metric(afterText, 'tessera_refreshes_total', 'result="refresh_token_reused"') -
        metric(before, 'tessera_refreshes_total', 'result="refresh_token_reused"'),
      0,
    );
    // Still signed in everywhere after another reload.
    await Promise.all(tabs.map((t) => t.reload()));
    await Promise.all(tabs.map((t) => t.locator('#username').filter({ hasText: username }).waitFor()));
    const storage = await readableStorage(tabs[3]!);
    assert.equal(storage, JSON.stringify({ local: [], session: [], cookie: '' }));
    await context.close();
  });
});
