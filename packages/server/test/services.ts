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

/** Every key of a deployment's Redis under `prefix`, with its hash (key layout: src/store/redis-sessions.ts). */
async function redisHashes(url: string, pattern: string): Promise<Map<string, Record<string, string>>> {
  const redis = new Redis(url);
  const out = new Map<string, Record<string, string>>();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      for (const key of keys) if ((await redis.type(key)) === 'hash') out.set(key, await redis.hgetall(key));
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  return out;
}

/** The refresh tokens a deployment keeps in Redis under `prefix`. */
export async function redisRefreshTokens(
  url: string,
  prefix: string,
): Promise<{ id: string; parentId: string | null; usedAt: number | null }[]> {
  const hashes = await redisHashes(url, `${prefix}s:{*}:rt:*`);
  return [...hashes].map(([key, h]) => ({
    id: key.slice(key.lastIndexOf(':rt:') + 4),
    parentId: h.parentId ?? null,
    usedAt: h.usedAt === undefined ? null : Number(h.usedAt),
  }));
}

/** The sessions a deployment keeps in Redis under `prefix`. */
export async function redisSessions(
  url: string,
  prefix: string,
): Promise<{ id: string; revokeReason: string | null }[]> {
  const hashes = await redisHashes(url, `${prefix}s:{*}`);
  return [...hashes].map(([, h]) => ({ id: h.id ?? '', revokeReason: h.revokeReason ?? null }));
}
