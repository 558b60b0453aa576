// docs/security.md, "When a store fails": a store that is down gives 503 and never lets a request through; the
// service comes back by itself when the store does; a crash mid-rotation loses nothing.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { StoreUnavailableError } from '../src/errors.js';
import type { RotateRequest, SessionStore, Stores } from '../src/store/ports.js';
import { openPostgresStores } from '../src/store/postgres.js';
import { RedisBackend } from '../src/store/redis.js';
import { RedisCounters } from '../src/store/redis-counters.js';
import { RedisSessionStore } from '../src/store/redis-sessions.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import {
  type Answer,
  call,
  freePort,
  registerAndLogin,
  startTestServer,
  type TestServer,
} from './helpers.js';

const databaseUrl = process.env.TESSERA_TEST_DATABASE_URL;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Processes and sockets this file starts; all are ended in `after`, even when a test fails.

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await sleep(25);
  }
}

/** A throwaway redis-server on loopback; append-only file with fsync always, so a kill -9 loses nothing. */
async function startRedisServer(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--dir',
      dir,
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  await waitForPort(port);
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A loopback TCP proxy to PostgreSQL that can be cut (listener closed, every socket reset) and restored. */
class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// (a) A store that is down

interface Credentials {
  access: string;
  refresh: string;
  session: string;
  username: string;
}

async function signIn(server: TestServer): Promise<Credentials> {
  const token = await registerAndLogin(server.url, { mode: 'token', delivery: 'header' });
  const session = await call(server.url, 'POST', '/auth/login', {
    body: {
      username: token.username,
      password: 'correct horse battery staple',
      mode: 'session',
      delivery: 'header',
    },
  });
  assert.equal(session.status, 200);
  return {
    access: token.login.body.access_token,
    refresh: token.login.body.refresh_token,
    session: session.body.session_token,
    username: token.username,
  };
}

type Route = [string, string, { body?: unknown; headers?: Record<string, string> }];

/** Every route: what a down durable store must refuse. */
const allRoutes = (creds: Credentials): Route[] => [
  ...counterRoutes(creds),
  ['GET', '/auth/me', { headers: bearer(creds.access) }],
  ['GET', '/auth/me', { headers: bearer(creds.session) }],
  ['GET', '/auth/sessions', { headers: bearer(creds.access) }],
  ['GET', '/auth/sessions', { headers: bearer(creds.session) }],
  ['POST', '/auth/logout', { headers: bearer(creds.access) }],
  ['POST', '/auth/logout-all', { headers: bearer(creds.session) }],
];

/** The routes that count attempts (and readiness): what down counters must refuse. */
const counterRoutes = (creds: Credentials): Route[] => [
  ['POST', '/auth/login', { body: { username: creds.username, password: 'correct horse battery staple' } }],
  ['POST', '/auth/refresh', { body: { refresh_token: creds.refresh } }],
  ['GET', '/readyz', {}],
];

/** Routes a down store must refuse: 503 `unavailable`, never 200 and never a 401 that hides the outage. */
async function assertUnavailable(server: TestServer, requests: Route[]): Promise<void> {
  const answers: Answer[] = await Promise.all(
    requests.map(([method, url, options]) => call(server.url, method, url, options)),
  );
  answers.forEach((r, i) => {
    const [method, url] = requests[i]!;
    assert.notEqual(r.status, 200, `${method} ${url} must not succeed while the store is down`);
    assert.equal(r.status, 503, `${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, 'unavailable');
    assert.doesNotMatch(JSON.stringify(r.body), /ECONNREFUSED|at .*\.ts|stack|127\.0\.0\.1/);
  });
  assert.equal(
    (await call(server.url, 'GET', '/healthz')).status,
    200,
    'liveness stays up: no restart needed',
  );
}

async function waitReady(server: TestServer, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const r = await call(server.url, 'GET', '/readyz');
    if (r.status === 200) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not ready after ${timeoutMs} ms: ${r.status}`);
    await sleep(100);
  }
}

/** After the store is back: the old credentials work again, nothing was lost, and new logins work. */
async function assertRecovered(server: TestServer, creds: Credentials): Promise<void> {
  assert.equal((await call(server.url, 'GET', '/auth/me', { headers: bearer(creds.access) })).status, 200);
  assert.equal((await call(server.url, 'GET', '/auth/me', { headers: bearer(creds.session) })).status, 200);
  const refreshed = await call(server.url, 'POST', '/auth/refresh', {
    body: { refresh_token: creds.refresh },
  });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  const login = await call(server.url, 'POST', '/auth/login', {
    body: { username: creds.username, password: 'correct horse battery staple' },
  });
  assert.equal(login.status, 200);
}

/** The embedded stores in memory with their sessions and counters in the Redis on `port`. */
async function withRedis(port: number, commandTimeoutMillis?: number): Promise<Stores> {
  const durable = openSqliteStores(':memory:');
  const hot = await RedisBackend.open(`redis://127.0.0.1:${port}/0`, {
    prefix: 'tessera:fault:',
    commandTimeoutMillis,
  });
  return {
    ...durable,
    sessions: new RedisSessionStore(hot),
    counters: new RedisCounters(hot),
    backends: [...durable.backends, hot],
  };
}

describe('faults: a store that is down', { timeout: 45_000 }, () => {
  const redisSkip = redisServerAvailable() ? undefined : 'no redis-server binary on PATH';

  it('Redis (the counters) killed (kill -9): logins and refreshes 503, back by itself when Redis restarts', {
    skip: redisSkip,
  }, async (t) => {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-fault-redis-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    let redis = await startRedisServer(port, dir);
    const server = await startTestServer({}, { stores: await withRedis(port), realClock: true });
    cleanups.push(() => server.close());
    const creds = await signIn(server);
    assert.equal((await call(server.url, 'GET', '/readyz')).status, 200);

    redis.kill('SIGKILL');
    await exited(redis);
    await assertUnavailable(server, counterRoutes(creds));

    redis = await startRedisServer(port, dir);
    const ms = await waitReady(server, 10_000);
    t.diagnostic(`ready again ${ms} ms after Redis came back`);
    await assertRecovered(server, creds);
  });

  it('Redis (the counters) hung (SIGSTOP): requests time out into 503, and flow again on SIGCONT', {
    skip: redisSkip,
  }, async () => {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-fault-redis-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const redis = await startRedisServer(port, dir);
    const server = await startTestServer({}, { stores: await withRedis(port, 500), realClock: true });
    cleanups.push(() => server.close());
    const creds = await signIn(server);

    redis.kill('SIGSTOP');
    try {
      const [login, ready] = await Promise.all([
        call(server.url, 'POST', '/auth/login', {
          body: { username: creds.username, password: 'correct horse battery staple' },
        }),
        call(server.url, 'GET', '/readyz'),
      ]);
      assert.equal(login.status, 503);
      assert.equal(login.body.error, 'unavailable');
      assert.equal(ready.status, 503);
    } finally {
      redis.kill('SIGCONT');
    }
    await waitReady(server, 10_000);
    await assertRecovered(server, creds);
  });

  it('PostgreSQL unreachable (connections reset, port closed): 503 everywhere, back by itself', {
    skip: databaseUrl ? undefined : 'PostgreSQL not reachable: TESSERA_TEST_DATABASE_URL unset',
  }, async (t) => {
    const target = new URL(databaseUrl!);
    const proxy = new CuttableProxy(await freePort(), {
      host: target.hostname,
      port: Number(target.port || 5432),
    });
    await proxy.up();
    cleanups.push(() => proxy.down());
    const viaProxy = new URL(databaseUrl!);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const schema = `tessera_test_${randomBytes(6).toString('hex')}_fault`;
    cleanups.push(async () => {
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await admin.end();
      }
    });
    const stores = await openPostgresStores(viaProxy.href, {
      schema,
      connectionTimeoutMillis: 1000,
      statementTimeoutMillis: 1000,
    });
    const server = await startTestServer({}, { stores, realClock: true });
    cleanups.push(() => server.close());
    const creds = await signIn(server);

    await proxy.down();
    await assertUnavailable(server, allRoutes(creds));
    // Still down a moment later (no lucky reconnect, no cached answer).
    await sleep(300);
    assert.equal((await call(server.url, 'GET', '/auth/me', { headers: bearer(creds.access) })).status, 503);

    await proxy.up();
    const ms = await waitReady(server, 10_000);
    t.diagnostic(`ready again ${ms} ms after PostgreSQL came back`);
    await assertRecovered(server, creds);
  });
});

// ---------------------------------------------------------------------------------------------
// (b) A crash between rotation steps (SQLite)

type Fault = 'none' | 'before-commit' | 'after-commit';

/** The embedded stores in a file, their sessions wrapped so the next rotateRefreshToken fails: before it commits, or after (the answer is lost). */
function faultyRotation(): {
  stores: Stores;
  next: { fault: Fault };
  usedAt(id: string): number | null;
  parentOf(id: string): string | null;
} {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'tessera-fault-rotate-')), 'tessera.sqlite');
  const stores = openSqliteStores(file);
  const next = { fault: 'none' as Fault };
  const sessions = new Proxy(stores.sessions, {
    get(target, prop) {
      if (prop === 'rotateRefreshToken') {
        return async (request: RotateRequest) => {
          const fault = next.fault;
          next.fault = 'none';
          if (fault === 'before-commit')
            throw new StoreUnavailableError(new Error('connection lost before commit'));
          const outcome = await target.rotateRefreshToken(request);
          if (fault === 'after-commit')
            throw new StoreUnavailableError(new Error('connection lost after commit'));
          return outcome;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as SessionStore;
  // What the file holds, read on a connection of its own.
  const row = (id: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare('SELECT used_at, parent_id FROM refresh_tokens WHERE id = ?').get(id) as
        | { used_at: number | null; parent_id: string | null }
        | undefined;
    } finally {
      db.close();
    }
  };
  return {
    stores: { ...stores, sessions },
    next,
    usedAt: (id) => row(id)?.used_at ?? null,
    parentOf: (id) => row(id)?.parent_id ?? null,
  };
}

describe('faults: a crash mid-rotation loses nothing (SQLite)', () => {
  it('committed but the answer was lost: the retry within grace gets the successor', async () => {
    const { stores, next, usedAt, parentOf } = faultyRotation();
    const server = await startTestServer({}, { stores });
    try {
      const { login } = await registerAndLogin(server.url, { mode: 'token', delivery: 'header' });
      const old = login.body.refresh_token as string;
      const oldId = old.split('.')[0]!;

      next.fault = 'after-commit';
      const lost = await call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: old } });
      assert.equal(lost.status, 503);
      assert.equal(lost.body.error, 'unavailable');
      assert.notEqual(usedAt(oldId), null, 'the rotation did commit');

      server.clock.now += 5_000; // within the 10 s grace window
      const retry = await call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: old } });
      assert.equal(retry.status, 200, JSON.stringify(retry.body));
      const successor = retry.body.refresh_token as string;
      assert.equal(
        parentOf(successor.split('.')[0]!),
        oldId,
        'the retry got the successor the lost answer carried',
      );
      assert.equal(retry.body.session_id, login.body.session_id);

      // The chain goes on, and it is one chain.
      const onward = await call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: successor } });
      assert.equal(onward.status, 200);
      assert.equal(
        (await call(server.url, 'GET', '/auth/me', { headers: bearer(onward.body.access_token) })).status,
        200,
      );
      // Its successor spent too, the old token retries no lost answer: a replay is reuse, never a
      // second chain nor a way on to the live token.
      const again = await call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: old } });
      assert.equal(again.status, 401);
      assert.equal(again.body.error, 'refresh_token_reused');
    } finally {
      await server.close();
    }
  });

  it('failed before commit: the old token still works, once', async () => {
    const { stores, next, usedAt, parentOf } = faultyRotation();
    const server = await startTestServer({}, { stores });
    try {
      const { login } = await registerAndLogin(server.url, { mode: 'token', delivery: 'header' });
      const old = login.body.refresh_token as string;
      const oldId = old.split('.')[0]!;

      next.fault = 'before-commit';
      const failed = await call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: old } });
      assert.equal(failed.status, 503);
      assert.equal(usedAt(oldId), null, 'nothing was consumed');

      server.clock.now += 60_000; // long after any grace window: it is not a reuse, it was never used
      const retry = await call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: old } });
      assert.equal(retry.status, 200, JSON.stringify(retry.body));
      assert.equal(parentOf((retry.body.refresh_token as string).split('.')[0]!), oldId);
      assert.equal(
        (await call(server.url, 'GET', '/auth/me', { headers: bearer(retry.body.access_token) })).status,
        200,
      );
    } finally {
      await server.close();
    }
  });
});
