import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { closeStores } from '../src/store/open.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { auditLogContract } from './contracts/audit.js';
import { countersContract } from './contracts/counters.js';
import { countersOn, sessionsOn } from './contracts/fixtures.js';
import { keyStoreContract } from './contracts/keys.js';
import { oauthStoreContract } from './contracts/oauth.js';
import { user } from './contracts/records.js';
import { revocationLogContract } from './contracts/revocations.js';
import { sessionStoreContract } from './contracts/sessions.js';
import { userStoreContract } from './contracts/users.js';

const tempFile = () => path.join(mkdtempSync(path.join(tmpdir(), 'tessera-')), 'tessera.sqlite');

for (const [name, open] of [
  ['sqlite (memory)', async () => openSqliteStores(':memory:')],
  ['sqlite (file, WAL)', async () => openSqliteStores(tempFile())],
] as const) {
  userStoreContract(name, open);
  sessionStoreContract(name, sessionsOn(open));
  countersContract(name, countersOn(open));
  keyStoreContract(name, open);
  revocationLogContract(name, open);
  auditLogContract(name, open);
  oauthStoreContract(name, open);
}

describe('sqlite: one file for every role', () => {
  it('holds accounts and OAuth state in one file with one migration counter, migrated once', async () => {
    const file = tempFile();
    const first = openSqliteStores(file);
    const u = user();
    await first.users.createUser(u);
    const grant = await first.oauth.upsertGrant({
      id: 'g1',
      userId: u.id,
      clientId: 'c',
      scope: 'api',
      now: 1,
    });
    await closeStores(first);

    const db = new Database(file, { readonly: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = (
      db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]
    ).map((r) => r.name);
    db.close();
    for (const t of [
      'users',
      'sessions',
      'refresh_tokens',
      'signing_keys',
      'revocations',
      'counters',
      'audit_events',
      'oauth_clients',
      'oauth_grants',
      'oauth_codes',
      'oauth_refresh_tokens',
      'oauth_jti',
    ])
      assert.ok(tables.includes(t), `${t} is in the file`);
    assert.ok(!tables.includes('oauth_meta'), 'no second migration scheme');

    const again = openSqliteStores(file);
    try {
      assert.deepEqual(await again.users.getUserById(u.id), u);
      assert.deepEqual(await again.oauth.getGrant('g1'), grant);
      const db2 = new Database(file, { readonly: true });
      assert.equal(db2.pragma('user_version', { simple: true }), version, 'nothing migrated twice');
      db2.close();
    } finally {
      await closeStores(again);
    }
  });

  it('answers ping and has one backend to close', async () => {
    const stores = openSqliteStores(':memory:');
    assert.deepEqual(
      stores.backends.map((b) => b.kind),
      ['sqlite'],
    );
    await stores.backends[0]!.ping();
    await closeStores(stores);
  });
});
