// The account server's hot routes beside /healthz, in interleaved rounds, on SQLite and on
// PostgreSQL + Redis. The server runs in its own process, started through the CLI and configured
// through the environment only; load comes from autocannon in this process; loopback only.
//
//   npm run bench:core                 figures: bench/results/core.json, core.md
//   npm run bench:core -- --profile    CPU profiles: bench/results/profile-*.md (--profile=refresh,token-read picks some)
//
// BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_CONNECTIONS (16), BENCH_PROFILE_SECONDS (10);
// PostgreSQL and Redis from TESSERA_TEST_DATABASE_URL / TESSERA_TEST_REDIS_URL (defaults: local).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from '../packages/server/test/helpers.js';
import { type CpuProfile, profileMarkdown, summariseProfile } from './cpuprofile.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PROFILE_SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
const WARMUP_SECONDS = 1;
const DATABASE_URL = process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const USERS = 4;
const PASSWORD = 'benchmark passphrase 42';
const ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS = path.join(ROOT, 'bench/results');
/** Settings the server gets besides port, data folder, issuer and the store's. */
const SETTINGS: Record<string, string> = {
  TESSERA_LOG_LEVEL: 'warn',
  // Every connection of every round logs in; registration and logins must not be refused.
  TESSERA_REGISTER_PER_IP_PER_HOUR: '1000',
  TESSERA_LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
  TESSERA_LOGIN_MAX_FAILURES_PER_IP: '1000',
};

type StoreKind = 'sqlite' | 'postgres+redis';

interface Server {
  base: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(env: Record<string, string>, nodeArgs: string[] = []): Promise<Server> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-core-'));
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--conditions=@tessera/source',
      '--import',
      'tsx',
      'packages/server/src/cli/main.ts',
      'serve',
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...SETTINGS,
        ...env,
        TESSERA_PORT: String(port),
        TESSERA_HOST: '127.0.0.1',
        TESSERA_DATA_DIR: dataDir,
        TESSERA_ISSUER: base,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
    process.stderr.write(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}: ${stderr}`);
    const up = await fetch(`${base}/healthz`).then(
      (res) => res.ok,
      () => false,
    );
    if (up) return { base, child, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the server did not answer /healthz within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function post(base: string, pathname: string, body: unknown): Promise<Record<string, string>> {
  const res = await fetch(`${base}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${pathname}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** The server's users; logins go round-robin over them, at most one at a time per account. */
async function registerUsers(base: string): Promise<void> {
  for (let u = 0; u < USERS; u++)
    await post(base, '/auth/register', { username: `bench${u}`, password: PASSWORD });
}

/** `count` logins (argon2 each), one per user in flight; returns the refresh or session tokens. */
async function logins(base: string, mode: 'token' | 'session', count: number): Promise<string[]> {
  const out: string[] = new Array(count);
  await Promise.all(
    Array.from({ length: USERS }, async (_, u) => {
      for (let i = u; i < count; i += USERS) {
        const body = await post(base, '/auth/login', {
          username: `bench${u}`,
          password: PASSWORD,
          mode,
          delivery: 'header',
        });
        out[i] = (mode === 'token' ? body.refresh_token : body.session_token)!;
      }
    }),
  );
  return out;
}

interface Run {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** non-2xx answers, connection errors and timeouts. */
  failures: number;
  /** Refresh tokens sent a second time, or access tokens presented a second time. */
  repeats: number;
}

function cannon(opts: autocannon.Options, repeats = () => 0): Promise<Run> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: SECONDS, ...opts }, (err, r) => {
      if (err) return reject(err);
      const seconds = (r.finish.getTime() - r.start.getTime()) / 1000;
      resolve({
        requests: r.requests.total,
        seconds,
        rps: r.requests.total / seconds,
        p50: r.latency.p50,
        p99: r.latency.p99,
        failures: r.non2xx + r.errors + r.timeouts,
        repeats: repeats(),
      });
    });
  });
}

/**
 * POST /auth/refresh on one chain per connection: each connection starts from its own login's
 * refresh token and sends the one from its previous answer next. A token is never sent twice
 * (that would be a grace-window repeat); if one is, it is counted. `onPair` sees every answer.
 */
function refreshChains(
  base: string,
  chains: string[],
  opts: { seconds?: number; amount?: number; onPair?: (pair: Record<string, string>) => void } = {},
): Promise<Run> {
  if (chains.length < CONNECTIONS) throw new Error(`${CONNECTIONS} chains needed, got ${chains.length}`);
  const sent = new Set<string>();
  let repeats = 0;
  let next = 0;
  return cannon(
    {
      url: `${base}/auth/refresh`,
      ...(opts.amount === undefined ? { duration: opts.seconds ?? SECONDS } : { amount: opts.amount }),
      setupClient: (client) => {
        const chain = { token: chains[next++]! };
        client.setRequests([
          {
            method: 'POST',
            path: '/auth/refresh',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req) => {
              if (sent.has(chain.token)) repeats++;
              sent.add(chain.token);
              return { ...req, body: JSON.stringify({ refresh_token: chain.token }) };
            },
            onResponse: (status, body) => {
              if (status !== 200) return;
              const pair = JSON.parse(body) as Record<string, string>;
              chain.token = pair.refresh_token!;
              opts.onPair?.(pair);
            },
          },
        ]);
      },
    },
    () => repeats,
  );
}

/** GET /auth/me with a different access token on every request, taken from the front of `pool`. */
async function meFreshTokens(base: string, pool: string[], seconds = SECONDS): Promise<Run> {
  let used = 0;
  let short = 0;
  const run = await cannon(
    {
      url: `${base}/auth/me`,
      duration: seconds,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => {
            const token = pool[used++];
            if (token === undefined) short++;
            return { ...req, headers: { ...req.headers, authorization: `Bearer ${token ?? pool.at(-1)}` } };
          },
        },
      ],
    },
    () => short,
  );
  pool.splice(0, used);
  return run;
}

/** GET /auth/me in session mode, one session per connection. */
function meSessions(base: string, sessions: string[], seconds = SECONDS): Promise<Run> {
  let next = 0;
  return cannon({
    url: `${base}/auth/me`,
    duration: seconds,
    setupClient: (client) => client.setHeaders({ authorization: `Bearer ${sessions[next++]}` }),
  });
}

/** Tops `pool` up to `size` distinct access tokens, minted by refreshes on fresh chains. */
async function fillPool(base: string, pool: string[], size: number): Promise<void> {
  const need = size - pool.length;
  if (need <= 0) return;
  const known = new Set(pool);
  const run = await refreshChains(base, await logins(base, 'token', CONNECTIONS), {
    amount: need,
    onPair: (pair) => {
      if (!known.has(pair.access_token!)) {
        known.add(pair.access_token!);
        pool.push(pair.access_token!);
      }
    },
  });
  if (run.failures > 0 || run.repeats > 0) throw new Error(`minting access tokens: ${JSON.stringify(run)}`);
}

interface Scenario {
  name: string;
  /** Before the round's /healthz: logins, minting. */
  prepare?: () => Promise<void>;
  run: () => Promise<Run>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Row {
  scenario: string;
  rps: number;
  ratio: number;
  p50: number;
  p99: number;
  failures: number;
  repeats: number;
  rounds: (Run & { ratio: number })[];
}

/** Prepares every scenario, then: /healthz, each scenario, per round. */
async function rounds(scenarios: Scenario[], healthz: () => Promise<Run>): Promise<Row[]> {
  const all = [{ name: 'GET /healthz', run: healthz }, ...scenarios];
  const runs = all.map(() => [] as (Run & { ratio: number })[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of scenarios) await s.prepare?.();
    let floor = 0;
    for (const [i, s] of all.entries()) {
      const run = await s.run();
      if (i === 0) floor = run.rps;
      runs[i]!.push({ ...run, ratio: run.rps / floor });
      console.log(
        `  round ${r + 1}: ${s.name}: ${Math.round(run.rps)} req/s (${(run.rps / floor).toFixed(2)}× /healthz)`,
      );
    }
  }
  return all.map((s, i) => {
    const rs = runs[i]!;
    return {
      scenario: s.name,
      rps: median(rs.map((x) => x.rps)),
      ratio: median(rs.map((x) => x.ratio)),
      p50: median(rs.map((x) => x.p50)),
      p99: median(rs.map((x) => x.p99)),
      failures: rs.reduce((a, x) => a + x.failures, 0),
      repeats: rs.reduce((a, x) => a + x.repeats, 0),
      rounds: rs,
    };
  });
}

const REFRESH = 'POST /auth/refresh, token mode, one chain per connection';
const ME_TOKEN = 'GET /auth/me, token mode, a new access token every request';
const ME_SESSION = 'GET /auth/me, session mode, one session per connection';

/** The scenarios of one store, on a server already started with its users registered. */
async function scenarios(base: string, withTokenReads: boolean): Promise<Scenario[]> {
  let chains: string[] = [];
  const sessions = await logins(base, 'session', CONNECTIONS);
  const pool: string[] = [];
  // A first guess above what one verify per request allows here; each run raises it to what it saw.
  let lastRate = 6000;
  const list: Scenario[] = [
    {
      name: REFRESH,
      // Chains end with each run (the answers in flight when it stops are never read): new logins per round.
      prepare: async () => {
        chains = await logins(base, 'token', CONNECTIONS);
      },
      run: () => refreshChains(base, chains),
    },
  ];
  if (withTokenReads) {
    list.push({
      name: ME_TOKEN,
      prepare: () => fillPool(base, pool, Math.ceil(lastRate * SECONDS * 2) + 2 * CONNECTIONS),
      run: async () => {
        const run = await meFreshTokens(base, pool);
        lastRate = Math.max(lastRate, run.rps);
        return run;
      },
    });
  }
  list.push({ name: ME_SESSION, run: () => meSessions(base, sessions) });
  return list;
}

async function benchStore(kind: StoreKind, env: Record<string, string>): Promise<Row[]> {
  console.log(`${kind}:`);
  const server = await startServer(env);
  try {
    await registerUsers(server.base);
    const list = await scenarios(server.base, kind === 'sqlite');
    const healthz = (seconds = SECONDS) => cannon({ url: `${server.base}/healthz`, duration: seconds });
    await healthz(WARMUP_SECONDS);
    await meSessions(server.base, await logins(server.base, 'session', CONNECTIONS), WARMUP_SECONDS);
    await refreshChains(server.base, await logins(server.base, 'token', CONNECTIONS), {
      seconds: WARMUP_SECONDS,
    });
    return await rounds(list, () => healthz());
  } finally {
    await server.stop();
  }
}

/** A fresh PostgreSQL schema and Redis prefix, or why PostgreSQL + Redis cannot be used. */
async function postgresRedis(): Promise<
  { env: Record<string, string>; cleanup: () => Promise<void> } | { skip: string }
> {
  const suffix = randomBytes(5).toString('hex');
  const schema = `bench_core_${suffix}`;
  const prefix = `bench-core-${suffix}:`;
  const db = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await db.connect();
    await db.query('SELECT 1');
  } catch (err) {
    await db.end().catch(() => undefined);
    return { skip: `PostgreSQL at ${DATABASE_URL} not reachable (${(err as Error).message})` };
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    await db.end();
    return { skip: `Redis at ${REDIS_URL} not reachable (${(err as Error).message})` };
  }
  return {
    env: {
      TESSERA_DATABASE_URL: DATABASE_URL,
      TESSERA_REDIS_URL: REDIS_URL,
      TESSERA_DATABASE_SCHEMA: schema,
      TESSERA_REDIS_PREFIX: prefix,
    },
    cleanup: async () => {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.end();
      let cursor = '0';
      do {
        const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = nextCursor;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}

function machine(): Record<string, unknown> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    date: new Date().toISOString(),
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function table(rows: Row[]): string[] {
  return [
    '| scenario | req/s | × /healthz | p50 ms | p99 ms | failures | repeats | req/s per round |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${fmt(r.rps)} | ${r.ratio.toFixed(2)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.failures} | ${r.repeats} | ${r.rounds.map((x) => fmt(x.rps)).join(' / ')} |`,
    ),
  ];
}

async function figures(): Promise<number> {
  const info = machine();
  const results: { store: StoreKind; rows?: Row[]; skipped?: string }[] = [];
  results.push({ store: 'sqlite', rows: await benchStore('sqlite', {}) });
  const pgRedis = await postgresRedis();
  if ('skip' in pgRedis) {
    console.log(`postgres+redis: skipped: ${pgRedis.skip}`);
    results.push({ store: 'postgres+redis', skipped: pgRedis.skip });
  } else {
    try {
      results.push({ store: 'postgres+redis', rows: await benchStore('postgres+redis', pgRedis.env) });
    } finally {
      await pgRedis.cleanup();
    }
  }

  const bad = results.flatMap((s) =>
    (s.rows ?? [])
      .filter((r) => r.failures > 0 || r.repeats > 0)
      .map((r) => `${s.store}: ${r.scenario}: ${r.failures} failures, ${r.repeats} repeated tokens`),
  );
  const lines = [
    '# Account server: hot routes beside /healthz',
    '',
    `${info.cpus} × ${info.cpuModel}, Node ${info.node}, ${info.date}. Server: \`tessera serve\` in its own process, loopback; load: autocannon in the bench process, ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} interleaved rounds (each round: /healthz, then every scenario). Figures are medians over the rounds; × /healthz is the median of each round's ratio to the /healthz run of the same round.`,
    '',
    `Settings besides port, data folder and issuer: ${Object.entries(SETTINGS)
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(
        ', ',
      )}; everything else at its default. ${USERS} users; every refresh chain and session comes from its own login.`,
    '',
    '- refresh: each connection rotates its own chain, sending the refresh token of its previous answer; new chains every round.',
    '- token-mode /auth/me: every request presents an access token never presented before (minted beforehand by refreshes), so each one is verified (ES256).',
    '- session-mode /auth/me: a session token in `Authorization: Bearer`, one session per connection.',
    '- failures: non-2xx answers, connection errors, timeouts; repeats: a refresh token sent twice or an access token presented twice. Both must be 0.',
    '',
  ];
  for (const s of results) {
    lines.push(`## ${s.store === 'sqlite' ? 'SQLite (embedded default)' : 'PostgreSQL + Redis'}`, '');
    if (s.skipped) lines.push(`Skipped: ${s.skipped}`, '');
    else {
      if (s.store === 'postgres+redis') lines.push('A fresh PostgreSQL schema and Redis key prefix.', '');
      lines.push(...table(s.rows!), '');
    }
  }
  lines.push(
    `Load average (1, 5, 15 min) at the start: ${(info.loadAverage as number[]).join(', ')}; at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(
        ', ',
      )}. The bench process and the server share these CPUs, so /healthz is measured in every round and the ratios are the figures to compare.`,
    '',
  );
  if (bad.length > 0) lines.push('**FAILED**:', '', ...bad.map((b) => `- ${b}`), '');
  const text = lines.join('\n');
  console.log(`\n${text}`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'core.md'), text);
  writeFileSync(
    path.join(RESULTS, 'core.json'),
    `${JSON.stringify({ machine: info, settings: { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, users: USERS, env: SETTINGS }, stores: results, failed: bad }, null, 2)}\n`,
  );
  if (bad.length > 0) {
    console.error(`\nFAILED:\n  ${bad.join('\n  ')}`);
    return 1;
  }
  return 0;
}

/** One server under --cpu-prof for one scenario; the summary covers the scenario's run only. */
async function profile(
  slug: string,
  title: string,
  /** Prepares a run (logins) and returns it; called twice, once to warm up. */
  prepare: (base: string) => Promise<() => Promise<Run>>,
  store: { kind: StoreKind; env: Record<string, string> } = { kind: 'sqlite', env: {} },
): Promise<Run> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-prof-'));
  const profDir = path.join(dir, 'profiles');
  // A private TMPDIR gives the server a tsx cache of its own: the source maps of exactly this run.
  const serverTmp = path.join(dir, 'tmp');
  mkdirSync(serverTmp);
  const server = await startServer({ ...store.env, TMPDIR: serverTmp }, [
    '--cpu-prof',
    `--cpu-prof-dir=${profDir}`,
  ]);
  let run: Run;
  let window: [number, number];
  try {
    await registerUsers(server.base);
    await (await prepare(server.base))();
    const go = await prepare(server.base);
    const start = Number(process.hrtime.bigint() / 1000n);
    run = await go();
    window = [start, Number(process.hrtime.bigint() / 1000n)];
  } finally {
    await server.stop();
  }
  // One file per thread (tsx's loader has one too); the main thread's is the one running the server's code.
  const serverCode = (p: CpuProfile) => {
    const ids = new Set(
      p.nodes.filter((n) => n.callFrame.url.includes('/packages/server/src/')).map((n) => n.id),
    );
    return p.samples.filter((id) => ids.has(id)).length;
  };
  const main = readdirSync(profDir)
    .map((f) => JSON.parse(readFileSync(path.join(profDir, f), 'utf8')) as CpuProfile)
    .sort((a, b) => serverCode(b) - serverCode(a))[0];
  if (!main) throw new Error(`no profile written in ${profDir}`);
  const tsxCacheDir = readdirSync(serverTmp)
    .map((f) => path.join(serverTmp, f))
    .find((f) => path.basename(f).startsWith('tsx-') && statSync(f).isDirectory());
  const summary = summariseProfile(main, { root: ROOT, tsxCacheDir, window });
  const info = machine();
  const md = profileMarkdown(
    title,
    [
      `${info.cpus} × ${info.cpuModel}, Node ${info.node}, ${info.date}, load average ${(info.loadAverage as number[]).join(', ')}. \`tessera serve --cpu-prof\` on ${store.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL + Redis'}, ${CONNECTIONS} connections for ${PROFILE_SECONDS} s after a run of the same length to warm up; ${fmt(run.rps)} req/s under the profiler, ${run.failures} failures, ${run.repeats} repeats.`,
      'Locations are source lines (tsx source maps); `node:` and `node_modules` entries as V8 reports them.',
    ],
    summary,
  );
  writeFileSync(path.join(RESULTS, `profile-${slug}.md`), md);
  console.log(`${title}: ${fmt(run.rps)} req/s; bench/results/profile-${slug}.md`);
  console.log(profileMarkdown(title, [], summary, 10));
  rmSync(dir, { recursive: true, force: true });
  return run;
}

/** The profiles `--profile` writes; `--profile=refresh,token-read` picks some. */
const PROFILES: Record<
  string,
  { title: string; store?: StoreKind; prepare: (base: string) => Promise<() => Promise<Run>> }
> = {
  healthz: {
    title: 'GET /healthz',
    prepare: async (base) => () => cannon({ url: `${base}/healthz`, duration: PROFILE_SECONDS }),
  },
  refresh: {
    title: REFRESH,
    prepare: async (base) => {
      const chains = await logins(base, 'token', CONNECTIONS);
      return () => refreshChains(base, chains, { seconds: PROFILE_SECONDS });
    },
  },
  'token-read': {
    title: ME_TOKEN,
    prepare: async (base) => {
      const pool: string[] = [];
      await fillPool(base, pool, 4000 * PROFILE_SECONDS);
      return () => meFreshTokens(base, pool, PROFILE_SECONDS);
    },
  },
  'session-read': {
    title: ME_SESSION,
    prepare: async (base) => {
      const sessions = await logins(base, 'session', CONNECTIONS);
      return () => meSessions(base, sessions, PROFILE_SECONDS);
    },
  },
  'session-read-redis': {
    title: ME_SESSION,
    store: 'postgres+redis',
    prepare: async (base) => {
      const sessions = await logins(base, 'session', CONNECTIONS);
      return () => meSessions(base, sessions, PROFILE_SECONDS);
    },
  },
};

async function profiles(): Promise<number> {
  mkdirSync(RESULTS, { recursive: true });
  const picked = process.argv.find((a) => a.startsWith('--profile='))?.slice('--profile='.length);
  const names = picked ? picked.split(',') : Object.keys(PROFILES);
  const runs: Run[] = [];
  for (const name of names) {
    const spec = PROFILES[name];
    if (!spec) throw new Error(`no profile ${name}; known: ${Object.keys(PROFILES).join(', ')}`);
    if (spec.store === 'postgres+redis') {
      const pgRedis = await postgresRedis();
      if ('skip' in pgRedis) {
        console.log(`${name}: skipped: ${pgRedis.skip}`);
        continue;
      }
      try {
        runs.push(
          await profile(name, `CPU profile: ${spec.title} (PostgreSQL + Redis)`, spec.prepare, {
            kind: 'postgres+redis',
            env: pgRedis.env,
          }),
        );
      } finally {
        await pgRedis.cleanup();
      }
    } else runs.push(await profile(name, `CPU profile: ${spec.title}`, spec.prepare));
  }
  return runs.some((r) => r.failures > 0 || r.repeats > 0) ? 1 : 0;
}

process.exitCode = process.argv.some((a) => a === '--profile' || a.startsWith('--profile='))
  ? await profiles()
  : await figures();
