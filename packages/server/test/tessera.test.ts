// createTessera opens every part of an instance and close() releases every one: stores, bridge,
// HTTP server and upkeep timer, also when a part fails to open, and twice without harm.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { pingStores } from '../src/store/open.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { createTessera } from '../src/tessera.js';
import { session, sessionUser, user } from './contracts/records.js';
import { freePort, SECRET } from './helpers.js';
import { databaseUrl, deleteRedisKeys, dropSchemas, redisUrl, skipWithoutPgAndRedis } from './services.js';

async function configFor(overrides: Parameters<typeof loadConfig>[1] = {}) {
  const port = await freePort();
  return loadConfig(
    {},
    {
      port,
      issuer: `http://127.0.0.1:${port}`,
      dataDir: mkdtempSync(path.join(tmpdir(), 'tessera-')),
      ...overrides,
    },
  );
}

/** `store` with its calls to `method` counted. */
function counting<T extends object>(store: T, method: keyof T): { store: T; calls: { n: number } } {
  const calls = { n: 0 };
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (prop === method) calls.n += 1;
        return value.apply(target, args);
      };
    },
  });
  return { store: wrapped, calls };
}

describe('createTessera', () => {
  it('opens the store, secret, keys and OAuth provider from the config, and close() releases them all', async () => {
    const config = await configFor();
    const tessera = await createTessera(config, { logger: false });
    assert.equal(tessera.secretGenerated, true, 'the secret was generated into the data folder');
    assert.equal(tessera.auth.grants, tessera.oauth?.service, 'auth ends OAuth grants through the provider');
    const url = await tessera.listen();
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    assert.equal(tessera.keys.list().length, 2);

    await tessera.close();
    assert.equal(tessera.app.fastify.server.listening, false);
    await assert.rejects(pingStores(tessera.stores), 'the stores are closed');
    await assert.rejects(tessera.oauth!.store.getClient('any'), 'the OAuth store is closed');
    await tessera.close();
  });

  it('without HTTP (the CLI): the same parts, no app', async () => {
    const config = await configFor({ secret: SECRET });
    const core = await createTessera(config, { http: false });
    assert.equal('app' in core, false);
    assert.equal(core.secretGenerated, false);
    await core.upkeep();
    await core.close();
    await assert.rejects(pingStores(core.stores));
    await assert.rejects(core.oauth!.store.getClient('any'));
  });

  it('runs upkeep on its timer until close() stops it', async () => {
    const stores = openSqliteStores(':memory:');
    const { store, calls } = counting(stores.revocations, 'pruneRevocations');
    const tessera = await createTessera(await configFor({ secret: SECRET }), {
      stores: { ...stores, revocations: store },
      logger: false,
      upkeepMs: 5,
    });
    while (calls.n < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await tessera.close();
    const after = calls.n;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(calls.n, after, 'no upkeep after close');
  });

  it('upkeep deletes the sessions that ended more than a day ago, and keeps the rest', async () => {
    const stores = openSqliteStores(':memory:');
    const core = await createTessera(await configFor({ secret: SECRET }), { stores, http: false });
    try {
      const u = user();
      await stores.users.createUser(u);
      const now = Date.now();
      const hour = 3_600_000;
      const at = (start: number) =>
        session(u.id, {
          createdAt: start,
          lastSeenAt: start,
          expiresAt: start + 48 * hour,
          idleExpiresAt: start + 24 * hour,
        });
      const endedTwoDaysAgo = at(now - 72 * hour); // idle end 48 h ago
      const endedAnHourAgo = at(now - 25 * hour); // idle end 1 h ago
      const live = at(now);
      for (const s of [endedTwoDaysAgo, endedAnHourAgo, live])
        await stores.sessions.createSession(s, sessionUser(u));
      await core.upkeep();
      assert.equal(await stores.sessions.getSession(endedTwoDaysAgo.id), null);
      assert.notEqual(await stores.sessions.getSession(endedAnHourAgo.id), null, 'kept for the day');
      assert.notEqual(await stores.sessions.getSession(live.id), null);
    } finally {
      await core.close();
    }
  });

  it('closes what it opened when a later part fails to open', async () => {
    const stores = openSqliteStores(':memory:');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'tessera-')), 'not-a-folder');
    writeFileSync(file, '');
    // The data folder is a file: the secret cannot be generated into it.
    await assert.rejects(createTessera(await configFor({ dataDir: file }), { stores }));
    await assert.rejects(pingStores(stores), 'the stores given were closed');
  });
});

describe('createTessera with PostgreSQL and Redis', { skip: skipWithoutPgAndRedis }, () => {
  it('takes no lock on the data folder: several servers share their counters and may share the folder', async () => {
    const schema = `tessera_lockfree_${process.pid}`;
    const prefix = `tessera-lockfree-${process.pid}:`;
    const shared = { secret: SECRET, databaseUrl, redisUrl, databaseSchema: schema, redisPrefix: prefix };
    const first = await createTessera(await configFor(shared), { logger: false });
    const second = await createTessera(await configFor({ ...shared, dataDir: first.config.dataDir }), {
      logger: false,
    });
    try {
      await first.listen();
      const url = await second.listen();
      assert.equal((await fetch(`${url}/readyz`)).status, 200);
      assert.equal(existsSync(path.join(first.config.dataDir, 'server.lock')), false);
    } finally {
      await second.close();
      await first.close();
      await dropSchemas(databaseUrl!, [schema]);
      await deleteRedisKeys(redisUrl!, prefix);
    }
  });

  it('leaves no handle behind: after close() the process exits by itself', async () => {
    const schema = `tessera_exit_${process.pid}`;
    const prefix = `tessera-exit-${process.pid}:`;
    const config = JSON.stringify(
      await configFor({ secret: SECRET, databaseUrl, redisUrl, databaseSchema: schema, redisPrefix: prefix }),
    );
    const script = `
      import { createTessera } from './src/tessera.js';
      const tessera = await createTessera(${config}, { logger: false });
      const url = await tessera.listen();
      const stream = await fetch(url + '/auth/revocations/stream');
      if (stream.status !== 200) throw new Error('stream: ' + stream.status);
      await tessera.close();
      await tessera.close();
      process.stdout.write('closed');
    `;
    try {
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: path.resolve(import.meta.dirname, '..'),
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(child.signal, null, `still running after close: ${child.stderr}`);
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout, 'closed');
    } finally {
      await dropSchemas(databaseUrl!, [schema]);
      await deleteRedisKeys(redisUrl!, prefix);
    }
  });
});
