import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../src/errors.js';
import { PostgresStore } from '../src/store/postgres.js';
import { freePort } from './helpers.js';
import { dropSchemas } from './services.js';
import { runStoreContract } from './store-contract.js';

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

runStoreContract('postgres', () => PostgresStore.open(url!, { schema: schema('contract') }), { skip });

describe('postgres store', { skip }, () => {
  it('runs migrations once, even when two instances start together', async () => {
    const name = schema('migrate');
    const [a, b] = await Promise.all([
      PostgresStore.open(url!, { schema: name }),
      PostgresStore.open(url!, { schema: name }),
    ]);
    await Promise.all([a.close(), b.close()]);
    const c = await PostgresStore.open(url!, { schema: name });
    await c.ping();
    await c.close();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const { rows } = await admin.query(`SELECT version FROM ${name}.tessera_migrations ORDER BY version`);
      // each migration recorded exactly once, in order, with none skipped
      const versions = rows.map((r: { version: number }) => r.version);
      assert.ok(versions.length >= 2);
      assert.deepEqual(
        versions,
        versions.map((_: number, i: number) => i + 1),
      );
    } finally {
      await admin.end();
    }
  });

  it('refuses a schema name it would have to quote', async () => {
    await assert.rejects(PostgresStore.open(url!, { schema: 'bad"; drop' }), TypeError);
  });

  it('rejects with StoreUnavailableError when nothing listens (bounded connect timeout)', async () => {
    const target = new URL(url!);
    target.hostname = '127.0.0.1';
    target.port = String(await freePort());
    await assert.rejects(
      PostgresStore.open(target.toString(), { schema: schema('down'), connectionTimeoutMillis: 1000 }),
      (err: unknown) => err instanceof StoreUnavailableError && err.code === 'unavailable',
    );
  });

  it('fails closed while its connections are killed, then recovers by itself', async () => {
    const app = `tessera-test-${randomBytes(4).toString('hex')}`;
    const store = await PostgresStore.open(url!, { schema: schema('kill'), applicationName: app, max: 2 });
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
      await store.close();
    }
  });
});
