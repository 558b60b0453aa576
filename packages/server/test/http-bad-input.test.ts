// Bad input of every kind gets a 4xx with a stable code; never a 500, never a crash, never a leak.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { securityHeaders } from '../src/http/security.js';
import {
  type Answer,
  call,
  registerAndLogin,
  sendableHeader,
  startTestServer,
  type TestServer,
} from './helpers.js';

const CODES = new Set([
  'invalid_request',
  'weak_password',
  'username_taken',
  'invalid_credentials',
  'too_many_attempts',
  'invalid_refresh_token',
  'refresh_token_reused',
  'unauthorized',
  'invalid_token',
  'csrf_failed',
  'not_found',
  'unsupported_media_type',
  'payload_too_large',
]);

let srv: TestServer;
let access: string;
before(async () => {
  srv = await startTestServer({ loginMaxFailuresPerAccount: 1000, loginMaxFailuresPerIp: 100_000 });
  access = (await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' })).login.body.access_token;
});
after(async () => {
  await srv.close();
});

function assertClean(res: Answer, what: string): void {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: status ${res.status}`);
  assert.equal(typeof res.body, 'object', `${what}: JSON error body`);
  assert.ok(CODES.has(res.body.error), `${what}: stable code, got ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.message, 'string');
  const text = JSON.stringify(res.body);
  assert.ok(!/at .*\.(ts|js):\d+/.test(text) && !text.includes('node_modules'), `${what}: no stack trace`);
}

const ROUTES: [string, string][] = [
  ['POST', '/auth/register'],
  ['POST', '/auth/login'],
  ['POST', '/auth/refresh'],
  ['POST', '/auth/password'],
  ['POST', '/auth/logout'],
  ['POST', '/auth/logout-all'],
];

describe('malformed requests', () => {
  it('malformed JSON, wrong content types, huge bodies', async () => {
    const raws = [
      '{',
      '{"username":',
      'null',
      '[]',
      '"x"',
      '1e309',
      '{"__proto__":{"admin":true}}',
      '\u0000',
      '{"a":1}{"b":2}',
    ];
    for (const [method, path] of ROUTES) {
      for (const raw of raws) {
        const res = await call(srv.url, method, path, {
          rawBody: raw,
          headers: { 'content-type': 'application/json' },
        });
        assertClean(res, `${path} ${raw}`);
      }
      assertClean(
        await call(srv.url, method, path, { rawBody: 'x', headers: { 'content-type': 'application/xml' } }),
        `${path} xml`,
      );
      const huge = await call(srv.url, method, path, {
        rawBody: JSON.stringify({ username: 'a'.repeat(100_000), password: 'b' }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(huge.status, 413, path);
      assert.equal(huge.body.error, 'payload_too_large');
    }
  });

  it('wrong types and odd values in every field', async () => {
    const values: unknown[] = [
      null,
      0,
      -1,
      1.5,
      true,
      [],
      {},
      ['a'],
      { $gt: '' },
      '',
      'a'.repeat(5000),
      '\u0000',
      '\ud800',
      '🦄'.repeat(100),
    ];
    for (const v of values) {
      assertClean(
        await call(srv.url, 'POST', '/auth/register', { body: { username: v, password: v } }),
        `register ${JSON.stringify(v)}`,
      );
      assertClean(
        await call(srv.url, 'POST', '/auth/login', { body: { username: v, password: 'x' } }),
        `login ${JSON.stringify(v)}`,
      );
      assertClean(
        await call(srv.url, 'POST', '/auth/login', {
          body: { username: 'someone', password: 'pw', mode: v },
        }),
        `mode ${JSON.stringify(v)}`,
      );
      assertClean(
        await call(srv.url, 'POST', '/auth/refresh', { body: { refresh_token: v } }),
        `refresh ${JSON.stringify(v)}`,
      );
    }
  });

  it('garbage tokens, headers and cookies', async () => {
    const tokens = [
      '',
      ' ',
      'null',
      'Bearer',
      'eyJ',
      'a.b.c',
      'a.b.c.d',
      `${access}x`,
      access.replace(/\.[^.]+$/, '.'),
      `${access.split('.').slice(0, 2).join('.')}.${'A'.repeat(86)}`,
      'x'.repeat(9000),
      '\u00e9t\u00e9.\u00e9t\u00e9',
    ];
    let sent = 0;
    for (const t of tokens) {
      for (const header of [`Bearer ${t}`, t, `Basic ${t}`, `bearer  ${t}`].filter(sendableHeader)) {
        const res = await call(srv.url, 'GET', '/auth/me', { headers: { authorization: header } });
        sent++;
        assert.ok(
          res.status === 401 || res.status === 400 || res.status === 431,
          `${header.slice(0, 40)}: ${res.status}`,
        );
        if (res.status === 401) assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
      for (const name of ['tessera_session', 'tessera_refresh']) {
        const res = await call(srv.url, 'GET', '/auth/me', {
          headers: { cookie: `${name}=${encodeURIComponent(t)}` },
        });
        assertClean(res, `cookie ${name}`);
      }
    }
    assert.ok(sent >= tokens.length * 3, `only ${sent} authorization headers were sent`);
    assertClean(
      await call(srv.url, 'GET', '/auth/me', { headers: { cookie: 'tessera_session=%E0%A4%A' } }),
      'bad cookie encoding',
    );
    assertClean(
      await call(srv.url, 'DELETE', `/auth/sessions/${'x'.repeat(300)}`, {
        headers: { authorization: `Bearer ${access}` },
      }),
      'long id',
    );
    assertClean(
      await call(srv.url, 'DELETE', '/auth/sessions/..%2F..%2Fetc', {
        headers: { authorization: `Bearer ${access}` },
      }),
      'path id',
    );
    assertClean(await call(srv.url, 'GET', '/auth/revocations?cursor=abc'), 'cursor');
    assertClean(await call(srv.url, 'GET', '/auth/revocations?cursor=-1'), 'cursor');
    assertClean(await call(srv.url, 'GET', '/nope'), 'unknown path');
  });

  it('property: any JSON value as any route body gives a clean 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        fc.jsonValue({ maxDepth: 3 }),
        async ([method, path], value) => {
          const res = await call(srv.url, method, path, {
            rawBody: JSON.stringify(value),
            headers: { 'content-type': 'application/json', authorization: 'Bearer junk' },
          });
          if (res.status < 400) return; // e.g. a valid-looking refresh body cannot succeed; anything < 400 would be caught below
          assertClean(res, `${path} ${JSON.stringify(value).slice(0, 80)}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('property: login with arbitrary strings never answers 5xx and never logs in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 80, unit: 'grapheme' }),
        fc.string({ maxLength: 80, unit: 'binary' }),
        async (username, password) => {
          const res = await call(srv.url, 'POST', '/auth/login', { body: { username, password } });
          assert.notEqual(res.status, 200);
          assertClean(res, 'login');
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('health, readiness and metrics', () => {
  it('answer', async () => {
    assert.deepEqual((await call(srv.url, 'GET', '/healthz')).body, { status: 'ok' });
    const ready = await call(srv.url, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.store, 'sqlite');
    const metrics = await fetch(`${srv.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /^tessera_logins_total\{result="ok",mode="token"\} \d+$/m);
    assert.match(metrics, /# TYPE tessera_revocation_stream_clients gauge/);
    // Every metric served says what it counts.
    const names = new Set(
      metrics
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map((l) => /^[a-z_]+/.exec(l)![0]),
    );
    assert.ok(names.has('tessera_registrations_total'), 'a registration was counted');
    for (const name of names) assert.match(metrics, new RegExp(`^# HELP ${name} \\S`, 'm'), name);
  });

  it('every answer carries the security headers', async () => {
    for (const path of ['/healthz', '/auth/me', '/nope', '/.well-known/jwks.json']) {
      const res = await call(srv.url, 'GET', path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
    }
  });

  it('the revocation stream carries them too', async () => {
    const secure = await startTestServer({ secureCookies: true });
    const controller = new AbortController();
    try {
      const res = await fetch(`${secure.url}/auth/revocations/stream`, { signal: controller.signal });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=/);
      for (const [name, value] of Object.entries(securityHeaders(secure.config)))
        assert.equal(res.headers.get(name), value, name);
    } finally {
      controller.abort();
      await secure.close();
    }
  });
});
