import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { StoreUnavailableError } from '../src/errors.js';
import { RedisStore } from '../src/store/redis.js';
import { countersContract } from './contracts/counters.js';
import { freePort } from './helpers.js';

const url = process.env.TESSERA_TEST_REDIS_URL;
const skip = url ? undefined : 'Redis not reachable: TESSERA_TEST_REDIS_URL unset';

// Every run writes under a prefix of its own and deletes its keys at the end.
const prefix = `tessera:test:${randomBytes(6).toString('hex')}:`;

after(async () => {
  if (!url) return;
  const admin = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
  } finally {
    await admin.quit();
  }
});

countersContract(
  'redis',
  async () => {
    const counters = await RedisStore.open(url!, { prefix: `${prefix}counters:` });
    return { counters, close: () => counters.close() };
  },
  { skip },
);

describe('redis store', { skip }, () => {
  it('rejects with StoreUnavailableError when nothing listens (bounded connect timeout)', async () => {
    await assert.rejects(
      RedisStore.open(`redis://127.0.0.1:${await freePort()}/0`, { connectTimeoutMillis: 1000 }),
      (err: unknown) => err instanceof StoreUnavailableError && err.code === 'unavailable',
    );
  });

  it('fails closed while its connection is killed, then reconnects by itself', async () => {
    const name = `tessera-test-${randomBytes(4).toString('hex')}`;
    const store = await RedisStore.open(url!, { prefix: `${prefix}kill:`, connectionName: name });
    const admin = new Redis(url!);
    try {
      await store.ping();
      const clients = (await admin.client('LIST')) as string;
      const id = clients
        .split('\n')
        .find((line) => line.includes(` name=${name} `))
        ?.match(/^id=(\d+)/)?.[1];
      assert.ok(id, 'found the store connection');
      await admin.client('KILL', 'ID', id);
      const started = Date.now();
      let ok = false;
      let failures = 0;
      while (!ok && Date.now() - started < 15_000) {
        try {
          await store.hitCounter('k', 60_000, Date.now());
          ok = true;
        } catch (err) {
          assert.ok(err instanceof StoreUnavailableError, String(err));
          failures++;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      assert.ok(ok, `reconnected (after ${failures} coded failures)`);
    } finally {
      await admin.quit();
      await store.close();
    }
  });
});
