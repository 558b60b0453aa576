// Clean-up for suites that run against the real PostgreSQL and Redis: each run works in schemas
// and key prefixes of its own and removes them at the end.
import { Redis } from 'ioredis';
import pg from 'pg';

/** Set by scripts/test.mjs when the service answers; unset means its suites skip. */
export const databaseUrl = process.env.TESSERA_TEST_DATABASE_URL;
export const redisUrl = process.env.TESSERA_TEST_REDIS_URL;
const missing = [
  databaseUrl ? null : 'PostgreSQL not reachable: TESSERA_TEST_DATABASE_URL unset',
  redisUrl ? null : 'Redis not reachable: TESSERA_TEST_REDIS_URL unset',
].filter((x) => x !== null);
/** Why a suite that needs both PostgreSQL and Redis skips; undefined when both are there. */
export const skipWithoutPgAndRedis = missing.length > 0 ? missing.join('; ') : undefined;

export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await admin.end();
  }
}

export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}
