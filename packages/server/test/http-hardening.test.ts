// Brute force, enumeration, rehash, audit trail and graceful shutdown.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import argon2 from 'argon2';
import { PASSWORD_PARAMS } from '../src/domain/passwords.js';
import { call, PASSWORD, registerAndLogin, startTestServer, type TestServer, uniqueName } from './helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({
    trustProxy: ['127.0.0.1'],
    loginMaxFailuresPerAccount: 5,
    loginMaxFailuresPerIp: 50,
  });
});
after(async () => {
  await srv.close();
});

const login = (username: string, password: string, ip = '198.51.100.7') =>
  call(srv.url, 'POST', '/auth/login', { body: { username, password }, headers: { 'x-forwarded-for': ip } });

describe('brute force', () => {
  it('locks an account after 5 failures, even against the right password, with Retry-After', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    for (let i = 0; i < 5; i++) assert.equal((await login(username, `wrong ${i} password`)).status, 401);
    const locked = await login(username, PASSWORD);
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error, 'too_many_attempts');
    assert.equal(locked.headers.get('retry-after'), '1');
    srv.clock.now += 1100;
    assert.equal((await login(username, 'wrong again password')).status, 401);
    const doubled = await login(username, PASSWORD);
    assert.equal(doubled.status, 429);
    assert.equal(doubled.headers.get('retry-after'), '2', 'the lock doubles with each further failure');
    srv.clock.now += 2100;
    assert.equal(
      (await login(username, PASSWORD)).status,
      200,
      'the right password works once the lock ends',
    );
  });

  it('a thousand failed logins lock one account and leave others served', async () => {
    const victim = (await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' })).username;
    const other = (await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' })).username;
    const statuses = new Map<number, number>();
    const started = performance.now();
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          login(victim, `guess-${batch}-${i}-password`, `203.0.113.${(batch * 50 + i) % 250}`),
        ),
      );
      for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      // someone else, from elsewhere, is still served promptly
      const t = performance.now();
      assert.equal((await login(other, PASSWORD, '192.0.2.10')).status, 200);
      assert.ok(performance.now() - t < 2000, 'others are answered within 2 s');
    }
    assert.equal((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0), 1000);
    assert.ok(
      (statuses.get(429) ?? 0) >= 900,
      `most attempts refused by the lock: ${JSON.stringify([...statuses])}`,
    );
    assert.equal((await login(victim, PASSWORD, '192.0.2.10')).status, 429);
    assert.ok(performance.now() - started < 60_000);
  });

  it('per-IP throttling stops one address spraying many accounts', async () => {
    const ip = '198.51.100.99';
    let refused = 0;
    for (let i = 0; i < 60; i++) {
      const res = await login(uniqueName('spray'), 'some password here', ip);
      if (res.status === 429) refused++;
    }
    assert.ok(refused >= 9, `refused ${refused}`);
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    assert.equal((await login(username, PASSWORD, ip)).status, 429, 'the locked address cannot log in');
    assert.equal((await login(username, PASSWORD, '198.51.100.100')).status, 200);
  });

  it('too many invalid refresh tokens from one address get 429', async () => {
    let last = 0;
    for (let i = 0; i < 105; i++) {
      last = (
        await call(srv.url, 'POST', '/auth/refresh', {
          body: { refresh_token: `${'a'.repeat(22)}.${'b'.repeat(43)}` },
          headers: { 'x-forwarded-for': '198.51.100.50' },
        })
      ).status;
    }
    assert.equal(last, 429);
  });
});

describe('no user enumeration', () => {
  it('unknown user and wrong password both pay for an argon2 verification', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const times = { unknown: [] as number[], wrong: [] as number[] };
    for (let i = 0; i < 4; i++) {
      for (const kind of ['unknown', 'wrong'] as const) {
        const t = performance.now();
        const res = await login(
          kind === 'unknown' ? uniqueName('ghost') : username,
          'not it at all',
          `192.0.2.${100 + i}`,
        );
        times[kind].push(performance.now() - t);
        assert.equal(res.status, 401);
      }
      srv.clock.now += 60 * 60_000; // keep the account lock out of the way
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Without the dummy hash, the unknown path would be about 100 times faster.
    assert.ok(median(times.unknown) > 0.5 * median(times.wrong), JSON.stringify(times));
  });

  it('registration of a taken name says only that', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const res = await call(srv.url, 'POST', '/auth/register', {
      body: { username, password: 'another fine passphrase' },
    });
    assert.deepEqual(res.body, { error: 'username_taken', message: 'That username is taken.' });
  });
});

describe('passwords', () => {
  it('are rehashed at login when the parameters have changed', async () => {
    const username = uniqueName('legacy');
    const weak = await argon2.hash(PASSWORD, {
      type: argon2.argon2id,
      memoryCost: 4096,
      timeCost: 1,
      parallelism: 1,
    });
    await srv.app.store.createUser({
      id: `legacy${Date.now()}x`.padEnd(22, 'x'),
      username,
      passwordHash: weak,
      roles: ['user'],
      disabled: false,
      createdAt: 1,
      passwordChangedAt: 1,
    });
    assert.equal((await login(username, PASSWORD, '192.0.2.200')).status, 200);
    const after = await srv.app.store.getUserByUsername(username);
    assert.notEqual(after?.passwordHash, weak);
    assert.match(
      after!.passwordHash,
      new RegExp(
        `m=${PASSWORD_PARAMS.memoryCost},p=${PASSWORD_PARAMS.parallelism},t=${PASSWORD_PARAMS.timeCost}`,
      ),
    );
    assert.equal((await login(username, PASSWORD, '192.0.2.200')).status, 200);
  });
});

describe('audit trail', () => {
  it('records security events with time, user, session, IP and user agent, and no secret', async () => {
    const username = uniqueName('audited');
    await call(srv.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } });
    const user = await srv.app.store.getUserByUsername(username);
    await login(username, 'a wrong password');
    const ok = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
      headers: { 'x-forwarded-for': '192.0.2.33', 'user-agent': 'audit-test/1' },
    });
    const bearer = { authorization: `Bearer ${ok.body.access_token}` };
    const first = await call(srv.url, 'POST', '/auth/refresh', {
      body: { refresh_token: ok.body.refresh_token },
    });
    srv.clock.now += 11_000;
    await call(srv.url, 'POST', '/auth/refresh', { body: { refresh_token: ok.body.refresh_token } }); // reuse
    const again = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'session', delivery: 'header' },
    });
    await call(srv.url, 'POST', '/auth/password', {
      headers: { authorization: `Bearer ${again.body.session_token}` },
      body: { current_password: PASSWORD, new_password: 'a brand new passphrase' },
    });
    await call(srv.url, 'POST', '/auth/logout', {
      headers: { authorization: `Bearer ${again.body.session_token}` },
    });
    await srv.app.keys.rotate(srv.clock.now);

    const events = await srv.app.store.listAuditEvents({ userId: user!.id, limit: 50 });
    const types = events.map((e) => e.type).reverse();
    assert.deepEqual(types, [
      'register',
      'login_failed',
      'login_ok',
      'refresh_reuse',
      'login_ok',
      'password_change',
      'logout',
    ]);
    const loginOk = events.find((e) => e.type === 'login_ok' && e.detail === 'token')!;
    assert.equal(loginOk.ip, '192.0.2.33');
    assert.equal(loginOk.userAgent, 'audit-test/1');
    assert.equal(loginOk.sessionId, ok.body.session_id);
    assert.equal(events.find((e) => e.type === 'login_failed')?.detail, 'wrong password');
    const rotation = await srv.app.store.listAuditEvents({ type: 'key_rotation', limit: 1 });
    assert.match(rotation[0]?.detail ?? '', /^current kid /);
    const everything = JSON.stringify(await srv.app.store.listAuditEvents({ limit: 10_000 }));
    for (const secret of [
      PASSWORD,
      'a brand new passphrase',
      'a wrong password',
      ok.body.access_token,
      ok.body.refresh_token,
      first.body.refresh_token,
      again.body.session_token,
      bearer.authorization,
    ]) {
      assert.ok(!everything.includes(secret), 'no secret in the audit trail');
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests before closing', async () => {
    const own = await startTestServer();
    const { username } = await registerAndLogin(own.url, { mode: 'token', delivery: 'header' });
    const inFlight = call(own.url, 'POST', '/auth/login', { body: { username, password: PASSWORD } });
    await new Promise((r) => setTimeout(r, 15));
    const closing = own.close();
    const res = await inFlight;
    await closing;
    assert.equal(res.status, 200);
    await assert.rejects(fetch(`${own.url}/healthz`));
  });
});
