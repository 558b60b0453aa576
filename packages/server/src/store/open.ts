import path from 'node:path';
import type { Config } from '../config.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/**
 * The store the configuration names: PostgreSQL (with Redis for hot state when both are set),
 * Redis alone, or the embedded SQLite file in the data folder.
 */
export async function openStore(config: Config): Promise<Store> {
  if (config.databaseUrl && config.redisUrl) {
    const { ClusterStore } = await import('./cluster.js');
    return ClusterStore.open(config.databaseUrl, config.redisUrl, {
      postgres: { schema: config.databaseSchema },
      redis: { prefix: config.redisPrefix },
    });
  }
  if (config.databaseUrl) {
    const { PostgresStore } = await import('./postgres.js');
    return PostgresStore.open(config.databaseUrl, { schema: config.databaseSchema });
  }
  if (config.redisUrl) {
    const { RedisStore } = await import('./redis.js');
    return RedisStore.open(config.redisUrl, { prefix: config.redisPrefix });
  }
  return new SqliteStore(path.join(config.dataDir, 'tessera.sqlite'));
}
