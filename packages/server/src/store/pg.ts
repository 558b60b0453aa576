import pg from 'pg';
import { StoreUnavailableError } from '../errors.js';
import type { Backend } from './ports.js';
import type { Row } from './rows.js';

/**
 * The PostgreSQL backend every role on it shares (accounts, OAuth): one pool, fault mapping to
 * StoreUnavailableError, transactions that drop broken connections, and migrations that run each
 * once, in order, under one advisory lock per schema.
 */

export interface PgOptions {
  /** Schema holding the tables; created when missing. Lower-case letters, digits and `_`. */
  schema?: string;
  /** Pool size. */
  max?: number;
  connectionTimeoutMillis?: number;
  /** Server-side statement_timeout and client-side query_timeout. */
  statementTimeoutMillis?: number;
  applicationName?: string;
}

export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const INT8_OID = 20;

/** int8 (BIGINT, count(*)) comes back as a string; every such value here is a safe integer. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): unknown {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  },
};

/**
 * SQLSTATE classes that mean "the database cannot do it right now", not "your query is wrong":
 * connection (08), resources (53), operator intervention (57), system (58), and a transaction
 * rolled back by the database (40: a deadlock, a serialization failure) that a retry may pass.
 */
const UNAVAILABLE_CLASSES = ['08', '40', '53', '57', '58'];

export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (err instanceof pg.DatabaseError) {
    return typeof code === 'string' && UNAVAILABLE_CLASSES.includes(code.slice(0, 2));
  }
  // Programming mistakes stay what they are.
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError) return false;
  // Anything else raised by pg is about the connection: ECONNREFUSED, ECONNRESET, connect or
  // query timeouts, "Connection terminated unexpectedly", a pool that was closed.
  return true;
}

export function wrap(err: unknown): unknown {
  return isUnavailable(err) ? new StoreUnavailableError(err) : err;
}

export type Queryable = Pick<pg.PoolClient, 'query'>;

export class PgDatabase implements Backend {
  readonly kind = 'postgres';

  private constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
  ) {}

  /**
   * Connects, creates the schema if needed and runs the pending `migrations`, recorded in
   * `migrationTable`; rejects with StoreUnavailableError when the database cannot be reached.
   */
  static async open(
    url: string,
    options: PgOptions,
    setup: { owner: string; applicationName: string; migrationTable: string; migrations: readonly string[] },
  ): Promise<PgDatabase> {
    const schema = options.schema ?? 'public';
    if (!SCHEMA_NAME.test(schema)) throw new TypeError(`${setup.owner}: schema must match ${SCHEMA_NAME}`);
    const statementTimeout = options.statementTimeoutMillis ?? 5000;
    const pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 3000,
      idleTimeoutMillis: 30_000,
      statement_timeout: statementTimeout,
      query_timeout: statementTimeout + 1000,
      idle_in_transaction_session_timeout: 10_000,
      application_name: options.applicationName ?? setup.applicationName,
      options: `-c search_path=${schema}`,
      types,
    });
    // An idle client whose server went away emits here; without a listener the process would crash.
    // The pool drops that client and the next query opens a new connection.
    pool.on('error', () => {});
    const db = new PgDatabase(pool, schema);
    try {
      await db.migrate(setup.migrationTable, setup.migrations);
    } catch (err) {
      await pool.end().catch(() => {});
      throw wrap(err);
    }
    return db;
  }

  private async migrate(table: string, migrations: readonly string[]): Promise<void> {
    await this.tx(async (c) => {
      // One lock per schema for every store and instance: migrations run one at a time, so
      // CREATE SCHEMA never races. Released at commit.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tessera:migrate:${this.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${table} (
         version INTEGER PRIMARY KEY,
         applied_at BIGINT NOT NULL
       )`);
      const { rows } = await c.query(`SELECT coalesce(max(version), 0) AS v FROM ${table}`);
      const applied = Number(rows[0]?.v ?? 0);
      for (let v = applied; v < migrations.length; v++) {
        await c.query(migrations[v]!);
        await c.query(`INSERT INTO ${table} (version, applied_at) VALUES ($1, $2)`, [v + 1, Date.now()]);
      }
    });
  }

  async q(sql: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows as Row[];
    } catch (err) {
      throw wrap(err);
    }
  }

  async count(sql: string, params: unknown[]): Promise<number> {
    try {
      return (await this.pool.query(sql, params)).rowCount ?? 0;
    } catch (err) {
      throw wrap(err);
    }
  }

  async tx<T>(fn: (c: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw wrap(err);
    }
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (err) {
      // The database refused something (a constraint, a deadlock, a serialization failure): the
      // connection is fine once rolled back. Anything else (the connection dropped, a client-side
      // timeout) or a failed rollback: the connection is destroyed rather than returned to the pool.
      const refused = err instanceof pg.DatabaseError;
      const rolledBack =
        refused &&
        (await client.query('ROLLBACK').then(
          () => true,
          () => false,
        ));
      client.release(rolledBack ? undefined : (err as Error));
      throw wrap(err);
    }
  }

  async ping(): Promise<void> {
    await this.q('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
