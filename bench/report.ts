// The article's argument in numbers: sessions vs tokens vs the peers, side by side in one run.
// Writes docs/benchmarks/README.md and its SVG charts (docs/benchmarks/*.svg).
//
//   npm run bench:report               the full run (about 20 minutes on 2 cores)
//   npm run bench:report -- --quick    a check of the harness: short runs, up to 10k sessions
//
// Every server under test runs in its own process (bench/apps/*.ts, `tessera serve`); load comes
// from autocannon in this process; loopback only. Throughput cells run in interleaved rounds: each
// round runs every group's ceiling and then its cells, and each figure is the median over the
// rounds of its ratio to the ceiling of the same round, beside the absolute median.
// BENCH_ROUNDS, BENCH_SECONDS, BENCH_CONNECTIONS override the mode's defaults.
import { spawn } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { createVerifier } from '@tessera/verify';
import Database from 'better-sqlite3';
import { closeStores, openStores } from '../packages/server/src/store/open.js';
import type { Stores } from '../packages/server/src/store/ports.js';
import type { SessionRecord } from '../packages/server/src/store/types.js';
import { randomId, randomToken, sha256 } from '../packages/server/src/util/crypto.js';
import { cannon, getPerConnection, getRotating, getRun } from './lib/load.js';
import { machine, type Proc, ROOT, rssOf, startApp, startTessera, versionOf } from './lib/proc.js';
import { barChart, fmt, lineChart, markdownTable } from './lib/report.js';
import { DATABASE_URL, openServices, type Services, type TesseraStore } from './lib/services.js';
import {
  bytesPerItem,
  type Goal,
  goal,
  median,
  quantile,
  type Row,
  type Run,
  summariseRounds,
} from './lib/stats.js';
import {
  BENCH_SETTINGS,
  loginBodies,
  logins,
  meSessions,
  PASSWORD,
  refreshChains,
  registerUsers,
  USERS,
} from './lib/tessera.js';
import { benchKeys, mintTokens } from './lib/tokens.js';

const QUICK = process.argv.includes('--quick');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 2 : 3));
const SECONDS = Number(process.env.BENCH_SECONDS ?? (QUICK ? 2 : 5));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
/** Distinct tokens in the pool: more than @tessera/verify's default cache (10,000), so every one is verified. */
const POOL = QUICK ? 12_000 : 20_000;
const SIZES = QUICK ? [1_000, 10_000] : [1_000, 10_000, 100_000, 1_000_000];
const COOKIE_CACHE_SECONDS = QUICK ? 5 : 30;
/** Rounds of /healthz and /auth/me at each session count. */
const GROWTH_ROUNDS = ROUNDS;
const REVOCATION_TRIALS = QUICK ? 5 : 20;
const STORM_CONNECTIONS = 8;
const STORM_READERS = 2;
/** The readers' pace during a login storm: a site's page views beside the logins, not a second flood. */
const STORM_READ_RATE = 200;
const ISSUER = 'https://auth.bench.test';
const AUDIENCE = 'tessera';
const SECRET = `bench-${randomToken(24)}`;
const OUT = path.join(ROOT, 'docs/benchmarks');
const STORE_NAMES: Record<TesseraStore, string> = {
  sqlite: 'SQLite',
  postgres: 'PostgreSQL',
  redis: 'Redis',
};
const WARMUP_SECONDS = 1;
let warming = false;
/** Seconds per run: SECONDS, or WARMUP_SECONDS during the unmeasured pass. */
const secs = () => (warming ? WARMUP_SECONDS : SECONDS);
const began = performance.now();
const startMachine = machine();
const procs: Proc[] = [];
const notes: string[] = [];

async function app(name: string, env: Record<string, string>, probe?: string): Promise<Proc> {
  const p = await startApp(name, env, probe);
  procs.push(p);
  return p;
}
async function tessera(env: Record<string, string>): Promise<Proc> {
  const p = await startTessera({ ...BENCH_SETTINGS, TESSERA_SECRET: SECRET, ...env });
  procs.push(p);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Interleaved throughput groups

interface Cell {
  name: string;
  run: () => Promise<Run>;
}
interface Group {
  section: 'route' | 'session' | 'account' | 'scale';
  title: string;
  ceiling: Cell;
  cells: Cell[];
  /** Before each round (new refresh chains). */
  prepare?: () => Promise<void>;
}
interface GroupResult {
  group: Group;
  ceiling: Row;
  rows: Row[];
}

async function interleave(groups: Group[]): Promise<GroupResult[]> {
  const ceilings = groups.map(() => [] as Run[]);
  const runs = groups.map((g) => g.cells.map(() => [] as Run[]));
  // One short unmeasured pass first: JIT, connection pools, store caches.
  warming = true;
  for (const g of groups) {
    await g.prepare?.();
    for (const cell of [g.ceiling, ...g.cells])
      if (cell !== g.ceiling || g.section !== 'account') await cell.run();
  }
  warming = false;
  stormReads.length = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [gi, g] of groups.entries()) {
      await g.prepare?.();
      const c = await g.ceiling.run();
      ceilings[gi]!.push(c);
      const line = [`${g.ceiling.name} ${fmt(c.rps)}`];
      for (const [ci, cell] of g.cells.entries()) {
        const run = await cell.run();
        runs[gi]![ci]!.push(run);
        line.push(`${cell.name} ${fmt(run.rps)} (${(run.rps / c.rps).toFixed(2)}×)`);
      }
      console.log(`round ${r + 1}/${ROUNDS} · ${g.title}: ${line.join(' · ')}`);
    }
  }
  return groups.map((g, gi) => {
    const ceil = ceilings[gi]!.map((x) => x.rps);
    return {
      group: g,
      ceiling: summariseRounds(g.ceiling.name, ceilings[gi]!, ceil),
      rows: g.cells.map((cell, ci) => summariseRounds(cell.name, runs[gi]![ci]!, ceil)),
    };
  });
}

function bearer(token: string): string {
  return `Bearer ${token}`;
}

async function mustAnswer(url: string, headers: Record<string, string>, status: number): Promise<void> {
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  if (res.status !== status) throw new Error(`GET ${url}: ${res.status}, expected ${status}`);
}

/** The one Fastify app with a protected route behind each token check. */
async function routeGroup(): Promise<Group> {
  const keys = benchKeys();
  const tokens = mintTokens(keys, POOL, { issuer: ISSUER, audience: AUDIENCE });
  const p = await app('fastify-tokens', {
    BENCH_JWK: JSON.stringify(keys.jwk),
    BENCH_PEM: keys.pem,
    BENCH_ISSUER: ISSUER,
    BENCH_AUDIENCE: AUDIENCE,
  });
  const pool = tokens.map(bearer);
  const cells: Cell[] = [];
  for (const [route, label] of [
    ['tessera', '@tessera/verify'],
    ['fastify-jwt', '@fastify/jwt'],
    ['fast-jwt', 'fast-jwt'],
  ] as const) {
    const url = `${p.base}/${route}`;
    await mustAnswer(url, { authorization: pool[0]! }, 200);
    await mustAnswer(url, { authorization: `${pool[0]!.slice(0, -4)}AAAA` }, 401);
    cells.push(
      {
        name: `${label}, one repeated token`,
        run: () => getRun(url, secs(), CONNECTIONS, { authorization: pool[0]! }),
      },
      {
        name: `${label}, ${fmt(POOL)} distinct tokens`,
        run: () => getRotating(url, secs(), CONNECTIONS, 'authorization', pool),
      },
    );
  }
  return {
    section: 'route',
    title: 'Fastify: a protected route',
    ceiling: { name: 'no auth (ceiling)', run: () => getRun(`${p.base}/open`, secs(), CONNECTIONS) },
    cells,
  };
}

/** Session cookies from `count` logins at a peer (POST `loginPath`). */
async function cookies(
  base: string,
  count: number,
  login: (i: number) => { path: string; body: unknown },
): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const { path: p, body } = login(i);
    const res = await fetch(`${base}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`POST ${p}: ${res.status}`);
    out.push(
      res.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; '),
    );
  }
  return out;
}

async function peerGroups(svc: Services): Promise<Group[]> {
  const groups: Group[] = [];
  for (const [name, title] of [
    ['express-session', 'Express: express-session + connect-redis'],
    ['fastify-session', 'Fastify: @fastify/session + connect-redis'],
  ] as const) {
    const p = await app(name, { BENCH_REDIS_URL: svc.redisUrl });
    const jar = await cookies(p.base, CONNECTIONS, () => ({ path: '/login', body: {} }));
    await mustAnswer(`${p.base}/protected`, { cookie: jar[0]! }, 200);
    await mustAnswer(`${p.base}/protected`, {}, 401);
    groups.push({
      section: 'session',
      title,
      ceiling: { name: 'no auth (ceiling)', run: () => getRun(`${p.base}/open`, secs(), CONNECTIONS) },
      cells: [
        {
          name: `${name}, one session per connection`,
          run: () =>
            getPerConnection(
              `${p.base}/protected`,
              secs(),
              CONNECTIONS,
              jar.map((cookie) => ({ cookie })),
            ),
        },
      ],
    });
  }
  const ba = await app('better-auth', { BENCH_COOKIE_CACHE_SECONDS: '300' });
  const jar = await cookies(ba.base, CONNECTIONS, (i) => ({
    path: '/api/auth/sign-up/email',
    body: { email: `user${i}@bench.test`, password: PASSWORD, name: `user ${i}` },
  }));
  for (const route of ['protected-nocache', 'protected-cache'])
    await mustAnswer(`${ba.base}/${route}`, { cookie: jar[0]! }, 200);
  const perConnection = jar.map((cookie) => ({ cookie }));
  groups.push({
    section: 'session',
    title: 'Express: Better Auth getSession (its own SQLite file)',
    ceiling: { name: 'no auth (ceiling)', run: () => getRun(`${ba.base}/open`, secs(), CONNECTIONS) },
    cells: [
      {
        name: 'Better Auth, no cookie cache',
        run: () => getPerConnection(`${ba.base}/protected-nocache`, secs(), CONNECTIONS, perConnection),
      },
      {
        name: 'Better Auth, cookie cache (maxAge 300 s)',
        run: () => getPerConnection(`${ba.base}/protected-cache`, secs(), CONNECTIONS, perConnection),
      },
    ],
  });
  return groups;
}

/** A Tessera server on one store: session-mode /auth/me and /auth/refresh beside its /healthz. */
async function tesseraGroup(
  server: Proc,
  store: TesseraStore,
  title: string,
  section: Group['section'],
): Promise<Group> {
  const sessions = await logins(server.base, 'session', CONNECTIONS);
  let chains: string[] = [];
  return {
    section,
    title,
    ceiling: {
      name: 'GET /healthz (ceiling)',
      run: () => getRun(`${server.base}/healthz`, secs(), CONNECTIONS),
    },
    prepare: async () => {
      chains = await logins(server.base, 'token', CONNECTIONS);
    },
    cells: [
      {
        name: `Tessera session mode, ${STORE_NAMES[store]}: GET /auth/me`,
        run: () => meSessions(server.base, sessions, secs(), CONNECTIONS),
      },
      {
        name: `Tessera token mode, ${STORE_NAMES[store]}: POST /auth/refresh`,
        run: () => refreshChains(server.base, chains, { connections: CONNECTIONS, seconds: secs() }),
      },
    ],
  };
}

/** Raw argon2id in a process of its own, on the server's parameters and hashing slots. */
function rawArgon2(seconds: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@tessera/source', '--import', 'tsx', 'bench/apps/argon2.ts'],
      {
        cwd: ROOT,
        env: { ...process.env, BENCH_SECONDS: String(seconds) },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench/apps/argon2.ts exited with ${code}`));
      const r = JSON.parse(out) as { ops: number; seconds: number };
      resolve({
        requests: r.ops,
        seconds: r.seconds,
        rps: r.ops / r.seconds,
        p50: Number.NaN,
        p99: Number.NaN,
        failures: 0,
        repeats: 0,
      });
    });
  });
}

const stormReads: Run[] = [];
/** POST /auth/login as fast as the server takes them, /auth/me (session) read beside it. */
async function loginGroup(server: Proc): Promise<Group> {
  const sessions = await logins(server.base, 'session', STORM_READERS);
  const storm = async (): Promise<Run> => {
    let i = 0;
    const [login, me] = await Promise.all([
      cannon({
        url: `${server.base}/auth/login`,
        duration: secs(),
        connections: STORM_CONNECTIONS,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req) => ({
              ...req,
              body: JSON.stringify({
                username: `bench${i++ % USERS}`,
                password: PASSWORD,
                mode: 'session',
                delivery: 'header',
              }),
            }),
          },
        ],
      }),
      meSessions(server.base, sessions, secs(), STORM_READERS, STORM_READ_RATE),
    ]);
    stormReads.push(me);
    return login;
  };
  return {
    section: 'account',
    title: 'Account server: logins (SQLite)',
    ceiling: {
      name: 'raw argon2id verify, same parameters and slots (ceiling)',
      run: () => rawArgon2(secs()),
    },
    cells: [{ name: `POST /auth/login, ${STORM_CONNECTIONS} connections`, run: storm }],
  };
}

// ---------------------------------------------------------------------------------------------
// Sessions as they grow: memory and latency

interface SizePoint {
  sessions: number;
  rssBytes: number;
  storeBytes: number;
  healthz: Row;
  me: Row;
  insertPerSecond: number;
}
interface Growth {
  store: TesseraStore;
  storeMeasure: string;
  points: SizePoint[];
  /** Sequential getLiveSession from this process, µs per call (median of batches). */
  lookupMicros: number;
}

function storesFor(server: Proc, env: Record<string, string>): Promise<Stores> {
  return openStores({
    dataDir: server.dataDir,
    databaseUrl: env.TESSERA_DATABASE_URL,
    databaseSchema: env.TESSERA_DATABASE_SCHEMA ?? 'public',
    redisUrl: env.TESSERA_REDIS_URL,
    redisCluster: false,
    redisPrefix: env.TESSERA_REDIS_PREFIX ?? 'tessera:',
  });
}

/** Median µs of one call of `fn`, in batches of `n`. */
async function microsPerCall(fn: (i: number) => unknown, n: number, batches = 5): Promise<number> {
  for (let i = 0; i < Math.min(n, 200); i++) await fn(i);
  const out: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t = performance.now();
    for (let i = 0; i < n; i++) await fn(b * n + i);
    out.push(((performance.now() - t) * 1000) / n);
  }
  return median(out);
}

async function growth(svc: Services | undefined, store: TesseraStore): Promise<Growth> {
  const { env, schema } = svc ? svc.env(store) : { env: {}, schema: undefined };
  const server = await tessera(env);
  await registerUsers(server.base, 1);
  const [login] = await loginBodies(server.base, 'session', 1);
  const me = await fetch(`${server.base}/auth/me`, {
    headers: { authorization: bearer(login!.session_token!) },
  });
  const user = ((await me.json()) as { user: { id: string; username: string; roles: string[] } }).user;
  const stores = await storesFor(server, env);
  const sqliteFile = path.join(server.dataDir, 'tessera.sqlite');
  const storeBytes = async (): Promise<number> => {
    if (store === 'sqlite') {
      // Fold the WAL into the file first (the server's own checkpointer runs on its schedule).
      const db = new Database(sqliteFile);
      try {
        db.pragma('busy_timeout = 5000');
        db.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        db.close();
      }
      const size = (f: string) => {
        try {
          return statSync(f).size;
        } catch {
          return 0;
        }
      };
      return size(sqliteFile) + size(`${sqliteFile}-wal`);
    }
    if (store === 'postgres') return svc!.pgSessionBytes(schema!);
    return svc!.redisUsedMemory();
  };
  const sample: { sid: string; token: string }[] = [];
  let inserted = 0;
  const points: SizePoint[] = [];
  try {
    for (const size of SIZES) {
      const t = performance.now();
      const from = inserted;
      let next = inserted;
      const now = Date.now();
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < size) {
            const n = next++;
            const sid = randomId();
            const secret = randomToken(32);
            const record: SessionRecord = {
              id: sid,
              userId: user.id,
              mode: 'session',
              secretHash: sha256(secret),
              createdAt: now,
              lastSeenAt: now,
              expiresAt: now + 86_400_000,
              idleExpiresAt: now + 43_200_000,
              userAgent: 'bench',
              ip: '127.0.0.1',
              revokedAt: null,
              revokeReason: null,
            };
            await stores.sessions.createSession(record, { ...user, disabled: false });
            // A uniform sample of every session so far (reservoir of 1,000).
            if (sample.length < 1000) sample.push({ sid, token: `${sid}.${secret}` });
            else {
              const k = Math.floor(Math.random() * (n + 1));
              if (k < 1000) sample[k] = { sid, token: `${sid}.${secret}` };
            }
          }
        }),
      );
      inserted = size;
      const insertPerSecond = (size - from) / ((performance.now() - t) / 1000);
      await new Promise((r) => setTimeout(r, 500));
      const pool = sample.map((s) => bearer(s.token));
      await mustAnswer(`${server.base}/auth/me`, { authorization: pool[0]! }, 200);
      // Rounds of /healthz then /auth/me (after a short unmeasured pass at the first size).
      if (points.length === 0) {
        warming = true;
        await getRotating(`${server.base}/auth/me`, secs(), CONNECTIONS, 'authorization', pool);
        warming = false;
      }
      const ceilings: Run[] = [];
      const reads: Run[] = [];
      for (let r = 0; r < GROWTH_ROUNDS; r++) {
        ceilings.push(await getRun(`${server.base}/healthz`, secs(), CONNECTIONS));
        reads.push(await getRotating(`${server.base}/auth/me`, secs(), CONNECTIONS, 'authorization', pool));
      }
      const healthz = summariseRounds(
        'GET /healthz',
        ceilings,
        ceilings.map((c) => c.rps),
      );
      const meRun = summariseRounds(
        'GET /auth/me',
        reads,
        ceilings.map((c) => c.rps),
      );
      const point = {
        sessions: size,
        rssBytes: rssOf(server.child.pid!),
        storeBytes: await storeBytes(),
        healthz,
        me: meRun,
        insertPerSecond,
      };
      points.push(point);
      console.log(
        `${STORE_NAMES[store]}: ${fmt(size)} sessions (${fmt(insertPerSecond)}/s inserted): RSS ${fmt(point.rssBytes / 2 ** 20, 1)} MiB, store ${fmt(point.storeBytes / 2 ** 20, 1)} MiB, /auth/me ${fmt(meRun.rps)} req/s p99 ${ms(meRun.p99)} ms`,
      );
    }
    const lookupMicros = await microsPerCall(
      (i) => stores.sessions.getLiveSession(sample[i % sample.length]!.sid, Date.now()),
      500,
    );
    return {
      store,
      storeMeasure:
        store === 'sqlite'
          ? 'database file + WAL'
          : store === 'postgres'
            ? 'pg_total_relation_size(sessions)'
            : 'INFO used_memory of the bench Redis',
      points,
      lookupMicros,
    };
  } finally {
    await closeStores(stores);
    await server.stop();
    procs.splice(procs.indexOf(server), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// How long a stolen token stays usable after logout

interface Window {
  what: string;
  ms: number[];
  note: string;
}

/** performance.now() when `url` first answers 401 to `headers`; NaN if it still answers 200 after `timeoutMs`. */
async function pollUntil401(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  everyMs: number,
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    if (res.status === 401) return performance.now();
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} while polling`);
    if (performance.now() - t0 > timeoutMs) return Number.NaN;
    if (everyMs > 0) await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function tesseraWindow(issuer: Proc): Promise<Window> {
  const api = await app('examples/api/server', { TESSERA_ISSUER: issuer.base, TESSERA_DPOP: '0' });
  const usable: number[] = [];
  const answered: number[] = [];
  for (let i = 0; i < REVOCATION_TRIALS; i++) {
    const [body] = await loginBodies(issuer.base, 'token', 1);
    const headers = { authorization: bearer(body!.access_token!) };
    await mustAnswer(`${api.base}/api/hello`, headers, 200);
    const t0 = performance.now();
    // The API server is asked from t0 on, while the logout is still in flight: the feed hears of
    // the end before the logout answers (it answers once the session-cache lease has run out).
    const [dead, logout] = await Promise.all([
      pollUntil401(`${api.base}/api/hello`, headers, 10_000, 0),
      fetch(`${issuer.base}/auth/logout`, { method: 'POST', headers }).then(async (res) => {
        await res.arrayBuffer();
        if (res.status !== 204) throw new Error(`logout: ${res.status}`);
        return performance.now();
      }),
    ]);
    usable.push(dead - t0);
    answered.push(logout - t0);
  }
  return {
    what: 'Tessera access token at an API server (@tessera/verify + revocation feed)',
    ms: usable,
    note: `POST /auth/logout sent to the account server at t0; from t0 on, while the logout is in flight, the API server (examples/api/server.ts in its own process, following the account server's revocation feed) is asked with the token, back to back, until it answers 401; ${REVOCATION_TRIALS} trials. The logout itself answered after a median of ${ms(median(answered))} ms: it waits out the session-cache lease (\`TESSERA_SESSION_CACHE_MS\`, 100 ms by default) so that no instance still serves the session from a copy, but it tells the feed first`,
  };
}

async function betterAuthWindow(): Promise<Window[]> {
  const p = await app('better-auth', { BENCH_COOKIE_CACHE_SECONDS: String(COOKIE_CACHE_SECONDS) });
  const [cookie] = await cookies(p.base, 1, () => ({
    path: '/api/auth/sign-up/email',
    body: { email: 'stolen@bench.test', password: PASSWORD, name: 'stolen' },
  }));
  const headers = { cookie: cookie! };
  await mustAnswer(`${p.base}/protected-cache`, headers, 200);
  const t0 = performance.now();
  const out = await fetch(`${p.base}/api/auth/sign-out`, {
    method: 'POST',
    headers: { ...headers, origin: p.base, 'content-type': 'application/json' },
    body: '{}',
  });
  await out.arrayBuffer();
  if (!out.ok) throw new Error(`Better Auth sign-out: ${out.status}`);
  const [nocache, cache] = await Promise.all([
    pollUntil401(`${p.base}/protected-nocache`, headers, 5_000, 0),
    pollUntil401(`${p.base}/protected-cache`, headers, (COOKIE_CACHE_SECONDS + 10) * 1000, 100),
  ]);
  const since = (at: number) => at - t0;
  return [
    {
      what: 'Better Auth, no cookie cache',
      ms: [since(nocache)],
      note: 'sign-out request sent at t0 (so its own time is included), then getSession with the old cookies until it answers no session',
    },
    {
      what: `Better Auth, cookie cache maxAge ${COOKIE_CACHE_SECONDS} s`,
      ms: [since(cache)],
      note: `the same; the signed session_data cookie (issued at sign-up, just before) is accepted until its maxAge ends, whatever the database says: the window is up to maxAge (Better Auth's default maxAge is 300 s, so up to 5 minutes); measured here with maxAge ${COOKIE_CACHE_SECONDS} s to keep the run short`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// The report

const ms = (x: number, digits = 1) => (Number.isFinite(x) ? fmt(x, digits) : '—');
const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—');

function groupTable(results: GroupResult[]): string[] {
  const rows: (string | number)[][] = [];
  for (const g of results) {
    for (const r of [g.ceiling, ...g.rows])
      rows.push([
        g.group.title,
        r.scenario,
        fmt(r.rps),
        ratio(r.ratio),
        ms(r.p50),
        ms(r.p99),
        r.failures + r.repeats,
        r.rounds.map((x) => fmt(x.rps)).join(' / '),
      ]);
  }
  return markdownTable(
    ['app / server', 'cell', 'req/s', '× ceiling', 'p50 ms', 'p99 ms', 'failures', 'req/s per round'],
    rows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

function chart(file: string, title: string, results: GroupResult[]): string {
  const bars = results.flatMap((g) =>
    [g.ceiling, ...g.rows].map((r) => ({
      label: r === g.ceiling ? `${g.group.title.split(':')[0]}: ${r.scenario}` : r.scenario,
      value: r.rps,
      note: `${ratio(r.ratio)} ceiling`,
      group: g.group.title,
    })),
  );
  writeFileSync(path.join(OUT, file), barChart(title, 'req/s, median of rounds', bars));
  return `![${title}](${file})`;
}

function find(results: GroupResult[], cell: string): Row | undefined {
  for (const g of results) for (const r of g.rows) if (r.scenario === cell) return r;
  return undefined;
}

async function main(): Promise<number> {
  mkdirSync(OUT, { recursive: true });
  const svcOrSkip = await openServices();
  const svc = 'skip' in svcOrSkip ? undefined : svcOrSkip;
  if (!svc) notes.push(`PostgreSQL and Redis cells skipped: ${(svcOrSkip as { skip: string }).skip}`);
  try {
    // Throughput groups, all started before the first round.
    const groups: Group[] = [await routeGroup()];
    const servers: Partial<Record<TesseraStore, Proc>> = {};
    for (const store of svc ? (['sqlite', 'postgres', 'redis'] as const) : (['sqlite'] as const)) {
      const server = await tessera(svc ? svc.env(store).env : {});
      await registerUsers(server.base);
      servers[store] = server;
    }
    for (const store of Object.keys(servers) as TesseraStore[])
      groups.push(await tesseraGroup(servers[store]!, store, `Tessera on ${STORE_NAMES[store]}`, 'session'));
    if (svc) groups.push(...(await peerGroups(svc)));
    groups.push(await loginGroup(servers.sqlite!));
    let lbEnv: Record<string, string> | undefined;
    if (svc) {
      // One vs two instances on one PostgreSQL schema and Redis prefix, each behind the same balancer.
      lbEnv = svc.env('redis').env;
      const a = await tessera(lbEnv);
      const b = await tessera({ ...lbEnv, TESSERA_ISSUER: a.base });
      const one = await app('balancer', { BACKENDS: a.base }, '/lb-healthz');
      const two = await app('balancer', { BACKENDS: `${a.base},${b.base}` }, '/lb-healthz');
      await registerUsers(one.base);
      groups.push(await tesseraGroup(one, 'redis', 'One instance behind the balancer', 'scale'));
      groups.push(await tesseraGroup(two, 'redis', 'Two instances behind the balancer', 'scale'));
    }
    const results = await interleave(groups);
    const roundsDone = performance.now();

    // Stolen-token windows, while the servers are up.
    const windows: Window[] = [];
    windows.push(await tesseraWindow(servers.redis ?? servers.sqlite!));
    windows.push(...(await betterAuthWindow()));
    for (const p of [...procs]) await p.stop();
    procs.length = 0;

    // Local token verify vs a session lookup, in this process.
    const keys = benchKeys();
    const tokens = mintTokens(keys, 2000, { issuer: ISSUER, audience: AUDIENCE });
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: [keys.jwk] },
      cache: false,
    });
    const verifyMicros = await microsPerCall((i) => verifier.verifySync(tokens[i % tokens.length]!), 500);

    const grown: Growth[] = [];
    for (const store of svc ? (['sqlite', 'postgres', 'redis'] as const) : (['sqlite'] as const))
      grown.push(await growth(svc, store));

    return write(results, windows, grown, verifyMicros, (roundsDone - began) / 1000);
  } finally {
    for (const p of procs) await p.stop().catch(() => undefined);
    await svc?.cleanup();
  }
}

function write(
  results: GroupResult[],
  windows: Window[],
  grown: Growth[],
  verifyMicros: number,
  roundsSeconds: number,
): number {
  const m = startMachine;
  const section = (s: Group['section']) => results.filter((g) => g.group.section === s);
  const get = (cell: string) => find(results, cell);
  const tRep = get('@tessera/verify, one repeated token');
  const tPool = get(`@tessera/verify, ${fmt(POOL)} distinct tokens`);
  const peersRep = [get('@fastify/jwt, one repeated token'), get('fast-jwt, one repeated token')];
  const peersPool = [
    get(`@fastify/jwt, ${fmt(POOL)} distinct tokens`),
    get(`fast-jwt, ${fmt(POOL)} distinct tokens`),
  ];
  const redisMe = get(`Tessera session mode, ${STORE_NAMES.redis}: GET /auth/me`);
  const express = get('express-session, one session per connection');
  const baNo = get('Better Auth, no cookie cache');
  const baCache = get('Better Auth, cookie cache (maxAge 300 s)');
  const refreshSqlite = get(`Tessera token mode, ${STORE_NAMES.sqlite}: POST /auth/refresh`);
  const login = results.find((g) => g.group.section === 'account')?.rows[0];
  const stormP99 = median(stormReads.map((r) => r.p99));
  // Compared as ratios to the ceiling of the same round: a machine whose speed drifts between
  // rounds moves every cell of a round alike.
  const beats = (a: Row | undefined, bs: (Row | undefined)[], key: 'rps' | 'ratio') =>
    a !== undefined && bs.every((b) => b !== undefined && a[key] > b[key]);
  const p99Growth = grown.map((g) => {
    const first = g.points[0]!.me.p99;
    const worstPoint = g.points.reduce((a, b) => (b.me.p99 > a.me.p99 ? b : a));
    const worst = worstPoint.me.p99;
    return {
      store: g.store,
      first,
      worst,
      factor: worst / Math.max(first, 1),
      // The same server's /healthz p99 at those sizes: what the machine and the load generator add.
      healthzFirst: g.points[0]!.healthz.p99,
      healthzWorst: worstPoint.healthz.p99,
    };
  });
  const goals: Goal[] = [
    goal(
      '@tessera/verify ≥ 0.85× the no-auth ceiling with one repeated token',
      tRep && tRep.ratio >= 0.85,
      ratio(tRep?.ratio ?? Number.NaN),
    ),
    goal(
      '@tessera/verify ahead of @fastify/jwt and fast-jwt, repeated token',
      beats(tRep, peersRep, 'ratio'),
      [tRep, ...peersRep]
        .map((r) => `${r?.scenario ?? '?'} ${fmt(r?.rps ?? Number.NaN)} (${ratio(r?.ratio ?? Number.NaN)})`)
        .join(', '),
    ),
    goal(
      `@tessera/verify ahead of @fastify/jwt and fast-jwt, ${fmt(POOL)} distinct tokens`,
      beats(tPool, peersPool, 'ratio'),
      [tPool, ...peersPool]
        .map((r) => `${r?.scenario ?? '?'} ${fmt(r?.rps ?? Number.NaN)} (${ratio(r?.ratio ?? Number.NaN)})`)
        .join(', '),
    ),
    goal(
      'Tessera session mode on Redis ≥ 0.6× its ceiling',
      redisMe && redisMe.ratio >= 0.6,
      ratio(redisMe?.ratio ?? Number.NaN),
    ),
    goal(
      'Tessera session mode on Redis ahead of express-session + connect-redis and Better Auth (each × its own ceiling)',
      beats(redisMe, [express, baNo, baCache], 'ratio'),
      [redisMe, express, baNo, baCache]
        .map((r) => `${r?.scenario ?? '?'} ${ratio(r?.ratio ?? Number.NaN)}`)
        .join(', '),
    ),
    goal(
      'POST /auth/refresh ≥ 3,000 req/s on SQLite',
      refreshSqlite && refreshSqlite.rps >= 3000,
      `${fmt(refreshSqlite?.rps ?? Number.NaN)} req/s`,
    ),
    goal(
      'POST /auth/login ≥ 0.9× raw argon2id',
      login && login.ratio >= 0.9,
      ratio(login?.ratio ?? Number.NaN),
    ),
    goal('GET /auth/me p99 < 20 ms during the login storm', stormP99 < 20, `${ms(stormP99)} ms`),
    ...p99Growth.map((g) =>
      goal(
        `GET /auth/me p99 within 1.5× from ${fmt(SIZES[0]!)} to ${fmt(SIZES.at(-1)!)} sessions, ${STORE_NAMES[g.store]}`,
        g.factor <= 1.5,
        `${ms(g.first)} → worst ${ms(g.worst)} ms (${g.factor.toFixed(2)}×); /healthz p99 at those sizes ${ms(g.healthzFirst)} → ${ms(g.healthzWorst)} ms`,
      ),
    ),
  ];
  if (SIZES.at(-1)! < 1_000_000) goals.at(-1)!.detail += '; this run stopped short of 1M sessions';

  const peers: [string, string][] = [
    ['fastify', 'fastify'],
    ['@fastify/jwt', '@fastify/jwt'],
    ['fast-jwt', 'fast-jwt'],
    ['@fastify/session', '@fastify/session'],
    ['@fastify/cookie', '@fastify/cookie'],
    ['express', 'express'],
    ['express-session', 'express-session'],
    ['connect-redis', 'connect-redis'],
    ['redis', 'redis (client of connect-redis)'],
    ['better-auth', 'better-auth'],
    ['better-sqlite3', 'better-sqlite3'],
    ['argon2', 'argon2'],
    ['ioredis', 'ioredis'],
    ['pg', 'pg'],
    ['autocannon', 'autocannon'],
  ];
  const failures = results.flatMap((g) => [g.ceiling, ...g.rows]).filter((r) => r.failures + r.repeats > 0);
  const endLoad = loadavg().map((x) => x.toFixed(2));
  const total = (performance.now() - began) / 1000;

  const lines: string[] = [];
  if (QUICK)
    lines.push(
      `> **Quick run** (\`npm run bench:report -- --quick\`: ${SECONDS} s per cell, ${ROUNDS} rounds, up to ${fmt(SIZES.at(-1)!)} sessions; the load average below says what else shared the CPUs). Short cells are noisy and the session-growth rows stop at ${fmt(SIZES.at(-1)!)}: run \`npm run bench:report\` on an idle machine for the figures to quote.`,
      '',
    );
  lines.push(
    '# Benchmarks: sessions vs tokens vs the peers',
    '',
    "Written by `npm run bench:report` (bench/report.ts); the charts are drawn by the same script. Every figure is given as an absolute number and as a ratio to a ceiling measured in the same run: the no-auth route of the same app, or the server's own `/healthz`.",
    '',
    '## Machine and settings',
    '',
    ...markdownTable(
      ['', ''],
      [
        ['date', m.date],
        ['CPU', `${m.cpus} × ${m.cpuModel}`],
        ['memory', `${m.memoryGiB} GiB`],
        ['OS', m.platform],
        ['Node', m.node],
        ['load average (1, 5, 15 min) at start / end', `${m.loadAverage.join(', ')} / ${endLoad.join(', ')}`],
        ['mode', QUICK ? 'quick (--quick)' : 'full'],
        ['rounds', `${ROUNDS} interleaved rounds; each round runs every group's ceiling, then its cells`],
        ['per cell', `${SECONDS} s, ${CONNECTIONS} connections (autocannon in the bench process)`],
        [
          'throughput cells',
          `${results.reduce((n, g) => n + 1 + g.rows.length, 0)} (ceilings included) × ${ROUNDS} rounds, after one unmeasured ${WARMUP_SECONDS} s pass`,
        ],
        ['sessions per store', SIZES.map((n) => fmt(n)).join(', ')],
        ['servers', 'each app and each `tessera serve` in its own process, loopback'],
        [
          'Tessera settings',
          Object.entries(BENCH_SETTINGS)
            .map(([k, v]) => `\`${k}=${v}\``)
            .join(', ') + '; the rest at defaults',
        ],
        [
          'stores',
          `SQLite (embedded), PostgreSQL (${DATABASE_URL.replace(/\/\/[^@]*@/, '//')}), a redis-server of the bench's own`,
        ],
        ['duration', `${fmt(roundsSeconds)} s of rounds, ${fmt(total)} s in all`],
      ],
    ),
    '',
    'Peers (versions read from their package.json):',
    '',
    ...markdownTable(
      ['package', 'version'],
      peers.map(([pkg, label]) => [label, versionOf(pkg)]),
    ),
    '',
    'The machine has two cores: the load generator, the server under test, its thread pool and the stores share them, so the ratios are the figures to compare.',
    '',
    '## Goals',
    '',
    ...markdownTable(
      ['goal', 'result', 'figures'],
      goals.map((g) => [g.text, g.met ? 'met' : '**not met**', g.detail]),
    ),
    '',
    '## A protected route on one Fastify app',
    '',
    `ES256 tokens signed by the bench with one key, given to every verifier. "one repeated token": every request presents the same token; "${fmt(POOL)} distinct tokens": requests take the pool in turn, more tokens than @tessera/verify's default cache holds (10,000), so each is verified again. Each library at its defaults (@tessera/verify: its verified-token cache; @fastify/jwt and fast-jwt: no cache).`,
    '',
    chart('protected-route.svg', 'Protected route, one Fastify app', section('route')),
    '',
    ...groupTable(section('route')),
    '',
    "## Session checks, each beside its own framework's ceiling",
    '',
    "Tessera: `GET /auth/me` of `tessera serve` in session mode (sessions in SQLite; in PostgreSQL; or in Redis, with the accounts in PostgreSQL) (session token in `Authorization: Bearer`, one session per connection) beside the same server's `/healthz`; `POST /auth/refresh` in token mode, one rotating chain per connection. The peers: a route behind each, one session cookie per connection, beside a no-auth route of the same app (express-session and @fastify/session on connect-redis with `resave: false`, `saveUninitialized: false`; Better Auth on its own SQLite file, `auth.api.getSession`).",
    '',
    chart('sessions.svg', 'Session checks vs their ceilings', section('session')),
    '',
    ...groupTable(section('session')),
    '',
    '## Account server',
    '',
    `Logins: \`POST /auth/login\` on SQLite, ${STORM_CONNECTIONS} connections, beside raw \`argon2.verify\` in a process of its own on the server's parameters (packages/server/src/domain/passwords.ts: argon2id, 19,456 KiB, 2 passes, 1 lane) and its number of hashing slots. During each storm ${STORM_READERS} more connections read \`GET /auth/me\` (session mode) at ${STORM_READ_RATE} requests/s in all: p99 ${ms(stormP99)} ms (median over rounds; per round ${stormReads.map((r) => `${ms(r.p99)} ms`).join(' / ')}).`,
    '',
    ...groupTable(section('account')),
    '',
    '### One instance vs two behind a load balancer (PostgreSQL + Redis)',
    '',
    'A round-robin balancer (bench/apps/balancer.ts, node:http with keep-alive) in front of one instance, and in front of two instances sharing the PostgreSQL schema and Redis prefix; the ceiling is `/healthz` through the same balancer. On two cores the load generator, the balancer, both instances, PostgreSQL and Redis share the CPUs, so a second instance adds no hardware here: this shows that the shared stores let requests land on either instance (a refresh chain alternates between them), not how throughput scales on more machines.',
    '',
    chart('scale-out.svg', 'One vs two instances', section('scale')),
    '',
    ...groupTable(section('scale')),
    '',
    "## The article's claims",
    '',
    '### Memory per active session',
    '',
    `Sessions written straight into each store through its session-store API (\`createSession\`, 32 in flight) while \`tessera serve\` runs on it; at each size the server's RSS, the store's size, and ${GROWTH_ROUNDS} rounds of \`/healthz\` then \`GET /auth/me\` over a uniform sample of 1,000 of the sessions (a different one on each request; medians of the rounds, × /healthz of the same round). Bytes per session are the slope between the smallest and the largest size, so fixed overhead drops out.`,
    '',
  );
  const growthRows: (string | number)[][] = [];
  for (const g of grown)
    for (const p of g.points)
      growthRows.push([
        STORE_NAMES[g.store],
        fmt(p.sessions),
        fmt(p.rssBytes / 2 ** 20, 1),
        fmt(p.storeBytes / 2 ** 20, 1),
        fmt(p.me.rps),
        ratio(p.me.ratio),
        ms(p.me.p50),
        ms(p.me.p99),
        ms(p.healthz.p99),
        fmt(p.insertPerSecond),
      ]);
  lines.push(
    ...markdownTable(
      [
        'store',
        'sessions',
        'server RSS MiB',
        'store MiB',
        '/auth/me req/s',
        '× /healthz',
        'p50 ms',
        'p99 ms',
        '/healthz p99 ms',
        'inserts/s',
      ],
      growthRows,
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    ...markdownTable(
      ['store', 'store size measured as', 'store bytes per session', 'server RSS bytes per session'],
      grown.map((g) => {
        const a = g.points[0]!;
        const b = g.points.at(-1)!;
        return [
          STORE_NAMES[g.store],
          g.storeMeasure,
          fmt(
            bytesPerItem(
              { count: a.sessions, bytes: a.storeBytes },
              { count: b.sessions, bytes: b.storeBytes },
            ),
          ),
          fmt(
            bytesPerItem({ count: a.sessions, bytes: a.rssBytes }, { count: b.sessions, bytes: b.rssBytes }),
          ),
        ];
      }),
      ['l', 'l', 'r', 'r'],
    ),
    '',
    "The store holds the sessions; an instance keeps at most 10,000 busy ones, for the `TESSERA_SESSION_CACHE_MS` lease (100 ms by default). The RSS column shows whether the server's own memory follows the session count; between nearby sizes its differences are garbage-collector noise, so read its slope only over the full run's 1k to 1M.",
    '',
  );
  for (const [file, title, unit, y] of [
    ['session-latency.svg', 'GET /auth/me p99 as sessions grow', 'p99 ms', (p: SizePoint) => p.me.p99],
    ['session-memory.svg', 'Store size as sessions grow', 'MiB', (p: SizePoint) => p.storeBytes / 2 ** 20],
  ] as const) {
    const series = grown.map((g) => ({
      name: STORE_NAMES[g.store],
      points: g.points.map((p) => ({ x: p.sessions, y: y(p) })),
    }));
    writeFileSync(path.join(OUT, file), lineChart(title, 'sessions in the store', unit, series));
  }
  lines.push(
    '![Store size as sessions grow](session-memory.svg)',
    '',
    '### /auth/me latency as sessions grow',
    '',
    '![GET /auth/me p99 as sessions grow](session-latency.svg)',
    '',
    '### A session lookup vs a local token verify',
    '',
    `One call at a time from the bench process, median of batches of 500: \`verifySync\` of @tessera/verify with its cache off (a distinct ES256 token each call) vs the session store's \`getLiveSession\` at the largest size (in process for SQLite, one round trip for PostgreSQL and Redis).`,
    '',
    ...markdownTable(
      ['check', 'µs per call', '× local verify'],
      [
        ['@tessera/verify verifySync, uncached', ms(verifyMicros), '1.00×'],
        ...grown.map((g) => [
          `getLiveSession, ${STORE_NAMES[g.store]}, ${fmt(g.points.at(-1)!.sessions)} sessions`,
          ms(g.lookupMicros),
          ratio(g.lookupMicros / verifyMicros),
        ]),
      ],
      ['l', 'r', 'r'],
    ),
    '',
    "With the verifier's cache (its default), a token seen before costs a map lookup: see the repeated-token row of the protected-route table.",
    '',
    '### How long a stolen token stays usable after logout',
    '',
    ...markdownTable(
      ['token', 'usable after logout', 'how measured'],
      [
        ...windows.map((w) => {
          const s = [...w.ms].sort((a, b) => a - b);
          const text = s.some((x) => Number.isNaN(x))
            ? 'still usable when the poll gave up'
            : s.length > 1
              ? `median ${ms(quantile(s, 0.5))} ms, max ${ms(s.at(-1)!)} ms`
              : `${ms(s[0]!)} ms`;
          return [w.what, text, w.note];
        }),
        [
          'plain JWT (no revocation check: @fastify/jwt, fast-jwt as set up above)',
          'until it expires: its whole lifetime (300 s with the lifetime Tessera gives access tokens by default, `TESSERA_ACCESS_TOKEN_TTL`)',
          'stated: nothing the server does after logout reaches a verifier that checks only signature and claims',
        ],
      ],
    ),
    '',
  );
  if (notes.length > 0 || failures.length > 0)
    lines.push(
      '## Notes',
      '',
      ...notes.map((n) => `- ${n}`),
      ...failures.map(
        (r) => `- **${r.scenario}: ${r.failures} failed requests, ${r.repeats} repeated tokens**`,
      ),
      '',
    );
  const text = lines.join('\n');
  writeFileSync(path.join(OUT, 'README.md'), text);
  console.log(`\n${text}\nwritten to docs/benchmarks/README.md (${fmt(total)} s)`);
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main();
