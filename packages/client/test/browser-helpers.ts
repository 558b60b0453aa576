import http from 'node:http';
import type net from 'node:net';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/** Set by scripts/test.mjs only when Chromium exists; the browser suites skip otherwise. */
export const CHROMIUM = process.env.TESSERA_CHROMIUM;
export const browserSkip: string | false = CHROMIUM ? false : 'Chromium not installed at /usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Collects console errors and page errors (CSP violations show up here). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    // A 401 on a probe is expected; the browser logs failed fetches as console errors.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

/** What the page's scripts could read: both storages and document.cookie. */
export function readableStorage(page: Page): Promise<string> {
  // A string, not a function: tsx's transform would add helpers the page does not have.
  return page.evaluate(`(() => {
    const dump = (s) => Array.from({ length: s.length }, (_, i) => s.key(i) + '=' + s.getItem(s.key(i)));
    return JSON.stringify({ local: dump(localStorage), session: dump(sessionStorage), cookie: document.cookie });
  })()`);
}

export interface StaticSite {
  origin: string;
  close(): Promise<void>;
}

/** A throwaway HTML origin on 127.0.0.1 (same site as the account server, different origin). */
export async function staticSite(pages: Record<string, string>): Promise<StaticSite> {
  const server = http.createServer((req, res) => {
    const body = pages[new URL(req.url ?? '/', 'http://x').pathname];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Fills and submits the sign-in form, then waits for the account page. */
export async function signIn(
  page: Page,
  base: string,
  username: string,
  password: string,
  mode: 'token' | 'session',
): Promise<void> {
  await page.goto(`${base}/signin`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.locator(`#mode-${mode}`).check();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/account`);
  await page.locator('#username').filter({ hasText: username }).waitFor();
}

export async function newPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  context.setDefaultTimeout(10_000);
  return { context, page: await context.newPage() };
}
