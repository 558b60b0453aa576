import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, startTestServer, type TestServer, uniqueName } from '../../server/test/helpers.js';
import {
  describeError,
  isClientError,
  loginRequest,
  logoutRequest,
  memoryStorage,
  refreshRequest,
  TesseraClient,
  type TesseraClientError,
} from '../src/index.js';

let server: TestServer;

/** A fetch that records every call and can answer for a fake API origin. */
function recordingFetch(api?: (req: Request, n: number) => Response) {
  const calls: { url: string; method: string; auth: string | null }[] = [];
  let apiCalls = 0;
  const f: typeof fetch = async (input, init) => {
    const req = new Request(input, init);
    calls.push({ url: req.url, method: req.method, auth: req.headers.get('authorization') });
    if (api && req.url.startsWith('https://api.test/')) return api(req, apiCalls++);
    return fetch(req);
  };
  return { f, calls, count: (path: string) => calls.filter((c) => new URL(c.url).pathname === path).length };
}

async function newUser(): Promise<string> {
  const username = uniqueName('sdk');
  const c = new TesseraClient({ issuer: server.url });
  await c.register(username, PASSWORD);
  return username;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<TesseraClientError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isClientError(err), `expected a TesseraClientError, got ${String(err)}`);
    assert.equal(err.code, code);
    return err;
  }
  assert.fail(`expected ${code}`);
}

before(async () => {
  server = await startTestServer({ accessTokenTtl: 60 });
});
after(async () => {
  await server.close();
});

describe('request builders', () => {
  test('bodies are JSON, CSRF header only on writes, cookies only when asked', () => {
    const login = loginRequest('https://a.test/', {
      username: 'u',
      password: 'p',
      mode: 'token',
      delivery: 'header',
    });
    assert.equal(login.url, 'https://a.test/auth/login');
    assert.equal((login.init.headers as Record<string, string>)['content-type'], 'application/json');
    assert.equal(login.init.credentials, 'omit');
    const refresh = refreshRequest('https://a.test', { csrfToken: 'c' });
    assert.equal(refresh.init.body, undefined);
    assert.equal(refresh.init.credentials, 'include');
    assert.equal((refresh.init.headers as Record<string, string>)['x-csrf-token'], 'c');
    const logout = logoutRequest('https://a.test', { bearer: 't' });
    assert.equal((logout.init.headers as Record<string, string>).authorization, 'Bearer t');
  });

  test('a message from another tab brings only the fields tabs share, never a session token', async () => {
    const issuer = 'https://tabs.test';
    const rec = recordingFetch();
    const c = new TesseraClient({
      issuer,
      delivery: 'cookie',
      autoRefresh: false,
      fetch: async (input, init) => {
        await rec.f(input, init);
        return new Response(JSON.stringify({ error: 'unauthorized', message: 'x' }), {
          status: 401,
          headers: { 'content-type': 'application/json' },
        });
      },
    });
    const forger = new BroadcastChannel(`tessera:${issuer}`);
    try {
      const landed = new Promise<void>((resolve) => c.onChange(() => resolve()));
      forger.postMessage({
        type: 'state',
        state: { mode: 'session', sessionId: 'planted', sessionToken: 'attacker-session-token' },
      });
      await landed;
      await c.me().catch(() => undefined);
      assert.ok(rec.calls.length > 0, 'a request went out');
      for (const call of rec.calls) assert.equal(call.auth, null, 'no planted bearer token');
      const seen: (string | undefined)[] = [];
      const last = new Promise<void>((resolve) =>
        c.onChange((session) => {
          seen.push(session?.sessionId);
          if (session?.sessionId === 'last') resolve();
        }),
      );
      forger.postMessage({ type: 'state', state: { mode: 'session', sessionId: 'typed', csrfToken: 42 } });
      forger.postMessage({ type: 'state', state: { mode: 'session', sessionId: 'last' } });
      await last; // messages arrive in order: the one before was seen, or dropped
      assert.deepEqual(seen, ['last'], 'a field of the wrong type: the message is dropped');
    } finally {
      forger.close();
      c.close();
    }
  });

  test('a wrong option is a TypeError at construction', () => {
    assert.throws(() => new TesseraClient({ issuer: 'ftp://x' }), TypeError);
    assert.throws(
      () => new TesseraClient({ issuer: 'https://x', delivery: 'cookie', storage: memoryStorage() }),
      TypeError,
    );
  });
});

describe('Node SDK, header delivery', () => {
  test('register errors carry stable codes and human text', async () => {
    const username = await newUser();
    const c = new TesseraClient({ issuer: server.url });
    await rejectsWith(c.register(username, PASSWORD), 'username_taken');
    const weak = await rejectsWith(c.register(uniqueName('w'), 'short'), 'weak_password');
    assert.match(describeError(weak), /at least 8/);
    const wrong = await rejectsWith(c.login(username, 'not the password'), 'invalid_credentials');
    assert.equal(describeError(wrong), 'Wrong username or password.');
    await rejectsWith(c.me(), 'not_signed_in');
    await rejectsWith(c.email(), 'not_signed_in');
  });

  test('token mode: login, me, sessions, fetch wrapper, logout; tokens only in storage', async () => {
    const username = await newUser();
    const storage = memoryStorage();
    const rec = recordingFetch();
    const c = new TesseraClient({ issuer: server.url, fetch: rec.f, storage });
    const result = await c.login(username, PASSWORD);
    assert.equal(result.mode, 'token');
    const saved = await storage.load();
    assert.ok(saved?.refreshToken && saved.accessToken);
    const me = await c.me();
    assert.equal(me.user.username, username);
    assert.equal(me.session.id, result.sessionId);
    assert.deepEqual(await c.email(), { email: null, emailVerified: false }, 'an account without an address');
    const sessions = await c.sessions();
    assert.equal(sessions.filter((s) => s.current).length, 1);
    // The fetch wrapper puts the access token in a Bearer header for another server.
    const res = await c.fetch(`${server.url}/auth/me`);
    assert.equal(res.status, 200);
    assert.equal(rec.calls.at(-1)?.auth, `Bearer ${saved.accessToken}`);
    await c.logout();
    assert.equal(c.session, null);
    assert.equal(await storage.load(), null);
    // The refresh token is dead on the server too.
    const again = await fetch(`${server.url}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: saved.refreshToken }),
    });
    assert.equal(again.status, 401);
  });

  test('refreshes shortly before expiry, once for many concurrent callers', async () => {
    const username = await newUser();
    const rec = recordingFetch();
    const clock = { skew: 0 };
    const c = new TesseraClient({ issuer: server.url, fetch: rec.f, now: () => Date.now() + clock.skew });
    await c.login(username, PASSWORD);
    const first = await c.getAccessToken();
    assert.equal(rec.count('/auth/refresh'), 0);
    clock.skew = 55_000; // 5 s left of 60: inside the margin
    const tokens = await Promise.all(Array.from({ length: 10 }, () => c.getAccessToken()));
    assert.equal(rec.count('/auth/refresh'), 1);
    assert.equal(new Set(tokens).size, 1);
    assert.notEqual(tokens[0], first);
    assert.equal((await c.me()).user.username, username);
  });

  test('a 401 from an API server triggers one refresh and one retry, never a loop', async () => {
    const username = await newUser();
    const always401 = recordingFetch(() => new Response('', { status: 401 }));
    const c = new TesseraClient({ issuer: server.url, fetch: always401.f });
    await c.login(username, PASSWORD);
    const res = await c.fetch('https://api.test/hello');
    assert.equal(res.status, 401);
    assert.equal(always401.calls.filter((x) => x.url.startsWith('https://api.test/')).length, 2);
    assert.equal(always401.count('/auth/refresh'), 1);

    const once = recordingFetch(
      (_req, n) => new Response(n === 0 ? '' : '{"ok":true}', { status: n === 0 ? 401 : 200 }),
    );
    const d = new TesseraClient({ issuer: server.url, fetch: once.f });
    await d.login(username, PASSWORD);
    const ok = await d.fetch('https://api.test/hello', { method: 'POST', body: '{}' });
    assert.equal(ok.status, 200);
    const apiCalls = once.calls.filter((x) => x.url.startsWith('https://api.test/'));
    assert.equal(apiCalls.length, 2);
    assert.notEqual(apiCalls[0]?.auth, apiCalls[1]?.auth);
  });

  test('a stored login survives a restart; a reused refresh token ends the family', async () => {
    const username = await newUser();
    const storage = memoryStorage();
    const a = new TesseraClient({ issuer: server.url, storage });
    await a.login(username, PASSWORD);
    const stolen = (await storage.load())?.refreshToken;
    const b = new TesseraClient({ issuer: server.url, storage });
    assert.equal(await b.restore(), true);
    await b.refresh();
    assert.equal((await b.me()).user.username, username);
    // Past the grace window, the old refresh token is a theft signal.
    server.clock.now += 60_000;
    const thief = new TesseraClient({
      issuer: server.url,
      storage: memoryStorage({ mode: 'token', sessionId: 'x', refreshToken: stolen }),
    });
    assert.equal(await thief.restore(), false);
    server.clock.now -= 60_000;
    await rejectsWith(b.refresh(), 'invalid_refresh_token');
    assert.equal(b.session, null);
  });

  test('session mode: the session token is the Bearer; logout ends it', async () => {
    const username = await newUser();
    const storage = memoryStorage();
    const c = new TesseraClient({ issuer: server.url, mode: 'session', storage });
    const r = await c.login(username, PASSWORD);
    assert.equal(r.mode, 'session');
    assert.ok((await storage.load())?.sessionToken);
    assert.equal((await c.me()).session.mode, 'session');
    await assert.rejects(c.getAccessToken(), TypeError);
    await c.logout();
    await rejectsWith(c.me(), 'not_signed_in');
  });

  test('logoutAll from one client signs out another; endSession ends one', async () => {
    const username = await newUser();
    const a = new TesseraClient({ issuer: server.url, mode: 'session' });
    const b = new TesseraClient({ issuer: server.url });
    const c = new TesseraClient({ issuer: server.url });
    await a.login(username, PASSWORD);
    await b.login(username, PASSWORD);
    await c.login(username, PASSWORD);
    const cId = c.session?.sessionId;
    assert.ok(cId);
    await a.endSession(cId);
    await rejectsWith(c.me(), 'invalid_token');
    assert.equal(c.session, null);
    await b.logoutAll();
    assert.equal(b.session, null);
    await rejectsWith(a.me(), 'invalid_token');
    assert.equal(a.session, null);
  });

  test('changePassword keeps this login and ends the others', async () => {
    const username = await newUser();
    const a = new TesseraClient({ issuer: server.url });
    const b = new TesseraClient({ issuer: server.url });
    await a.login(username, PASSWORD);
    await b.login(username, PASSWORD);
    await rejectsWith(a.changePassword('wrong password', 'a brand new passphrase'), 'invalid_credentials');
    await a.changePassword(PASSWORD, 'a brand new passphrase');
    assert.equal((await a.me()).user.username, username);
    await rejectsWith(b.me(), 'invalid_token');
    const c = new TesseraClient({ issuer: server.url });
    await c.login(username, 'a brand new passphrase');
  });
});
