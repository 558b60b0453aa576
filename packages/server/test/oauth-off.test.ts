// A deployment with Redis but no PostgreSQL must say so about the OAuth provider (TESSERA_OAUTH),
// and runs without it when told: its durable state in the embedded file, its counters in Redis.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { clientsCommand } from '../src/oauth/cli.js';
import { type RunningServer, startServer } from '../src/server.js';
import { call, configProblems, freePort, PASSWORD, SECRET, uniqueName } from './helpers.js';
import { deleteRedisKeys } from './services.js';

const redisUrl = process.env.TESSERA_TEST_REDIS_URL;
const skip = redisUrl ? undefined : 'Redis not reachable: TESSERA_TEST_REDIS_URL unset';
const prefix = `tessera:test:${randomBytes(6).toString('hex')}:oauthoff:`;
const REDIS = 'redis://127.0.0.1:6379/0';

describe('Redis-only deployments and the OAuth provider', () => {
  it('refuse to start with the OAuth provider on, naming TESSERA_DATABASE_URL and TESSERA_OAUTH', () => {
    const found = configProblems({ TESSERA_REDIS_URL: REDIS });
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]!, /set TESSERA_DATABASE_URL/);
    assert.match(found[0]!, /TESSERA_OAUTH=false/);
  });

  it('start with TESSERA_OAUTH=false, or with PostgreSQL beside Redis', () => {
    assert.deepEqual(configProblems({ TESSERA_REDIS_URL: REDIS, TESSERA_OAUTH: 'false' }), []);
    assert.deepEqual(
      configProblems({
        TESSERA_REDIS_URL: REDIS,
        TESSERA_DATABASE_URL: 'postgres://postgres@127.0.0.1/test',
      }),
      [],
    );
    assert.equal(loadConfig({}).oauth, true, 'on by default');
  });

  it('`tessera clients` says the provider is off instead of writing a local file', async () => {
    const saved = process.env.TESSERA_OAUTH;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-oauthoff-cli-'));
    const savedDir = process.env.TESSERA_DATA_DIR;
    process.env.TESSERA_OAUTH = 'false';
    process.env.TESSERA_DATA_DIR = dataDir;
    try {
      assert.equal(await clientsCommand(['list']), 2);
      assert.equal(existsSync(path.join(dataDir, 'oauth.sqlite')), false);
    } finally {
      if (saved === undefined) delete process.env.TESSERA_OAUTH;
      else process.env.TESSERA_OAUTH = saved;
      if (savedDir === undefined) delete process.env.TESSERA_DATA_DIR;
      else process.env.TESSERA_DATA_DIR = savedDir;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('an instance with Redis counters and without the OAuth provider', { skip, timeout: 30_000 }, () => {
  const dataDirs: string[] = [];
  let a: RunningServer;
  let issuer: string;

  async function instance(port: number): Promise<RunningServer> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-oauthoff-'));
    dataDirs.push(dataDir);
    const config = loadConfig(
      { TESSERA_OAUTH: 'false' },
      {
        port,
        issuer,
        dataDir,
        secret: SECRET,
        redisUrl,
        redisPrefix: prefix,
        registerPerIpPerHour: 100_000,
        logLevel: 'silent',
      },
    );
    return startServer({ config, logger: false, heartbeatMs: 200 });
  }

  before(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    a = await instance(port);
  });
  after(async () => {
    await a?.close();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    if (!skip) await deleteRedisKeys(redisUrl!, prefix);
  });

  it('serves accounts and no OAuth endpoint, and is ready on both backends', async () => {
    const username = uniqueName('nooauth');
    assert.equal(
      (await call(a.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status,
      201,
    );
    const login = await call(a.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
    });
    assert.equal(login.status, 200);
    const bearer = { authorization: `Bearer ${login.body.access_token}` };
    assert.equal((await call(a.url, 'GET', '/auth/me', { headers: bearer })).status, 200);

    assert.equal((await call(a.url, 'GET', '/.well-known/openid-configuration')).status, 404);
    assert.equal((await call(a.url, 'POST', '/oauth/token', { rawBody: '' })).status, 404);
    assert.equal((await call(a.url, 'GET', '/auth/grants', { headers: bearer })).status, 404);
    const ready = await call(a.url, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.store, 'sqlite+redis');
  });

  it('the account page has no apps section', async () => {
    const username = uniqueName('nooauthpage');
    await call(a.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } });
    const login = await call(a.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'session', delivery: 'cookie' },
      headers: { origin: issuer },
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const cookie = Object.entries(login.cookies)
      .map(([k, v]) => `${k}=${v.value}`)
      .join('; ');
    const page = await call(a.url, 'GET', '/account', { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.body, /Where you're signed in/);
    assert.doesNotMatch(page.body, /id="grants"/);
  });
});
