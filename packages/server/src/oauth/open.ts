import path from 'node:path';
import type { Config } from '../config.js';
import { SqliteOAuthStore } from './sqlite.js';
import type { OAuthStore } from './types.js';

/**
 * The OAuth store the configuration names. For now the embedded SQLite file next to the
 * account store (`oauth.sqlite` in the data folder); the server and the CLI open the same one.
 */
export function openOAuthStore(config: Pick<Config, 'dataDir'>): OAuthStore {
  return new SqliteOAuthStore(path.join(config.dataDir, 'oauth.sqlite'));
}
