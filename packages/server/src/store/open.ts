import path from 'node:path';
import type { Config } from '../config.js';
import type { OAuthStore } from '../oauth/types.js';
import type {
  AuditLog,
  Backend,
  Counters,
  KeyStore,
  RevocationLog,
  SessionStore,
  Stores,
  UserStore,
} from './ports.js';

export type StoresConfig = Pick<
  Config,
  'dataDir' | 'databaseUrl' | 'databaseSchema' | 'redisUrl' | 'redisCluster' | 'redisPrefix'
> &
  Partial<Pick<Config, 'sqliteSync'>>;

/**
 * Every role from the backends the configuration names. The durable roles (users, keys,
 * revocations, audit, OAuth, the mail queue) come from PostgreSQL when TESSERA_DATABASE_URL is set, else from the
 * embedded SQLite file in the data folder; with TESSERA_REDIS_URL (one Redis or a Redis Cluster)
 * sessions, refresh tokens and counters come from Redis, their source of truth, else from the
 * durable backend too (the embedded file keeps its counters in the process). Rejects with StoreUnavailableError, leaving nothing open, when a backend
 * is down.
 */
export async function openStores(config: StoresConfig): Promise<Stores> {
  const durable = config.databaseUrl
    ? await (await import('./postgres.js')).openPostgresStores(config.databaseUrl, {
        schema: config.databaseSchema,
      })
    : (await import('./sqlite.js')).openSqliteStores(path.join(config.dataDir, 'tessera.sqlite'), {
        sync: config.sqliteSync,
      });
  if (!config.redisUrl) return durable;
  try {
    const [{ RedisBackend }, { RedisCounters }, { RedisSessionStore }] = await Promise.all([
      import('./redis.js'),
      import('./redis-counters.js'),
      import('./redis-sessions.js'),
    ]);
    const redis = await RedisBackend.open(config.redisUrl, {
      prefix: config.redisPrefix,
      cluster: config.redisCluster,
    });
    // Redis takes over the counters; a counters backend of the durable side's own (the embedded
    // file's in-process ones) is closed rather than left running unused.
    const replaced = durable.backends.find((b) => (b as unknown) === durable.counters);
    if (replaced) await replaced.close();
    return {
      ...durable,
      sessions: new RedisSessionStore(redis),
      counters: new RedisCounters(redis),
      backends: [...durable.backends.filter((b) => b !== replaced), redis],
    };
  } catch (err) {
    await closeStores(durable);
    throw err;
  }
}

/** Every role but the identities and the mail queue, which each backend adds beside its users. */
export type AccountStores = Omit<Stores, 'identities' | 'mail'>;

/**
 * Every role from one backend: its account roles, its OAuth store, and itself to ping and close.
 * Counters come from the account roles unless given apart (with their own backend to close).
 */
export function storesOn(
  backend: Backend,
  accounts: UserStore & SessionStore & KeyStore & RevocationLog & AuditLog,
  oauth: OAuthStore,
  counters: Counters & Backend,
): AccountStores;
export function storesOn(
  backend: Backend,
  accounts: UserStore & SessionStore & KeyStore & RevocationLog & Counters & AuditLog,
  oauth: OAuthStore,
): AccountStores;
export function storesOn(
  backend: Backend,
  accounts: UserStore & SessionStore & KeyStore & RevocationLog & AuditLog & Partial<Counters>,
  oauth: OAuthStore,
  counters?: Counters & Backend,
): AccountStores {
  return {
    users: accounts,
    sessions: accounts,
    keys: accounts,
    revocations: accounts,
    counters: counters ?? (accounts as Counters),
    audit: accounts,
    oauth,
    backends: counters ? [backend, counters] : [backend],
  };
}

/** Closes every backend behind the roles, each once, whichever fail. */
export async function closeStores(stores: Pick<Stores, 'backends'>): Promise<void> {
  await Promise.allSettled(stores.backends.map((b) => b.close()));
}

/** Readiness: every backend answers. */
/**
 * What the deployment keeps its data in, for /readyz and the start-up log: 'sqlite', 'postgres',
 * 'postgres+redis'… In-process parts (the embedded counters) are not a store and are left out.
 */
export function storeLabel(stores: Pick<Stores, 'backends'>): string {
  return stores.backends
    .map((b) => b.kind)
    .filter((k) => k !== 'memory')
    .join('+');
}

export async function pingStores(stores: Pick<Stores, 'backends'>): Promise<void> {
  await Promise.all(stores.backends.map((b) => b.ping()));
}
