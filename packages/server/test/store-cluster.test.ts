import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { StoreUnavailableError } from '../src/errors.js';
import { ClusterStore } from '../src/store/cluster.js';
import { databaseUrl, deleteRedisKeys, dropSchemas, redisUrl, skipWithoutPgAndRedis } from './services.js';
import { runStoreContract } from './store-contract.js';

const skip = skipWithoutPgAndRedis;

const run = randomBytes(6).toString('hex');
const schema = `tessera_test_${run}_cluster`;
const prefix = `tessera:test:${run}:cluster:`;

after(async () => {
  if (skip) return;
  await dropSchemas(databaseUrl!, [schema]);
  await deleteRedisKeys(redisUrl!, prefix);
});

runStoreContract(
  'cluster (postgres + redis)',
  () => ClusterStore.open(databaseUrl!, redisUrl!, { postgres: { schema }, redis: { prefix } }),
  { skip },
);

describe('cluster store', { skip }, () => {
  it('refuses to start when one half is down, and leaves nothing open', async () => {
    await assert.rejects(
      ClusterStore.open(databaseUrl!, 'redis://127.0.0.1:1/0', { postgres: { schema } }),
      (err: unknown) => err instanceof StoreUnavailableError && err.code === 'unavailable',
    );
  });
});
