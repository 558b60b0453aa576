// The stores a bench runs against: a fresh PostgreSQL schema and a Redis server of the bench's
// own (so INFO used_memory counts only what the bench put there), both removed at the end.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort, waitForPort } from './proc.js';

export const DATABASE_URL =
  process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type TesseraStore = 'sqlite' | 'postgres' | 'redis';

export interface Services {
  /**
   * A server's environment for a Tessera store, in a schema (and Redis prefix) of its own: sessions
   * in SQLite (the embedded default), in PostgreSQL, or in Redis with the accounts in PostgreSQL.
   */
  env(store: TesseraStore): { env: Record<string, string>; schema?: string; prefix?: string };
  redisUrl: string;
  db: pg.Client;
  redis: Redis;
  /** Bytes a schema's sessions table takes, with its indexes and TOAST. */
  pgSessionBytes(schema: string): Promise<number>;
  /** INFO memory used_memory of the bench's Redis. */
  redisUsedMemory(): Promise<number>;
  cleanup(): Promise<void>;
}

/** A client of TESSERA_TEST_DATABASE_URL, or why there is none. */
export async function connectPostgres(): Promise<pg.Client | { skip: string }> {
  const db = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await db.connect();
    await db.query('SELECT 1');
    return db;
  } catch (err) {
    await db.end().catch(() => undefined);
    return { skip: `PostgreSQL at ${DATABASE_URL} not reachable (${(err as Error).message})` };
  }
}

/** A fresh schema on TESSERA_TEST_DATABASE_URL and a redis-server of our own; or why not. */
export async function openServices(): Promise<Services | { skip: string }> {
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  const db = await connectPostgres();
  if ('skip' in db) return db;
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-redis-'));
  let child: ChildProcess;
  try {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      {
        stdio: 'ignore',
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      waitForPort(port, 5000).then(resolve, reject);
    });
  } catch (err) {
    await db.end();
    rmSync(dir, { recursive: true, force: true });
    return { skip: `redis-server could not be started (${(err as Error).message})` };
  }
  const redisUrl = `redis://127.0.0.1:${port}/0`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const schemas: string[] = [];
  return {
    env(store) {
      if (store === 'sqlite') return { env: {} };
      const s = `${schema}_${schemas.length}`;
      schemas.push(s);
      const env = { TESSERA_DATABASE_URL: DATABASE_URL, TESSERA_DATABASE_SCHEMA: s };
      if (store === 'postgres') return { env, schema: s };
      const prefix = `${s}:`;
      return {
        env: { ...env, TESSERA_REDIS_URL: redisUrl, TESSERA_REDIS_PREFIX: prefix },
        schema: s,
        prefix,
      };
    },
    redisUrl,
    db,
    redis,
    async pgSessionBytes(s) {
      const r = await db.query(`SELECT pg_total_relation_size('${s}.sessions')::bigint AS n`);
      return Number(r.rows[0].n);
    },
    async redisUsedMemory() {
      const info = await redis.info('memory');
      return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
    },
    async cleanup() {
      redis.disconnect();
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      for (const s of schemas) await db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`).catch(() => undefined);
      await db.end();
    },
  };
}
