import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../src/errors.js';
import { closeStores } from '../src/store/open.js';
import { openPostgresStores } from '../src/store/postgres.js';
import { auditLogContract } from './contracts/audit.js';
import { countersContract } from './contracts/counters.js';
import { countersOn, sessionsOn } from './contracts/fixtures.js';
import { keyStoreContract } from './contracts/keys.js';
import { oauthStoreContract } from './contracts/oauth.js';
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
