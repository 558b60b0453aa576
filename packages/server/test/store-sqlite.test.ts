import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfig } from '../src/config.js';
import { closeStores, openStores } from '../src/store/open.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { SqliteDatabase } from '../src/store/sqlite-common.js';
import { auditLogContract } from './contracts/audit.js';
import { sessionsOn } from './contracts/fixtures.js';
import { identityStoreContract } from './contracts/identities.js';
import { keyStoreContract } from './contracts/keys.js';
import { mailOutboxContract } from './contracts/mail.js';
import { oauthStoreContract } from './contracts/oauth.js';
import { oauthCode, oauthRefresh, refresh, session, sessionUser, T0, user } from './contracts/records.js';
import { revocationLogContract } from './contracts/revocations.js';
import { sessionStoreContract } from './contracts/sessions.js';
import { userStoreContract } from './contracts/users.js';
import { SECRET } from './helpers.js';

/** The migration that clustered refresh tokens by id is the fourth. */
const CLUSTERED_REFRESH_VERSION = 4;

const tempFile = () => path.join(mkdtempSync(path.join(tmpdir(), 'tessera-')), 'tessera.sqlite');

for (const [name, open] of [
  ['sqlite (memory)', async () => openSqliteStores(':memory:')],
  ['sqlite (file, WAL)', async () => openSqliteStores(tempFile())],
] as const) {
  userStoreContract(name, open);
  identityStoreContract(name, open);
  mailOutboxContract(name, open);
  sessionStoreContract(name, sessionsOn(open));
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
      'audit_events',
      'oauth_clients',
      'oauth_grants',
      'oauth_codes',
      'oauth_refresh_tokens',
      'oauth_jti',
      'mail_queue',
    ])
      assert.ok(tables.includes(t), `${t} is in the file`);
    assert.ok(!tables.includes('oauth_meta'), 'no second migration scheme');
    for (const t of ['counters', 'locks'])
      assert.ok(!tables.includes(t), `${t}: counters live in the process`);

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

  it('adopts a data folder’s former oauth.sqlite once: clients, grants (by user), codes, tokens, jti', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-former-'));
    const file = path.join(dir, 'tessera.sqlite');
    const u = user();
    const before = openSqliteStores(file);
    await before.users.createUser(u);
    await closeStores(before);
    // The OAuth provider's file as it was: its own tables and counter, grants keyed by user_id.
    const former = new Database(path.join(dir, 'oauth.sqlite'));
    former.exec(`
      CREATE TABLE oauth_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO oauth_meta VALUES ('version', 1);
      CREATE TABLE oauth_clients (id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, secret_hash TEXT,
        auth_method TEXT NOT NULL, redirect_uris TEXT NOT NULL, grant_types TEXT NOT NULL, scopes TEXT NOT NULL,
        require_dpop INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
      CREATE TABLE oauth_grants (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, client_id TEXT NOT NULL,
        scope TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, revoked_at INTEGER,
        revoke_reason TEXT);
      CREATE TABLE oauth_codes (code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL,
        grant_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, redirect_uri_given INTEGER NOT NULL, scope TEXT NOT NULL,
        code_challenge TEXT NOT NULL, nonce TEXT, auth_time INTEGER NOT NULL, dpop_jkt TEXT,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, consumed_at INTEGER);
      CREATE TABLE oauth_refresh_tokens (id TEXT PRIMARY KEY, grant_id TEXT NOT NULL, client_id TEXT NOT NULL,
        user_id TEXT NOT NULL, secret_hash TEXT NOT NULL, scope TEXT NOT NULL, dpop_jkt TEXT, parent_id TEXT,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER);
      CREATE TABLE oauth_jti (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      INSERT INTO oauth_clients VALUES ('web', 'Web', 'confidential', 'h', 'client_secret_basic',
        '["https://app.example/cb"]', '["authorization_code"]', '["openid"]', 0, 5);
      INSERT INTO oauth_grants VALUES ('g-user', '${u.id}', 'web', 'openid', 1, 1, NULL, NULL),
        ('g-machine', 'client:batch', 'batch', 'api', 2, 2, NULL, NULL);
      INSERT INTO oauth_jti VALUES ('k:1', ${T0 + 1000});`);
    const code = oauthCode('g-user');
    former
      .prepare('INSERT INTO oauth_codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(...Object.values(code).map((v) => (typeof v === 'boolean' ? Number(v) : v)));
    // A token from before chains had an absolute end.
    const token = oauthRefresh('g-user', { familyExpiresAt: null });
    const { familyExpiresAt: _, ...formerColumns } = token;
    former
      .prepare('INSERT INTO oauth_refresh_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(...Object.values(formerColumns));
    former.close();

    const stores = openSqliteStores(file);
    try {
      assert.deepEqual(
        (await stores.oauth.getClient('web'))?.resources,
        [],
        'a client from before resources',
      );
      assert.equal((await stores.oauth.getGrant('g-user'))?.userId, u.id);
      assert.equal((await stores.oauth.getGrant('g-machine'))?.userId, 'client:batch');
      assert.deepEqual(await stores.oauth.getCode(code.codeHash), code);
      assert.deepEqual(await stores.oauth.getRefreshToken(token.id), token);
      assert.equal(await stores.oauth.rememberJti('k:1', T0 + 2000, T0), false, 'a seen proof stays seen');
    } finally {
      await closeStores(stores);
    }
    assert.ok(!existsSync(path.join(dir, 'oauth.sqlite')), 'read once');
    assert.ok(existsSync(path.join(dir, 'oauth.sqlite.imported')), 'and kept, renamed');
    const again = openSqliteStores(file);
    try {
      assert.equal((await again.oauth.getGrant('g-user'))?.userId, u.id);
    } finally {
      await closeStores(again);
    }
  });

  it('keeps refresh tokens clustered by id, and moves a former rowid table over with its tokens', async () => {
    const file = tempFile();
    const first = openSqliteStores(file);
    const u = user();
    await first.users.createUser(u);
    const s = session(u.id);
    const t = refresh(s.id, { secretHash: 'h1' });
    await first.sessions.createSession(s, sessionUser(u), t);
    await closeStores(first);

    // The layout files had before: a rowid table with its own id index and a session index.
    const raw = new Database(file);
    const version = raw.pragma('user_version', { simple: true }) as number;
    raw.exec(`
      CREATE TABLE refresh_tokens_old (
        id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id), secret_hash TEXT NOT NULL,
        parent_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER);
      INSERT INTO refresh_tokens_old SELECT * FROM refresh_tokens;
      DROP TABLE refresh_tokens;
      ALTER TABLE refresh_tokens_old RENAME TO refresh_tokens;
      CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);`);
    // …and without what later migrations added, so the file is at the version before the move.
    raw.exec(`
      DROP TABLE mail_queue;
      DROP TABLE email_tokens;
      DROP INDEX users_verified_email;
      DROP INDEX users_email;
      ALTER TABLE users DROP COLUMN email_verified;
      ALTER TABLE users DROP COLUMN email;
      DROP INDEX oauth_refresh_family;
      DROP INDEX oauth_refresh_expires;
      ALTER TABLE oauth_refresh_tokens DROP COLUMN family_expires_at;`);
    raw.pragma(`user_version = ${CLUSTERED_REFRESH_VERSION - 1}`);
    raw.close();

    const again = openSqliteStores(file);
    const rotated = await again.sessions.rotateRefreshToken({
      id: t.id,
      secretHash: 'h1',
      successorId: refresh(s.id).id,
      successorSecretHash: 'h2',
      now: T0 + 1000,
      graceMs: 10_000,
      idleTtlMs: 600_000,
    });
    assert.equal(rotated.outcome, 'rotated', 'a token from before the move still rotates');
    await closeStores(again);
    const check = new Database(file, { readonly: true });
    const sql = (
      check.prepare(`SELECT sql FROM sqlite_master WHERE name = 'refresh_tokens'`).get() as {
        sql: string;
      }
    ).sql;
    const indexes = check.prepare(`SELECT name FROM pragma_index_list('refresh_tokens')`).all() as {
      name: string;
    }[];
    const rows = (check.prepare('SELECT count(*) AS n FROM refresh_tokens').get() as { n: number }).n;
    const foreignKeys = check.prepare(`SELECT * FROM pragma_foreign_key_list('refresh_tokens')`).all();
    assert.equal(check.pragma('user_version', { simple: true }), version);
    check.close();
    assert.match(sql, /WITHOUT ROWID/);
    assert.deepEqual(
      indexes.map((i) => i.name).filter((n) => !n.startsWith('sqlite_autoindex')),
      [],
      'no index besides the primary key',
    );
    assert.equal(rows, 2, 'the moved token and its successor');
    // With a foreign key to sessions and no index on session_id, every session deletion (the
    // hourly prune) would scan all refresh tokens.
    assert.deepEqual(foreignKeys, [], 'no foreign key that a session deletion would check by a scan');
  });

  it('syncs the file as TESSERA_SQLITE_SYNC says: normal by default, full on request', async () => {
    const synchronous = async (config: Record<string, string>) => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-sync-'));
      const stores = await openStores(
        loadConfig({ ...config, TESSERA_DATA_DIR: dataDir, TESSERA_SECRET: SECRET }),
      );
      const db = stores.backends.find((b) => b.kind === 'sqlite') as SqliteDatabase;
      const value = (db.q('PRAGMA synchronous').get() as { synchronous: number }).synchronous;
      await closeStores(stores);
      return value;
    };
    assert.equal(await synchronous({}), 1, 'NORMAL');
    assert.equal(await synchronous({ TESSERA_SQLITE_SYNC: 'full' }), 2, 'FULL');
    assert.throws(
      () => loadConfig({ TESSERA_SQLITE_SYNC: 'off', TESSERA_SECRET: SECRET }),
      /TESSERA_SQLITE_SYNC/,
    );
  });

  it('answers ping and has the file and the in-process counters to close', async () => {
    const stores = openSqliteStores(':memory:');
    assert.deepEqual(
      stores.backends.map((b) => b.kind),
      ['sqlite', 'memory'],
    );
    await stores.backends[0]!.ping();
    await closeStores(stores);
  });
});

describe('sqlite: group commit', () => {
  /** A database on a file with two tables of its own: a parent and a child with a deferred key. */
  function scratch(): { db: SqliteDatabase; file: string; rows: (table: string) => number[] } {
    const file = tempFile();
    const db = new SqliteDatabase(file);
    db.q('CREATE TABLE parent (id INTEGER PRIMARY KEY)').run();
    db.q(
      'CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)',
    ).run();
    // Read through a second connection: what is there is what was committed.
    const rows = (table: string) => {
      const other = new Database(file, { readonly: true });
      try {
        return (other.prepare(`SELECT id FROM ${table} ORDER BY id`).all() as { id: number }[]).map(
          (r) => r.id,
        );
      } finally {
        other.close();
      }
    };
    return { db, file, rows };
  }
  const insert = (db: SqliteDatabase, table: string, id: number, parentId?: number) =>
    parentId === undefined
      ? db.q(`INSERT INTO ${table} (id) VALUES (?)`).run(id)
      : db.q(`INSERT INTO ${table} (id, parent_id) VALUES (?, ?)`).run(id, parentId);

  it('commits the transactions of one turn together, in order; one that throws is undone alone', async () => {
    const { db, rows } = scratch();
    try {
      const before = db.commits;
      const results = await Promise.allSettled([
        db.tx(() => insert(db, 'parent', 1).changes),
        db.tx(() => {
          insert(db, 'parent', 2);
          throw new Error('changed its mind');
        }),
        db.tx(() => (db.q('SELECT count(*) AS n FROM parent').get() as { n: number }).n),
        db.tx((id: number) => insert(db, 'parent', id).changes, 3),
      ]);
      assert.deepEqual(
        results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
        [1, 'changed its mind', 1, 1],
        'each sees the ones before it, and not the one undone',
      );
      assert.equal(db.commits - before, 1, 'one commit for the four');
      assert.deepEqual(rows('parent'), [1, 3]);

      await db.tx(() => insert(db, 'parent', 4));
      assert.equal(db.commits - before, 2, 'one alone commits alone');
      assert.deepEqual(rows('parent'), [1, 3, 4]);
    } finally {
      await db.close();
    }
  });

  it('rejects every transaction of a group whose commit fails, and writes none of them', async () => {
    const { db, rows } = scratch();
    try {
      const before = db.commits;
      // The child's missing parent is found at COMMIT (a deferred key), after both ran.
      const results = await Promise.allSettled([
        db.tx(() => insert(db, 'parent', 1)),
        db.tx(() => insert(db, 'child', 1, 99)),
      ]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.match(String((r as PromiseRejectedResult).reason.code), /^SQLITE_CONSTRAINT/);
      }
      assert.equal(db.commits, before);
      assert.deepEqual(rows('parent'), [], 'not answered, not written');
      assert.deepEqual(rows('child'), []);
      // The database goes on: the next group commits.
      await Promise.all([db.tx(() => insert(db, 'parent', 2)), db.tx(() => insert(db, 'child', 2, 2))]);
      assert.deepEqual([rows('parent'), rows('child')], [[2], [2]]);
    } finally {
      await db.close();
    }
  });

  it('commits what is queued when it closes, and refuses work after', async () => {
    const { db, rows } = scratch();
    const queued = db.tx(() => insert(db, 'parent', 7).changes);
    await db.close();
    assert.equal(await queued, 1);
    assert.deepEqual(rows('parent'), [7]);
    await assert.rejects(
      db.tx(() => insert(db, 'parent', 8)),
      (err: Error) => err.name === 'StoreUnavailableError',
    );
  });
});

describe('sqlite: pruning walks the whole table', () => {
  it('finds ended sessions past the first step of rows', async () => {
    const stores = openSqliteStores(':memory:');
    try {
      const u = user();
      await stores.users.createUser(u);
      const live = { expiresAt: T0 + 3_600_000, idleExpiresAt: T0 + 600_000 };
      // More live rows than one step looks at (10,000), then ended ones behind them.
      await Promise.all(
        Array.from({ length: 10_050 }, () =>
          stores.sessions.createSession(session(u.id, live), sessionUser(u)),
        ),
      );
      const ended = Array.from({ length: 5 }, () =>
        session(u.id, { expiresAt: T0 + 10, idleExpiresAt: T0 + 10 }),
      );
      for (const s of ended) await stores.sessions.createSession(s, sessionUser(u));
      assert.equal(await stores.sessions.pruneSessions(T0 + 20), 5);
      for (const s of ended) assert.equal(await stores.sessions.getSession(s.id), null);
    } finally {
      await closeStores(stores);
    }
  });
});
