import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../src/errors.js';
import { closeStores } from '../src/store/open.js';
import { isUnavailable, type PgDatabase, wrap } from '../src/store/pg.js';
import { openPostgresStores } from '../src/store/postgres.js';
import { auditLogContract } from './contracts/audit.js';
import { countersContract } from './contracts/counters.js';
import { countersOn, sessionsOn } from './contracts/fixtures.js';
import { identityStoreContract } from './contracts/identities.js';
import { keyStoreContract } from './contracts/keys.js';
import { mailOutboxContract } from './contracts/mail.js';
import { oauthStoreContract } from './contracts/oauth.js';
import { user } from './contracts/records.js';
import { revocationLogContract } from './contracts/revocations.js';
import { sessionStoreContract } from './contracts/sessions.js';
import { userStoreContract } from './contracts/users.js';
import { freePort } from './helpers.js';
import { dropSchemas } from './services.js';

const url = process.env.TESSERA_TEST_DATABASE_URL;
const skip = url ? undefined : 'PostgreSQL not reachable: TESSERA_TEST_DATABASE_URL unset';

// Every run works in schemas of its own, dropped at the end, so runs never see each other's rows.
const run = `tessera_test_${randomBytes(6).toString('hex')}`;
const schemas: string[] = [];
function schema(suffix: string): string {
  const name = `${run}_${suffix}`;
  schemas.push(name);
  return name;
}

after(async () => {
  if (!url || schemas.length === 0) return;
  await dropSchemas(url, schemas);
});

// A schema per opened set of stores, as the SQLite contracts get a fresh database each time.
let n = 0;
const open = () => openPostgresStores(url!, { schema: schema(`contract_${n++}`) });
userStoreContract('postgres', open, { skip });
identityStoreContract('postgres', open, { skip });
mailOutboxContract('postgres', open, { skip });
sessionStoreContract('postgres', sessionsOn(open), { skip });
countersContract('postgres', countersOn(open), { skip });
keyStoreContract('postgres', open, { skip });
revocationLogContract('postgres', open, { skip });
auditLogContract('postgres', open, { skip });
oauthStoreContract('postgres', open, { skip });

describe('postgres stores', { skip }, () => {
  it('run one migration list for every role, once, even when two instances start together', async () => {
    const name = schema('migrate');
    const [a, b] = await Promise.all([
      openPostgresStores(url!, { schema: name }),
      openPostgresStores(url!, { schema: name }),
    ]);
    await Promise.all([closeStores(a), closeStores(b)]);
    const c = await openPostgresStores(url!, { schema: name });
    await c.backends[0]!.ping();
    await closeStores(c);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const { rows } = await admin.query(`SELECT version FROM ${name}.tessera_migrations ORDER BY version`);
      // each migration recorded exactly once, in order, with none skipped
      const versions = rows.map((r: { version: number }) => r.version);
      assert.ok(versions.length >= 3);
      assert.deepEqual(
        versions,
        versions.map((_: number, i: number) => i + 1),
      );
      const tables = await admin.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [name],
      );
      const names = tables.rows.map((r: { table_name: string }) => r.table_name);
      for (const t of ['users', 'sessions', 'oauth_clients', 'oauth_grants', 'oauth_codes', 'oauth_jti'])
        assert.ok(names.includes(t), `${t} is in the schema`);
      assert.ok(!names.includes('tessera_oauth_migrations'), 'no second migration list');
    } finally {
      await admin.end();
    }
  });

  it('share one pool: one backend behind every role', async () => {
    const stores = await openPostgresStores(url!, { schema: schema('one_pool') });
    try {
      assert.deepEqual(
        stores.backends.map((b) => b.kind),
        ['postgres'],
      );
    } finally {
      await closeStores(stores);
    }
  });

  it('takes the rows the version before writes during a rolling upgrade: OAuth refresh tokens without a chain end', async () => {
    const name = schema('rolling');
    const stores = await openPostgresStores(url!, { schema: name });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const u = user();
      await stores.users.createUser(u);
      const g = await stores.oauth.upsertGrant({
        id: 'g-rolling',
        userId: u.id,
        clientId: 'c',
        scope: 'api',
        now: 1,
      });
      // The version before inserts its eleven columns, nothing else.
      await admin.query(
        `INSERT INTO ${name}.oauth_refresh_tokens (id, grant_id, client_id, user_id, secret_hash, scope, dpop_jkt,
           parent_id, created_at, expires_at, used_at) VALUES ('t-old', $1, 'c', $2, 'h', 'api', NULL, NULL, 1, 2, NULL)`,
        [g.id, u.id],
      );
      assert.equal((await stores.oauth.getRefreshToken('t-old'))?.familyExpiresAt, null);
    } finally {
      await admin.end();
      await closeStores(stores);
    }
  });

  it('adopts the OAuth tables of the former separate migration list, grants and all', async () => {
    const name = schema('adopt');
    await closeStores(await openPostgresStores(url!, { schema: name }));
    const u = user();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      // What a schema looked like with the OAuth tables under their own list: grants keyed by user_id.
      await admin.query(`SET search_path = ${name}`);
      await admin.query(`DROP TABLE oauth_grants;
        CREATE TABLE oauth_grants (
          id TEXT COLLATE "C" PRIMARY KEY,
          user_id TEXT COLLATE "C" NOT NULL,
          client_id TEXT COLLATE "C" NOT NULL,
          scope TEXT NOT NULL,
          created_at BIGINT NOT NULL,
          updated_at BIGINT NOT NULL,
          revoked_at BIGINT,
          revoke_reason TEXT
        );
        CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants (user_id, client_id) WHERE revoked_at IS NULL;
        CREATE INDEX oauth_grants_user ON oauth_grants (user_id, created_at);
        CREATE TABLE tessera_oauth_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
        INSERT INTO tessera_oauth_migrations VALUES (1, 0), (2, 0);
        DELETE FROM tessera_migrations WHERE version > 2;`);
      await admin.query(
        `INSERT INTO users (id, username, password_hash, roles, disabled, created_at, password_changed_at)
         VALUES ($1, $2, 'x', '{user}', false, 0, 0)`,
        [u.id, u.username],
      );
      await admin.query(
        `INSERT INTO oauth_grants (id, user_id, client_id, scope, created_at, updated_at)
         VALUES ('g-user', $1, 'web', 'openid', 1, 1), ('g-machine', 'client:batch', 'batch', 'api', 2, 2)`,
        [u.id],
      );
    } finally {
      await admin.end();
    }
    const stores = await openPostgresStores(url!, { schema: name });
    try {
      assert.equal((await stores.oauth.getGrant('g-user'))?.userId, u.id);
      assert.equal((await stores.oauth.getGrant('g-machine'))?.userId, 'client:batch');
      assert.deepEqual(
        (await stores.oauth.listGrants(u.id)).map((g) => g.id),
        ['g-user'],
      );
      const widened = await stores.oauth.upsertGrant({
        id: 'g-new',
        userId: u.id,
        clientId: 'web',
        scope: 'api',
        now: 3,
      });
      assert.equal(widened.id, 'g-user', 'the live-grant index is the new one');
      await assert.rejects(
        stores.oauth.upsertGrant({
          id: 'g-x',
          userId: 'no-such-user',
          clientId: 'web',
          scope: 'api',
          now: 3,
        }),
        'grants now reference their user',
      );
      const admin2 = new pg.Client({ connectionString: url });
      await admin2.connect();
      try {
        const { rows } = await admin2.query('SELECT to_regclass($1) AS t', [
          `${name}.tessera_oauth_migrations`,
        ]);
        assert.equal(rows[0].t, null, 'the former list is gone');
      } finally {
        await admin2.end();
      }
    } finally {
      await closeStores(stores);
    }
  });

  it('refuses a schema name it would have to quote', async () => {
    await assert.rejects(openPostgresStores(url!, { schema: 'bad"; drop' }), TypeError);
  });

  it('rejects with StoreUnavailableError when nothing listens (bounded connect timeout)', async () => {
    const target = new URL(url!);
    target.hostname = '127.0.0.1';
    target.port = String(await freePort());
    await assert.rejects(
      openPostgresStores(target.toString(), { schema: schema('down'), connectionTimeoutMillis: 1000 }),
      (err: unknown) => err instanceof StoreUnavailableError && err.code === 'unavailable',
    );
  });

  it('takes a transaction the database rolled back (a deadlock) for a passing unavailability', async () => {
    const schemaName = schema('deadlock');
    const [a, b] = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
    await a.connect();
    await b.connect();
    try {
      await a.query(`CREATE SCHEMA ${schemaName}; CREATE TABLE ${schemaName}.t (id int PRIMARY KEY, v int);
        INSERT INTO ${schemaName}.t VALUES (1, 0), (2, 0);`);
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query(`UPDATE ${schemaName}.t SET v = 1 WHERE id = 1`);
      await b.query(`UPDATE ${schemaName}.t SET v = 1 WHERE id = 2`);
      // Each now waits for the other's row: PostgreSQL ends one of them with 40P01.
      const outcomes = await Promise.allSettled([
        a.query(`UPDATE ${schemaName}.t SET v = 2 WHERE id = 2`),
        b.query(`UPDATE ${schemaName}.t SET v = 2 WHERE id = 1`),
      ]);
      const failed = outcomes.filter((o) => o.status === 'rejected');
      assert.equal(failed.length, 1, 'one of the two is chosen as the victim');
      const err = (failed[0] as PromiseRejectedResult).reason as { code?: string };
      assert.equal(err.code, '40P01');
      assert.ok(isUnavailable(err), 'answered 503 unavailable, for a retry, not a 500');
      assert.ok(wrap(err) instanceof StoreUnavailableError);
      // In a transaction of the store: rolled back, and the connection goes back to the pool.
      const stores = await openPostgresStores(url!, { schema: schema('rolledback'), max: 1 });
      const db = stores.backends.find((x) => x.kind === 'postgres') as PgDatabase;
      try {
        await assert.rejects(
          db.tx(async (c) => {
            await c.query(`DO $$ BEGIN RAISE EXCEPTION 'retry' USING ERRCODE = '40001'; END $$`);
          }),
          StoreUnavailableError,
        );
        assert.equal(
          db.pool.totalCount,
          1,
          'the connection is kept (a destroyed one leaves the pool at once)',
        );
        assert.equal((await db.pool.query('SELECT 1 AS one')).rows[0].one, 1);
      } finally {
        await closeStores(stores);
      }
    } finally {
      await a.query('ROLLBACK').catch(() => undefined);
      await b.query('ROLLBACK').catch(() => undefined);
      await a.end();
      await b.end();
    }
  });

  it('fails closed while its connections are killed, then recovers by itself', async () => {
    const app = `tessera-test-${randomBytes(4).toString('hex')}`;
    const stores = await openPostgresStores(url!, { schema: schema('kill'), applicationName: app, max: 2 });
    const store = stores.backends[0]!;
    try {
      await store.ping();
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        const { rows } = await admin.query(
          'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
          [app],
        );
        assert.ok(rows.length >= 1);
      } finally {
        await admin.end();
      }
      // The pool may hand out a dead connection once; that must be a coded 503, never a hang or a crash.
      let ok = false;
      for (let i = 0; i < 5 && !ok; i++) {
        try {
          await store.ping();
          ok = true;
        } catch (err) {
          assert.ok(err instanceof StoreUnavailableError, String(err));
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert.ok(ok, 'the store reconnects');
    } finally {
      await closeStores(stores);
    }
  });
});
