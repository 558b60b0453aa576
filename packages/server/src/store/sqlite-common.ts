import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors.js';
import { privateDir, privateFile } from '../util/private-files.js';

/**
 * Runs synchronous SQLite work as a promise. SQLite faults (locked, I/O, corrupt, full) fail
 * closed as StoreUnavailableError, so the HTTP layer answers 503; constraint violations are the
 * caller's business and stay what they are.
 */
export function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? String((err as { code: unknown }).code) : '';
    if (code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT')) {
      return Promise.reject(new StoreUnavailableError(err));
    }
    return Promise.reject(err);
  }
}

/** Prepared statements, each prepared once per connection. */
export class StatementCache {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

/**
 * Opens a SQLite file (or ':memory:') in WAL mode, creating its folder. Folder 0700, files 0600:
 * the file is made before SQLite opens it, and SQLite gives its -wal and -shm files the same mode.
 */
export function openSqlite(file: string): Database.Database {
  const onDisk = file !== ':memory:';
  if (onDisk) {
    privateDir(path.dirname(file));
    privateFile(file, true);
    privateFile(`${file}-wal`);
    privateFile(`${file}-shm`);
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}
