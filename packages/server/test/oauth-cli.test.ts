import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { closeStores, openStores } from '../src/store/open.js';

const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');

function tessera(args: string[], env: Record<string, string>) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('tessera clients', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-oauth-cli-'));
  const env = { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: 'silent' };

  it('adds, lists and removes clients; the secret is printed once and stored hashed', async () => {
    assert.equal(tessera(['clients', '--help'], env).code, 0);
    assert.equal(tessera(['clients'], env).code, 2);
    const add = tessera(
      [
        'clients',
        'add',
        'Web App',
        '--type',
        'confidential',
        '--redirect-uri',
        'https://app.example/cb',
        '--redirect-uri',
        'https://app.example/cb2',
        '--scope',
        'openid api',
        '--id',
        'web-app',
      ],
      env,
    );
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /client_id: web-app/);
    const secret = /client_secret: (\S+)/.exec(add.stdout)?.[1];
    assert.ok(secret && secret.length >= 43);
    const pub = tessera(
      [
        'clients',
        'add',
        'Phone',
        '--type',
        'public',
        '--redirect-uri',
        'com.example.phone:/cb',
        '--id',
        'phone',
      ],
      env,
    );
    assert.equal(pub.code, 0, pub.stderr);
    assert.doesNotMatch(pub.stdout, /client_secret/);

    const bad = tessera(
      ['clients', 'add', 'Bad', '--type', 'confidential', '--redirect-uri', 'http://evil.example/cb'],
      env,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /loopback/);
    assert.equal(
      tessera(
        [
          'clients',
          'add',
          'Dup',
          '--type',
          'public',
          '--redirect-uri',
          'https://a.example/cb',
          '--id',
          'phone',
        ],
        env,
      ).code,
      1,
    );

    const list = tessera(['clients', 'list'], env);
    assert.match(list.stdout, /^web-app\tWeb App\tconfidential\tclient_secret_basic\t/m);
    assert.match(list.stdout, /^phone\tPhone\tpublic\tnone\t/m);
    assert.ok(!list.stdout.includes(secret!), 'the secret is never shown again');

    const stores = await openStores(loadConfig({}, { dataDir }));
    const stored = await stores.oauth.getClient('web-app');
    await closeStores(stores);
    assert.ok(stored?.secretHash && stored.secretHash !== secret);

    assert.equal(tessera(['clients', 'remove', 'phone'], env).code, 0);
    assert.equal(tessera(['clients', 'remove', 'phone'], env).code, 1);
    assert.doesNotMatch(tessera(['clients', 'list'], env).stdout, /phone/);
  });
});
