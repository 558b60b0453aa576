import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteOAuthStore } from '../src/oauth/sqlite.js';
import { oauthStoreContract } from './oauth-store-contract.js';

oauthStoreContract('sqlite :memory:', async () => new SqliteOAuthStore(':memory:'));
oauthStoreContract(
  'sqlite file',
  async () =>
    new SqliteOAuthStore(path.join(mkdtempSync(path.join(tmpdir(), 'tessera-oauth-')), 'oauth.sqlite')),
);

it('shares a handle without touching its user_version, and migrates once', async () => {
  const db = new Database(':memory:');
  db.pragma('user_version = 7');
  const a = new SqliteOAuthStore(db);
  const b = new SqliteOAuthStore(db);
  assert.equal(db.pragma('user_version', { simple: true }), 7);
  await a.close();
  await b.close();
  assert.equal(db.open, true, 'a borrowed handle stays open');
  db.close();
});
