import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import type { Backend } from './ports.js';

/** One Redis or one Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  /** `url` names one node of a Redis Cluster (or several, comma-separated); the rest are discovered. */
  cluster?: boolean;
  connectTimeoutMillis?: number;
  /** A command that gets no answer within this rejects. */
  commandTimeoutMillis?: number;
  /** CLIENT SETNAME, to find the connections in CLIENT LIST. */
  connectionName?: string;
  /** For a subscriber: queue commands while reconnecting and retry them without limit. */
  subscriber?: boolean;
}

/**
 * Connects to Redis, or to a Redis Cluster when `cluster` is set. Commands fail fast while
 * Redis is away (no offline queue, one retry, a command timeout) and the client reconnects on
 * its own. Rejects with StoreUnavailableError when nothing answers.
 */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<RedisClient> {
  const connectTimeout = options.connectTimeoutMillis ?? 2000;
  const node: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: options.subscriber === true,
    maxRetriesPerRequest: options.subscriber ? null : 1,
    connectTimeout,
    ...(options.subscriber ? {} : { commandTimeout: options.commandTimeoutMillis ?? 2000 }),
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    // After a failed connect ioredis keeps a timer this long for a socket that is already gone.
    disconnectTimeout: 200,
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
  };
  let client: RedisClient;
  if (options.cluster) {
    const seeds = url.split(',').map((u) => u.trim());
    const { lazyConnect: _, enableOfflineQueue, retryStrategy, ...redisOptions } = node;
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue,
      redisOptions,
      clusterRetryStrategy: retryStrategy as ClusterOptions['clusterRetryStrategy'],
      slotsRefreshTimeout: connectTimeout,
    };
    client = new Cluster(seeds, clusterOptions);
  } else {
    // Commands issued in one turn of the event loop (the requests of that turn) go out in one
    // write and come back in one read: one system call each way instead of one per command.
    // (Not on a cluster: ioredis refuses an automatic pipeline whose commands span slot groups.)
    client = new Redis(url, options.subscriber ? node : { ...node, enableAutoPipelining: true });
  }
  // Errors reach callers as rejected commands; without a listener ioredis would log each one.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new StoreUnavailableError(err);
  }
  return client;
}

/** Reply errors that mean "this Redis can't serve now", not "the script is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|OOM|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/;

function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return UNAVAILABLE_REPLY.test(err.message);
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError) return false;
  // Connection refused or reset, "Stream isn't writeable", "Connection is closed", command
  // timeouts, MaxRetriesPerRequestError and ClusterAllFailedError: all mean Redis is not answering.
  return true;
}

function wrap(err: unknown): unknown {
  return isUnavailable(err) ? new StoreUnavailableError(err) : err;
}

type Arg = string | number;

export interface RedisBackendOptions extends RedisConnectOptions {
  /** Prepended to every key; tests use a random one per run. */
  prefix?: string;
  /** How long records are kept past their own end (clock skew, late reuse of a refresh token). */
  retainMs?: number;
}

/**
 * The connection the Redis roles share (redis-sessions.ts, redis-counters.ts). Every change that
 * must be atomic is one Lua script whose keys all share one hash tag, so each runs on one node
 * of a cluster too. Scripts only copy numbers they were given as strings (or format integers
 * with %.0f), never print Lua doubles, so ms times stay exact.
 */
export class RedisBackend implements Backend {
  readonly kind = 'redis';
  readonly prefix: string;
  readonly retainMs: number;
  private readonly scripts = new Set<string>();

  private constructor(
    readonly client: RedisClient,
    options: RedisBackendOptions,
  ) {
    this.prefix = options.prefix ?? 'tessera:';
    this.retainMs = options.retainMs ?? 3_600_000;
  }

  /** Connects; rejects with StoreUnavailableError when Redis cannot be reached. */
  static async open(url: string, options: RedisBackendOptions = {}): Promise<RedisBackend> {
    return new RedisBackend(await connectRedis(url, options), options);
  }

  /** Registers Lua scripts under their names (once per name). */
  define(scripts: Record<string, string>): void {
    for (const [name, lua] of Object.entries(scripts)) {
      if (this.scripts.has(name)) continue;
      this.client.defineCommand(name, { lua });
      this.scripts.add(name);
    }
  }

  /** Time to live for a record whose own end is `until` (ms since the epoch), with the retention after it. */
  ttl(until: number): number {
    return Math.max(0, Math.ceil(until - Date.now())) + this.retainMs;
  }

  async script<T>(name: string, keys: string[], args: Arg[]): Promise<T> {
    const fn = (this.client as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[name];
    if (!this.scripts.has(name) || !fn) throw new Error(`redis script ${name} is not defined`);
    try {
      return (await fn.call(this.client, keys.length, ...keys, ...args)) as T;
    } catch (err) {
      throw wrap(err);
    }
  }

  async cmd<T>(fn: (r: RedisClient) => Promise<T>): Promise<T> {
    try {
      return await fn(this.client);
    } catch (err) {
      throw wrap(err);
    }
  }

  async ping(): Promise<void> {
    await this.cmd((r) => r.ping());
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

/** Field/value list of a record, leaving nulls out. */
export function fields(record: Record<string, string | number | boolean | null>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (v === null) continue;
    out.push(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  return out;
}

export function toMap(flat: unknown): Map<string, string> {
  const list = flat as string[];
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) m.set(list[i]!, list[i + 1]!);
  return m;
}

export const str = (m: Map<string, string>, k: string): string => m.get(k) ?? '';
export const num = (m: Map<string, string>, k: string): number => Number(m.get(k));
export const optStr = (m: Map<string, string>, k: string): string | null => m.get(k) ?? null;
export const optNum = (m: Map<string, string>, k: string): number | null =>
  m.has(k) ? Number(m.get(k)) : null;
