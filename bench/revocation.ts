// Revocation propagation across a cluster: logouts on instance B, an API-side RevocationFeedClient
// (packages/verify) following instance A's SSE stream; for each logout, the time from the
// request's start (and from its 204) until the API side's revocation set reports the sid revoked.
//
//   node --import tsx bench/revocation.ts        (BENCH_LOGOUTS=1000 per phase by default)
//
// Needs PostgreSQL (TESSERA_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) and
// the redis-server binary. Creates a throwaway database and Redis, both removed at the end; loopback only.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { RevocationFeedClient, RevocationSet } from '@tessera/verify';
import pg from 'pg';
import { closeStores, openStores } from '../packages/server/src/store/open.js';
import { randomId, randomToken, sha256 } from '../packages/server/src/util/crypto.js';
import { freePort, waitForPort } from './lib/proc.js';

const LOGOUTS = Number(process.env.BENCH_LOGOUTS ?? 1000);
const CONCURRENCY = 16;
const WARMUP = 20;
const BUDGET_MS = 85_000;
const ROOT = path.resolve(import.meta.dirname, '..');
const MAIN = path.join(ROOT, 'packages/server/src/cli/main.ts');
const DATABASE_URL = process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECRET = `bench-${randomToken(24)}`;
const PASSWORD = 'benchmark passphrase 42';
const started = performance.now();

const children: ChildProcess[] = [];
const cleanups: (() => Promise<unknown> | unknown)[] = [];
async function cleanup(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
}
const watchdog = setTimeout(() => {
  console.error(`bench/revocation: over the ${BUDGET_MS / 1000} s budget; stopping`);
  void cleanup().finally(() => process.exit(2));
}, BUDGET_MS);
watchdog.unref();

async function post(base: string, pathname: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${pathname}`, {
    method: 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A RevocationSet that timestamps the moment each sid lands in it. */
class TimedSet extends RevocationSet {
  readonly #waiters = new Map<string, (at: number) => void>();
  override add(entry: unknown): boolean {
    const added = super.add(entry);
    const sid = (entry as { sid?: unknown } | null)?.sid;
    if (typeof sid === 'string') this.#waiters.get(sid)?.(performance.now());
    return added;
  }
  /** Resolves with performance.now() at the add; register before the logout is sent. */
  when(sid: string, timeoutMs = 5000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(sid);
        reject(new Error(`sid not revoked on the API side within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(sid, (at) => {
        clearTimeout(timer);
        this.#waiters.delete(sid);
        resolve(at);
      });
    });
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

interface Row {
  label: string;
  n: number;
  median: number;
  p95: number;
  p99: number;
  max: number;
}
function summarize(label: string, values: number[]): Row {
  const s = [...values].sort((x, y) => x - y);
  return {
    label,
    n: s.length,
    median: quantile(s, 0.5),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: s[s.length - 1]!,
  };
}

async function main(): Promise<void> {
  // A fresh database and a Redis of our own: nothing shared with other runs, not even the pub/sub channel.
  const dbName = `tessera_bench_${randomToken(6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  cleanups.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  });
  const dbUrl = new URL(DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;

  const redisPort = await freePort();
  const redisDir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-redis-'));
  cleanups.push(() => rmSync(redisDir, { recursive: true, force: true }));
  children.push(
    spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--dir', redisDir],
      {
        stdio: 'ignore',
      },
    ),
  );
  await waitForPort(redisPort, 5000);

  const [portA, portB] = [await freePort(), await freePort()];
  const A = `http://127.0.0.1:${portA}`;
  const B = `http://127.0.0.1:${portB}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const instance = (port: number) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@tessera/source', '--import', 'tsx', MAIN, 'serve'],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          TESSERA_PORT: String(port),
          TESSERA_HOST: '127.0.0.1',
          TESSERA_ISSUER: A,
          TESSERA_SECRET: SECRET,
          TESSERA_DATA_DIR: dataDir,
          TESSERA_DATABASE_URL: dbUrl.href,
          TESSERA_REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
          TESSERA_LOG_LEVEL: 'error',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    children.push(child);
    return child;
  };
  instance(portA);
  await waitForPort(portA, 20_000);
  instance(portB);
  await waitForPort(portB, 20_000);

  // One real user and one real login (to learn the user id); the 2 × LOGOUTS (+ warm-up) sessions that the
  // logouts end are written straight into the store: session creation is not what is measured,
  // and 2,000 argon2 verifications would take most of the time budget on a small machine.
  const username = `bench${Date.now()}`;
  if ((await post(A, '/auth/register', { username, password: PASSWORD })).status !== 201)
    throw new Error('register failed');
  const login = await post(B, '/auth/login', {
    username,
    password: PASSWORD,
    mode: 'session',
    delivery: 'header',
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.status}`);
  const me = await fetch(`${A}/auth/me`, {
    headers: { authorization: `Bearer ${login.body.session_token}` },
  });
  const user = ((await me.json()) as { user: { id: string; username: string; roles: string[] } }).user;
  // The servers' own stores: accounts in PostgreSQL, sessions in Redis.
  const stores = await openStores({
    dataDir,
    databaseUrl: dbUrl.href,
    databaseSchema: 'public',
    redisUrl: `redis://127.0.0.1:${redisPort}/0`,
    redisCluster: false,
    redisPrefix: 'tessera:',
  });
  const tokens: { sid: string; token: string }[] = [];
  const now = Date.now();
  for (let i = 0; i < LOGOUTS * 2 + WARMUP; i++) {
    const sid = randomId();
    const secret = randomToken(32);
    await stores.sessions.createSession(
      {
        id: sid,
        userId: user.id,
        mode: 'session',
        secretHash: sha256(secret),
        createdAt: now,
        lastSeenAt: now,
        expiresAt: now + 3_600_000,
        idleExpiresAt: now + 1_800_000,
        userAgent: 'bench',
        ip: '127.0.0.1',
        revokedAt: null,
        revokeReason: null,
      },
      { ...user, disabled: false },
    );
    tokens.push({ sid, token: `${sid}.${secret}` });
  }
  await closeStores(stores);

  // The API side: a revocation set fed by instance A's stream.
  const set = new TimedSet({ maxStalenessMs: 30_000 });
  const feed = new RevocationFeedClient({ issuer: A, set, initialBackoffMs: 50 });
  cleanups.push(() => feed.stop());
  await feed.start();
  for (let i = 0; i < 200 && !feed.connected; i++) await new Promise((r) => setTimeout(r, 10));
  if (!feed.connected) throw new Error('feed client did not connect');

  const fromStart: number[] = [];
  const from204: number[] = [];
  const fromStartC: number[] = [];
  const from204C: number[] = [];
  let beforeResponse = 0;
  const logout = async (t: { sid: string; token: string }, out: [number[], number[]]) => {
    const seen = set.when(t.sid);
    const t0 = performance.now();
    const res = await fetch(`${B}/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}` },
    });
    const t204 = performance.now();
    await res.arrayBuffer();
    if (res.status !== 204) throw new Error(`logout answered ${res.status}`);
    const at = await seen;
    if (at < t204) beforeResponse++;
    out[0].push(at - t0);
    out[1].push(Math.max(0, at - t204));
  };

  // Warm-up (JIT, connection pools), not measured.
  for (const t of tokens.splice(0, WARMUP)) await logout(t, [[], []]);

  // Phase 1: one logout at a time.
  const sequential = tokens.slice(0, LOGOUTS);
  for (const t of sequential) await logout(t, [fromStart, from204]);
  // Phase 2: CONCURRENCY logouts in flight.
  const concurrent = tokens.slice(LOGOUTS);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < concurrent.length) {
        const t = concurrent[next++]!;
        await logout(t, [fromStartC, from204C]);
      }
    }),
  );
  const connections = feed.connections;

  const rows = [
    summarize('1 at a time: logout request start → API set has sid', fromStart),
    summarize('1 at a time: 204 received → API set has sid', from204),
    summarize(`${CONCURRENCY} in flight: logout request start → API set has sid`, fromStartC),
    summarize(`${CONCURRENCY} in flight: 204 received → API set has sid`, from204C),
  ];
  const p99 = rows[0]!.p99;
  const ms = (x: number) => x.toFixed(1);
  const date = new Date().toISOString().slice(0, 10);
  const md = [
    `Revocation propagation, two account-server processes (\`tessera serve\`) on PostgreSQL ${(await admin.query('SHOW server_version')).rows[0].server_version.replace(/ .*/, '')} + Redis, loopback; ${cpus().length} CPUs; ${date}`,
    '',
    'Logouts (`POST /auth/logout`, session tokens) go to instance B; the API side is a',
    '`RevocationFeedClient` + `RevocationSet` from `packages/verify`, in the bench process, following',
    "instance A's `/auth/revocations/stream`. Path: B writes the revocation to PostgreSQL, publishes it",
    'on Redis, A relays it on its SSE stream, the client adds it to the set. Times in ms, measured with',
    'one clock (the bench process). Sessions were written straight into the store beforehand (session',
    'creation is not measured); the logouts themselves are ordinary HTTP requests.',
    '',
    '| what | n | median | p95 | p99 | max |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) => `| ${r.label} | ${r.n} | ${ms(r.median)} | ${ms(r.p95)} | ${ms(r.p99)} | ${ms(r.max)} |`,
    ),
    '',
    `Goal: p99 < 50 ms from the logout's start, one at a time: ${p99 < 50 ? 'met' : 'NOT met'} (${ms(p99)} ms).`,
    `${beforeResponse} of ${fromStart.length + fromStartC.length} revocations reached the API side before the client had read the 204.`,
    `Feed stream connections opened by the client during the run: ${connections} (1 = no reconnects).`,
    `Run time ${((performance.now() - started) / 1000).toFixed(1)} s. Load average at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (the account servers, Redis, PostgreSQL and the client share these CPUs; in the`,
    '16-in-flight phase the time is queueing in front of B, the 204 → set column stays near 0).',
    '',
  ].join('\n');
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench/results/revocation.md'), md);
  console.log(md);
}

try {
  await main();
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
