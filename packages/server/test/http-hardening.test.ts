// Brute force, enumeration, rehash, audit trail and graceful shutdown.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import argon2 from 'argon2';
import { loadConfig } from '../src/config.js';
import { PASSWORD_PARAMS } from '../src/domain/passwords.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { createTessera } from '../src/tessera.js';
import {
  type Answer,
  call,
  freePort,
  PASSWORD,
  registerAndLogin,
  SECRET,
  startTestServer,
  type TestServer,
  uniqueName,
} from './helpers.js';

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
  it('locks an account after 5 failures for the rest of the window, even against the right password', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    for (let i = 0; i < 5; i++) assert.equal((await login(username, `wrong ${i} password`)).status, 401);
    const locked = await login(username, PASSWORD);
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error, 'too_many_attempts');
    assert.equal(locked.headers.get('retry-after'), '900');
    srv.clock.now += 60_000;
    assert.equal((await login(username, PASSWORD)).status, 429, 'still locked a minute later');
    srv.clock.now += 15 * 60_000;
    assert.equal(
      (await login(username, PASSWORD)).status,
      200,
      'the right password works once the lock ends',
    );
  });

  it('a burst of 60 guesses at once gets at most 5 checked; the right one, last, does not log in', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const guesses = [...Array.from({ length: 59 }, (_, i) => `wrong guess ${i} pw`), PASSWORD];
    const answers = await Promise.all(guesses.map((g, i) => login(username, g, `203.0.113.${i + 1}`)));
    const checked = answers.filter((a) => a.status === 401 || a.status === 200).length;
    assert.ok(checked <= 5, `${checked} passwords were checked`);
    for (const a of answers.filter((a) => a.status === 429)) {
      assert.equal(a.body.error, 'too_many_attempts');
      assert.ok(Number(a.headers.get('retry-after')) >= 1);
    }
    assert.equal((await login(username, PASSWORD, '203.0.113.200')).status, 429, 'the account is locked');
  });

  it('a burst from one address over many accounts gets at most the per-IP limit checked', async () => {
    const ip = '198.51.100.150';
    const answers = await Promise.all(
      Array.from({ length: 80 }, (_, i) => login(uniqueName(`burst${i}`), 'some password here', ip)),
    );
    const checked = answers.filter((a) => a.status === 401).length;
    assert.ok(checked <= 50, `${checked} passwords were checked from one address`);
    assert.equal(checked + answers.filter((a) => a.status === 429).length, 80);
  });

  it('a thousand failed logins lock one account and leave others served', async () => {
    const victim = (await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' })).username;
    const other = (await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' })).username;
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          login(victim, `guess-${batch}-${i}-password`, `203.0.113.${(batch * 50 + i) % 250}`),
        ),
      );
      for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      // someone else, from elsewhere, is still served promptly
      assert.equal((await login(other, PASSWORD, '192.0.2.10')).status, 200);
    }
    assert.equal((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0), 1000);
    assert.ok(
      (statuses.get(429) ?? 0) >= 900,
      `most attempts refused by the lock: ${JSON.stringify([...statuses])}`,
    );
    assert.equal((await login(victim, PASSWORD, '192.0.2.10')).status, 429);
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

  it('counts an IPv6 client by its /64: spraying from the addresses of one prefix is one client', async () => {
    let refused = 0;
    for (let i = 1; i <= 60; i++) {
      const res = await login(uniqueName('spray6'), 'some password here', `2001:db8:7:1::${i.toString(16)}`);
      if (res.status === 429) refused++;
    }
    assert.ok(refused >= 9, `refused ${refused}`);
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    assert.equal((await login(username, PASSWORD, '2001:db8:7:1:ffff::1')).status, 429, 'the same /64');
    assert.equal((await login(username, PASSWORD, '2001:db8:7:2::1')).status, 200, 'another /64');
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

  it('a burst of invalid refresh tokens from one address gets at most 100 checked', async () => {
    const answers = await Promise.all(
      Array.from({ length: 160 }, (_, i) =>
        call(srv.url, 'POST', '/auth/refresh', {
          body: { refresh_token: `${String(i).padStart(22, 'a')}.${'b'.repeat(43)}` },
          headers: { 'x-forwarded-for': '198.51.100.51' },
        }),
      ),
    );
    const checked = answers.filter((a) => a.status === 401).length;
    assert.ok(checked <= 100, `${checked} refresh tokens were checked`);
    assert.equal(checked + answers.filter((a) => a.status === 429).length, 160);
  });

  it('a burst of current-password guesses on a password change gets at most 5 checked', async () => {
    const { login } = await registerAndLogin(srv.url, { mode: 'session', delivery: 'header' });
    const guesses = [...Array.from({ length: 29 }, (_, i) => `wrong current ${i}`), PASSWORD];
    const answers = await Promise.all(
      guesses.map((current) =>
        call(srv.url, 'POST', '/auth/password', {
          headers: { authorization: `Bearer ${login.body.session_token}` },
          body: { current_password: current, new_password: 'an entirely new passphrase' },
        }),
      ),
    );
    const checked = answers.filter((a) => a.status === 401 || a.status === 204).length;
    assert.ok(checked <= 5, `${checked} current passwords were checked`);
    assert.ok(answers.every((a) => [401, 204, 429].includes(a.status)));
  });
});

describe('no user enumeration', () => {
  // That both paths cost one argon2 verification is measured in bench/enumeration.ts, not timed here.
  it('unknown user, wrong password and disabled account answer alike', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const disabled = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const user = await srv.app.stores.users.getUserByUsername(disabled.username);
    await srv.app.auth.setDisabled(user!.id, true);
    const answers = [
      await login(uniqueName('ghost'), 'not it at all', '192.0.2.101'),
      await login(username, 'not it at all', '192.0.2.102'),
      await login(disabled.username, PASSWORD, '192.0.2.103'),
    ];
    for (const a of answers) {
      assert.equal(a.status, 401);
      assert.deepEqual(a.body, answers[0]!.body);
    }
  });

  it('the lockout answers alike for a known and an unknown address, whatever their letter case', async () => {
    const { username } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const user = await srv.app.stores.users.getUserByUsername(username);
    const known = `${username}@example.test`;
    assert.ok(await srv.app.stores.users.setEmail(user!.id, known, true));
    const unknown = `${uniqueName('ghost')}@example.test`;
    const spellings = (email: string) => [
      email,
      email.toUpperCase(),
      `${email[0]!.toUpperCase()}${email.slice(1)}`,
      ` ${email}`,
      email.replace('@example', '@EXAMPLE'),
      email.toUpperCase(),
    ];
    const statuses = async (email: string, ip: string) => {
      const out: number[] = [];
      for (const spelling of spellings(email)) out.push((await login(spelling, 'not it at all', ip)).status);
      return out;
    };
    const forKnown = await statuses(known, '192.0.2.111');
    const forUnknown = await statuses(unknown, '192.0.2.112');
    assert.deepEqual(forKnown, [401, 401, 401, 401, 401, 429]);
    assert.deepEqual(forUnknown, forKnown);
  });

  it('refuses names that mix scripts or are drawn only in Latin look-alikes', async () => {
    const register = (username: string) =>
      call(srv.url, 'POST', '/auth/register', {
        body: { username, password: 'a perfectly fine passphrase' },
        headers: { 'x-forwarded-for': '192.0.2.88' },
      });
    const tag = String(process.pid);
    assert.equal((await register(`paypal${tag}`)).status, 201);
    for (const lookalike of [
      `\u0440\u0430\u0443\u0440\u0430l${tag}`, // Cyrillic раура + Latin l
      `\u0440\u0430\u0443\u0440\u0430${tag}`, // all Cyrillic, every letter a Latin look-alike
      `p\u03b1yp\u03b1l${tag}`, // Greek alphas among Latin
      `a\u0661ice${tag}`, // an Arabic-Indic one for the l
      `\u0570\u057d\u0581\u0585${tag}`, // all Armenian, drawn like "hugo"
    ]) {
      const res = await register(lookalike);
      assert.equal(res.status, 400, lookalike);
      assert.equal(res.body.error, 'invalid_request');
    }
    for (const fine of [`\u0438\u0432\u0430\u043d${tag}`, `\u5c71\u7530taro${tag}`, `\ud55c\uae00${tag}`]) {
      assert.equal((await register(fine)).status, 201, `${fine} is one script (or an allowed mix)`);
    }
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
  it('are checked in the normalised form that is hashed', async () => {
    const register = (username: string, password: string) =>
      call(srv.url, 'POST', '/auth/register', {
        body: { username, password },
        headers: { 'x-forwarded-for': '192.0.2.77' },
      });
    const wide = await register(
      uniqueName('wide'),
      '\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13',
    );
    assert.equal(wide.status, 400, 'full-width password123 is the common password it folds to');
    assert.equal(wide.body.error, 'weak_password');
    const combining = await register(uniqueName('comb'), 'e\u0301'.repeat(4));
    assert.equal(combining.body.error, 'weak_password', '8 code points that are 4 characters');
    // Full-width forms of ASCII letters and digits sit 0xfee0 above them.
    const wideOf = (text: string) =>
      [...text].map((c) => (/[a-z0-9]/.test(c) ? String.fromCharCode(c.charCodeAt(0) + 0xfee0) : c)).join('');
    const name = uniqueName('widename');
    const asName = await register(name, wideOf(name));
    assert.equal(asName.body.error, 'weak_password', 'the username in full width is still the username');
    const fine = await register(uniqueName('widefine'), wideOf('a rather long passphrase'));
    assert.equal(fine.status, 201);
  });

  /** An account whose password hash has weaker parameters than the current ones. */
  async function legacyAccount(prefix: string): Promise<{ id: string; username: string; weak: string }> {
    const username = uniqueName(prefix);
    const id = `${prefix}${Date.now()}x`.padEnd(22, 'x');
    const weak = await argon2.hash(PASSWORD, {
      type: argon2.argon2id,
      memoryCost: 4096,
      timeCost: 1,
      parallelism: 1,
    });
    await srv.app.stores.users.createUser({
      id,
      username,
      passwordHash: weak,
      roles: ['user'],
      disabled: false,
      createdAt: 1,
      passwordChangedAt: 1,
      email: null,
      emailVerified: false,
    });
    return { id, username, weak };
  }

  it('are rehashed at login when the parameters have changed', async () => {
    const { username, weak } = await legacyAccount('legacy');
    assert.equal((await login(username, PASSWORD, '192.0.2.200')).status, 200);
    const after = await srv.app.stores.users.getUserByUsername(username);
    assert.notEqual(after?.passwordHash, weak);
    assert.match(
      after!.passwordHash,
      new RegExp(
        `m=${PASSWORD_PARAMS.memoryCost},p=${PASSWORD_PARAMS.parallelism},t=${PASSWORD_PARAMS.timeCost}`,
      ),
    );
    assert.equal((await login(username, PASSWORD, '192.0.2.200')).status, 200);
  });

  it('are rehashed by one of two logins at once, and both sign in', async () => {
    const { username, weak } = await legacyAccount('legacytwo');
    const users = srv.app.stores.users;
    const set = users.setPasswordHash.bind(users);
    // The first rehash waits for the second login's (which has verified the weak hash too), then
    // writes; the second then finds the hash it verified gone.
    let calls = 0;
    let letFirstGo!: () => void;
    const secondArrived = new Promise<void>((resolve) => {
      letFirstGo = resolve;
    });
    let firstWritten!: Promise<boolean>;
    users.setPasswordHash = (...args) => {
      calls++;
      if (calls === 1) {
        firstWritten = secondArrived.then(() => set(...args));
        return firstWritten;
      }
      letFirstGo();
      return firstWritten.then(() => set(...args));
    };
    try {
      const both = await Promise.all([
        login(username, PASSWORD, '192.0.2.202'),
        login(username, PASSWORD, '192.0.2.202'),
      ]);
      assert.deepEqual(
        both.map((a) => a.status),
        [200, 200],
        'the login whose rehash lost still signs in',
      );
      assert.equal(calls, 2);
    } finally {
      users.setPasswordHash = set;
    }
    assert.notEqual((await users.getUserByUsername(username))?.passwordHash, weak);
  });

  it('are not rehashed over a password changed while the login verified the old one', async () => {
    const { id, username } = await legacyAccount('legacyrace');
    const users = srv.app.stores.users;
    const changed = await argon2.hash(`${PASSWORD} changed`, { type: argon2.argon2id });
    const set = users.setPasswordHash.bind(users);
    // The owner's change lands between the login's verify and its rehash.
    users.setPasswordHash = async (...args) => {
      users.setPasswordHash = set;
      await set(id, changed, 2);
      return set(...args);
    };
    try {
      assert.equal((await login(username, PASSWORD, '192.0.2.201')).status, 401);
    } finally {
      users.setPasswordHash = set;
    }
    const after = await users.getUserById(id);
    assert.equal(after?.passwordHash, changed, 'the change stays');
    assert.equal(after?.passwordChangedAt, 2);
    assert.equal((await login(username, PASSWORD, '192.0.2.201')).status, 401, 'the old password is gone');
    assert.equal((await login(username, `${PASSWORD} changed`, '192.0.2.201')).status, 200);
  });
});

describe('audit trail', () => {
  it('records security events with time, user, session, IP and user agent, and no secret', async () => {
    const username = uniqueName('audited');
    await call(srv.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } });
    const user = await srv.app.stores.users.getUserByUsername(username);
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

    const events = await srv.app.stores.audit.listAuditEvents({ userId: user!.id, limit: 50 });
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
    const rotation = await srv.app.stores.audit.listAuditEvents({ type: 'key_rotation', limit: 1 });
    assert.match(rotation[0]?.detail ?? '', /^current kid /);
    const everything = JSON.stringify(await srv.app.stores.audit.listAuditEvents({ limit: 10_000 }));
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

describe('request logs', () => {
  it('carry the path of a request and never its query string, where mailed links carry tokens', async () => {
    const port = await freePort();
    const config = loadConfig(
      {},
      {
        port,
        issuer: `http://127.0.0.1:${port}`,
        dataDir: mkdtempSync(path.join(tmpdir(), 'tessera-')),
        secret: SECRET,
      },
    );
    const lines: string[] = [];
    const tessera = await createTessera(config, {
      stores: openSqliteStores(':memory:'),
      logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } },
    });
    try {
      const base = await tessera.listen();
      const token = 'LEAKME0123456789abcdefLEAKME';
      for (const page of ['/reset-password', '/confirm-email', '/verify-email'])
        assert.equal((await fetch(`${base}${page}?token=${token}`)).status, 200);
      const logged = lines.join('');
      assert.match(logged, /"url":"\/reset-password\?\[redacted\]"/, 'the request is logged');
      assert.ok(!logged.includes('LEAKME'), 'no token in the log');
    } finally {
      await tessera.close();
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

  it('answers a request that arrives while closing with its own 503', async () => {
    const own = await startTestServer();
    const port = Number(new URL(own.url).port);
    let serverSide: net.Socket | undefined;
    own.app.fastify.server.once('connection', (s: net.Socket) => {
      serverSide = s;
    });
    const socket = net.connect(port, '127.0.0.1');
    socket.setEncoding('latin1');
    let data = '';
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    const request = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`;
    socket.write(request);
    while (!data.includes('{"status":"ok"}')) await once(socket, 'data');
    assert.match(data, /^HTTP\/1\.1 200 /);
    data = '';
    // The next request has begun when the close does, so its connection is not idle and stays
    // open; the rest of it arrives once the server has stopped listening.
    const [head, rest] = [request.slice(0, 20), request.slice(20)];
    socket.write(head);
    // The server has read it (the parser has begun the request) when its side of the socket has
    // taken in both requests' bytes so far.
    while ((serverSide?.bytesRead ?? 0) < request.length + head.length) await delay(5);
    const closing = own.close();
    while (own.app.fastify.server.listening) await delay(5);
    socket.write(rest);
    await once(socket, 'close');
    await closing;
    const split = data.indexOf('\r\n\r\n');
    const [statusLine = '', ...lines] = data.slice(0, split).split('\r\n');
    const headers = new Map(
      lines.map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    assert.match(statusLine, /^HTTP\/1\.1 503 /);
    const body = JSON.parse(data.slice(split + 4));
    assert.equal(body.error, 'unavailable');
    assert.equal(typeof body.message, 'string');
    assert.equal(headers.get('x-content-type-options'), 'nosniff');
    assert.equal(headers.get('cache-control'), 'no-store');
    assert.equal(headers.get('connection'), 'close');
  });
});

describe('an account disabled or its password changed while a login is under way', () => {
  /**
   * A server with a user signed in, and a login of that user during which `meanwhile` runs once:
   * after the login read the user and before it writes its session, so the revoke-all that
   * `meanwhile` does finds nothing of that login to end.
   */
  async function loginDuring(
    meanwhile: (srv: TestServer, signedIn: { first: Answer; userId: string }) => Promise<void>,
  ) {
    const stores = openSqliteStores(':memory:');
    const srv = await startTestServer({}, { stores });
    const { username, login: first } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
    const user = (await stores.users.getUserByUsername(username))!;
    const create = stores.sessions.createSession.bind(stores.sessions);
    stores.sessions.createSession = async (...args) => {
      stores.sessions.createSession = create;
      await meanwhile(srv, { first, userId: user.id });
      return create(...args);
    };
    const login = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
    });
    return { srv, stores, user, username, first, login };
  }

  it('gets no session from that login, and enabling it again revives none', async () => {
    const { srv, stores, user, first, login } = await loginDuring(async (srv, { userId }) => {
      await srv.app.auth.setDisabled(userId, true);
    });
    try {
      assert.equal(login.status, 401);
      assert.equal(login.body.error, 'invalid_credentials');
      assert.equal(await srv.app.auth.setDisabled(user.id, false), true);
      assert.deepEqual(await stores.sessions.listSessions(user.id, srv.clock.now), [], 'no live session');
      const refreshed = await call(srv.url, 'POST', '/auth/refresh', {
        body: { refresh_token: first.body.refresh_token },
      });
      assert.equal(refreshed.status, 401, 'the session from before the disable stays ended');
    } finally {
      await srv.close();
    }
  });

  it('gets no session from a login with the old password when the password changed meanwhile', async () => {
    const { srv, stores, user, username, first, login } = await loginDuring(async (srv, { first: owner }) => {
      const changed = await call(srv.url, 'POST', '/auth/password', {
        headers: { authorization: `Bearer ${owner.body.access_token}` },
        body: { current_password: PASSWORD, new_password: `${PASSWORD} changed` },
      });
      assert.equal(changed.status, 204, JSON.stringify(changed.body));
    });
    try {
      assert.equal(login.status, 401);
      assert.equal(login.body.error, 'invalid_credentials');
      const live = await stores.sessions.listSessions(user.id, srv.clock.now);
      assert.deepEqual(
        live.map((x) => x.id),
        [first.body.session_id],
        'only the session that changed the password is live',
      );
      const fresh = await call(srv.url, 'POST', '/auth/login', {
        body: { username, password: `${PASSWORD} changed`, mode: 'token', delivery: 'header' },
      });
      assert.equal(fresh.status, 200, 'the new password signs in');
    } finally {
      await srv.close();
    }
  });
});
