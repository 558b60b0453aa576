import path from 'node:path';
import Database from 'better-sqlite3';
import { privateDir, privateFile } from '../util/private-files.js';
import type { Stores } from './ports.js';

/** The file in the data folder a serving process holds locked while it runs. */
export const SERVER_LOCK_FILE = 'server.lock';

/** A server was started on a data folder that another running server holds. */
export class DataFolderInUseError extends Error {
  readonly dataDir: string;
  constructor(dataDir: string, cause?: unknown) {
    super(
      `another Tessera server is running on the data folder ${dataDir}: on the embedded SQLite store one server ` +
        'process owns the folder (login counters and lockouts live in that process); ' +
        'to run several servers, use PostgreSQL and Redis (TESSERA_DATABASE_URL, TESSERA_REDIS_URL)',
      { cause },
    );
    this.name = 'DataFolderInUseError';
    this.dataDir = dataDir;
  }
}

/**
 * The lock connections this process holds, so that none is garbage-collected (which closes it,
 * and drops the lock) while its server runs, even when nothing else keeps that server reachable.
 */
const held = new Set<Database.Database>();

/** Held by one serving process; release() is safe to call twice. */
export interface ServerLock {
  release(): void;
}

/**
 * The deployment keeps its rate-limit counters and lockouts in the process (the embedded SQLite
 * store without Redis): a second server beside it would count on its own.
 */
export function countersInProcess(stores: Pick<Stores, 'backends'>): boolean {
  return stores.backends.some((b) => b.kind === 'memory');
}

/**
 * Takes the data folder for this process: an exclusive lock on `server.lock` in it, or
 * DataFolderInUseError at once when another process (or another server in this one) holds it.
 * The lock is SQLite's: a small database of its own held in an EXCLUSIVE transaction that never
 * ends, on POSIX advisory locks, which the kernel drops when the process dies however it dies,
 * so a crash leaves nothing to clean up (the empty file stays and is reused). Nothing is written
 * to it, and its journal is kept in memory, so no journal file is left beside it either. Nothing
 * else in the process may open the file (closing any descriptor of it drops POSIX locks):
 * privateFile opens it only to create it. The `tessera` commands never take it: they open the
 * store beside a running server.
 */
export function lockDataFolder(dataDir: string): ServerLock {
  privateDir(dataDir);
  const file = path.join(dataDir, SERVER_LOCK_FILE);
  privateFile(file, true);
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    const code = err instanceof Error && 'code' in err ? String((err as { code: unknown }).code) : '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
      throw new DataFolderInUseError(path.resolve(dataDir), err);
    throw err;
  }
  held.add(db);
  return {
    release: () => {
      held.delete(db);
      if (db.open) db.close();
    },
  };
}
