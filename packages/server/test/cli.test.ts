import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { closeStores, openStores } from '../src/store/open.js';
import { createTessera } from '../src/tessera.js';
import { freePort, PASSWORD, runTessera, TESSERA_COMMAND } from './helpers.js';

describe('tessera CLI', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-'));
  const env = { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: 'silent' };

  it('prints help for every command', () => {
    for (const args of [
      ['--help'],
      ['users', '--help'],
      ['keys', '--help'],
      ['token', '--help'],
      ['serve', '--help'],
    ]) {
      const res = runTessera(args, env);
      assert.equal(res.code, 0, args.join(' '));
      assert.match(res.stdout, /Usage/);
    }
    const unknown = runTessera(['frobnicate'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command: frobnicate/);
  });

  it('adds, lists, disables and enables users', () => {
    const add = runTessera(['users', 'add', 'Carol'], env, `${PASSWORD}\n`);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /created user carol/);
    const fromEnv = runTessera(['users', 'add', 'frank'], { ...env, TESSERA_PASSWORD: PASSWORD });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const none = runTessera(['users', 'add', 'grace'], env, '');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage/);
    const weak = runTessera(['users', 'add', 'dave'], { ...env, TESSERA_PASSWORD: 'password' });
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /weak_password/);
    assert.ok(!weak.stderr.includes('password\n'), 'the password is not echoed');
    const list = runTessera(['users', 'list'], env);
    assert.match(list.stdout, /\tcarol\tactive\t/);
    assert.equal(runTessera(['users', 'disable', 'carol'], env).code, 0);
    assert.match(runTessera(['users', 'list'], env).stdout, /\tcarol\tdisabled\t/);
    assert.equal(runTessera(['users', 'enable', 'carol'], env).code, 0);
    assert.equal(runTessera(['users', 'disable', 'nobody'], env).code, 1);
  });

  it('refuses a password on the command line, and creates no user', () => {
    const res = runTessera(['users', 'add', 'heidi', '--password', PASSWORD], env);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--password is not accepted/);
    assert.match(res.stderr, /TESSERA_PASSWORD/);
    assert.doesNotMatch(runTessera(['users', 'list'], env).stdout, /\theidi\t/);
  });

  it('audit escapes controls and bidi overrides in what it prints', async () => {
    const stores = await openStores(loadConfig({}, { dataDir }));
    const userAgent = 'Mozilla\tforged-column\n2099-01-01 fake\u001b[2J\u009b31m\u007f\u202eevil\u2066';
    await stores.audit.appendAuditEvent({
      at: Date.now(),
      type: 'login_failed',
      userId: null,
      sessionId: null,
      ip: '127.0.0.1',
      userAgent,
      detail: 'bad\rdetail',
    });
    await closeStores(stores);
    const res = runTessera(['audit', '--type', 'login_failed', '--limit', '1'], env);
    assert.equal(res.code, 0, res.stderr);
    const line = res.stdout.replace(/\n$/, '');
    const unescaped = [...line].filter((c) => c !== '\t' && /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u.test(c));
    assert.deepEqual(unescaped, [], 'no control or bidi character reaches the terminal');
    assert.equal(line.split('\t').length, 7, 'a tab in stored text forges no column');
    assert.ok(
      line.includes(
        'Mozilla\\u0009forged-column\\u000a2099-01-01 fake\\u001b[2J\\u009b31m\\u007f\\u202eevil\\u2066',
      ),
      line,
    );
    assert.ok(line.endsWith('bad\\u000ddetail'), line);
    const json = runTessera(['audit', '--type', 'login_failed', '--limit', '1', '--json'], env);
    assert.deepEqual(
      [...json.stdout.trim()].filter((c) => /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u.test(c)),
      [],
    );
    assert.equal(JSON.parse(json.stdout).userAgent, userAgent, 'the JSON still decodes to the stored text');
  });

  it('lists and rotates keys, and inspects tokens against them', async () => {
    const before = runTessera(['keys', 'list'], env).stdout.trim().split('\n');
    assert.equal(before.length, 2);
    assert.ok(before.some((l) => l.includes('\tcurrent\t')) && before.some((l) => l.includes('\tnext\t')));
    const nextKid = before.find((l) => l.includes('\tnext\t'))!.split('\t')[0]!;

    // issue a token with the same data folder (same store and secret)
    const config = loadConfig({}, { dataDir, issuer: 'http://localhost:4000' });
    const { app, close } = await createTessera(config, { logger: false });
    const login = await app.fastify.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: 'carol', password: PASSWORD },
    });
    const token = login.json().access_token as string;
    await close();

    const inspect = runTessera(['token', 'inspect', token], env);
    assert.equal(inspect.code, 0, inspect.stdout + inspect.stderr);
    assert.match(inspect.stdout, /"typ": "at\+jwt"/);
    assert.match(inspect.stdout, /verified/);
    for (const args of [
      ['token', 'inspect'],
      ['token', 'inspect', '-'],
    ]) {
      const piped = runTessera(args, env, `${token}\n`);
      assert.equal(piped.code, 0, `${args.join(' ')}: ${piped.stdout}${piped.stderr}`);
      assert.match(piped.stdout, /verified/, 'the token read from stdin');
    }
    assert.equal(runTessera(['token', 'inspect'], env, '\n').code, 2, 'no token on stdin: usage');
    const tampered = runTessera(
      [
        'token',
        'inspect',
        token.replace(/\.[^.]+\./, `.${Buffer.from('{"sub":"x"}').toString('base64url')}.`),
      ],
      env,
    );
    assert.equal(tampered.code, 1);
    assert.match(tampered.stdout, /NOT VALID/);
    // What JSON leaves raw in a crafted token (a C1 control, a bidi override) reaches no terminal.
    const crafted = runTessera(
      [
        'token',
        'inspect',
        token.replace(/\.[^.]+\./, `.${Buffer.from('{"sub":"x\u009b2J\u202eevil"}').toString('base64url')}.`),
      ],
      env,
    );
    assert.match(crafted.stdout, /x\\u009b2J\\u202eevil/);
    assert.ok(!/[\u009b\u202e]/.test(crafted.stdout), 'escaped, not raw');

    const rotated = runTessera(['keys', 'rotate'], env).stdout;
    assert.match(rotated, new RegExp(`${nextKid}\tcurrent`));
    assert.match(rotated, /\tretired\t/);
    assert.equal(
      runTessera(['token', 'inspect', token], env).code,
      0,
      'a token of the retired key still verifies',
    );
  });

  it('token inspect judges a token as /auth routes do, and names the refusal', async () => {
    const config = loadConfig({}, { dataDir, issuer: 'http://localhost:4000' });
    const instance = await createTessera(config, { http: false });
    const now = Date.now();
    const user = { id: 'user-inspect', roles: ['user'] };
    const ttl = config.accessTokenTtl * 1000;
    const oauth = {
      sub: user.id,
      grantId: 'grant-inspect',
      scope: 'openid',
      clientId: 'client-inspect',
      resource: undefined,
      jkt: undefined,
    };
    const cases: [string, Promise<string>, number, RegExp][] = [
      ['fresh', instance.tokens.firstPartyAccessToken(user, 'sid-1', now), 0, /verified/],
      [
        'expired',
        instance.tokens.firstPartyAccessToken(user, 'sid-1', now - ttl - 10_000),
        1,
        /token_expired/,
      ],
      [
        'issued ahead',
        instance.tokens.firstPartyAccessToken(user, 'sid-1', now + 30_000),
        1,
        /token_not_yet_valid/,
      ],
      ['OAuth, for this server', instance.tokens.oauthAccessToken(oauth, now), 1, /invalid_audience/],
      [
        'ID token',
        instance.tokens.idToken(
          {
            user: { id: user.id, username: 'u' },
            clientId: 'c',
            nonce: null,
            authTime: now,
            accessToken: 'x',
            profile: false,
          },
          now,
        ),
        1,
        /invalid_type/,
      ],
    ];
    const minted = await Promise.all(cases.map((c) => c[1]));
    await instance.close();
    for (const [i, [name, , code, verdict]] of cases.entries()) {
      const res = runTessera(['token', 'inspect', minted[i]!], env);
      assert.equal(res.code, code, `${name}: ${res.stdout}${res.stderr}`);
      assert.match(res.stdout, verdict, name);
      if (code !== 0) assert.match(res.stdout, /NOT VALID here/, name);
    }
  });

  it('refuses bad configuration with one clear line per mistake', () => {
    const res = runTessera(['serve'], {
      ...env,
      TESSERA_PORT: 'eighty',
      TESSERA_ISSUER: 'ftp://x',
      TESSERA_CORS_ORIGINS: '*',
      TESSERA_SECRET: 'short',
    });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /TESSERA_PORT \(port\) must be a whole number/);
    assert.match(res.stderr, /TESSERA_ISSUER/);
    assert.match(res.stderr, /TESSERA_CORS_ORIGINS \(corsOrigins\) may not be "\*"/);
    assert.match(res.stderr, /TESSERA_SECRET \(secret\) must be at least 32 characters/);
    const file = path.join(dataDir, 'bad.json');
    writeFileSync(file, '{ not json');
    const bad = runTessera(['serve', '--config', file], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /config file/);
  });

  it('serve starts with the settings named in the README and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [...TESSERA_COMMAND, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        TESSERA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'tessera-serve-')),
        TESSERA_PORT: String(port),
        TESSERA_ISSUER: `http://127.0.0.1:${port}`,
        TESSERA_AUDIENCE: 'my-api',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout.on('data', (d) => {
      logs += d;
    });
    try {
      let health: Response | undefined;
      for (let i = 0; i < 100 && !health; i++) {
        health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        if (!health) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(health?.status, 200);
      const reg = await fetch(`http://127.0.0.1:${port}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'erin', password: PASSWORD }),
      });
      assert.equal(reg.status, 201);
      const login = await fetch(`http://127.0.0.1:${port}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'erin', password: PASSWORD }),
      }).then((r) => r.json() as Promise<{ access_token: string }>);
      const claims = JSON.parse(Buffer.from(login.access_token.split('.')[1]!, 'base64url').toString());
      assert.equal(claims.aud, 'my-api');
      assert.equal(claims.iss, `http://127.0.0.1:${port}`);
      assert.ok(!logs.includes(PASSWORD), 'no password in logs');
      assert.ok(!logs.includes(login.access_token), 'no token in logs');
      assert.match(logs, /plain-HTTP development mode/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
