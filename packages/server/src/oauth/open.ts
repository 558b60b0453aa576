import path from 'node:path';
import type { Config } from '../config.js';
import { SqliteOAuthStore } from './sqlite.js';
import type { OAuthStore } from './types.js';

/**
 * The OAuth store the configuration names; the server and the CLI open it through here.
 * With `databaseUrl` set: PostgreSQL, in the account store's schema (`databaseSchema`), so every
 * instance of a cluster shares clients, codes, grants and the DPoP replay cache. Otherwise the
 * embedded SQLite file `oauth.sqlite` in the data folder.
 */
export async function connectOAuthStore(
  config: Pick<Config, 'dataDir'> & Partial<Pick<Config, 'databaseUrl' | 'databaseSchema'>>,
): Promise<OAuthStore> {
  if (config.databaseUrl) {
    const { PostgresOAuthStore } = await import('./postgres.js');
    return PostgresOAuthStore.open(config.databaseUrl, { schema: config.databaseSchema ?? 'public' });
  }
  return openOAuthStore(config);
}

/** The embedded SQLite file `oauth.sqlite` in the data folder (synchronous; no database URL). */
export function openOAuthStore(
  config: Pick<Config, 'dataDir'> & Partial<Pick<Config, 'databaseUrl'>>,
): OAuthStore {
  if (config.databaseUrl) throw new TypeError('openOAuthStore: a databaseUrl is set; use connectOAuthStore');
  return new SqliteOAuthStore(path.join(config.dataDir, 'oauth.sqlite'));
}
