// The account server's hot routes beside /healthz, in interleaved rounds, on SQLite and on
// PostgreSQL + Redis. The server runs in its own process, started through the CLI and configured
// through the environment only; load comes from autocannon in this process; loopback only.
//
//   npm run bench:core                 figures: bench/results/core.json, core.md
//   npm run bench:core -- --profile    CPU profiles: bench/results/profile-*.md (--profile=refresh,token-read picks some)
//
// BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_CONNECTIONS (16), BENCH_PROFILE_SECONDS (10);
// PostgreSQL and Redis from TESSERA_TEST_DATABASE_URL / TESSERA_TEST_REDIS_URL (defaults: local).
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { type CpuProfile, profileMarkdown, summariseProfile } from './cpuprofile.js';
import { cannon as load } from './lib/load.js';
import { machine, type Proc, ROOT, startApp, startTessera, withServerCpu } from './lib/proc.js';
import { fmt } from './lib/report.js';
import { connectPostgres, DATABASE_URL } from './lib/services.js';
import { type Row, type Run, summariseRounds } from './lib/stats.js';
import {
  BENCH_SETTINGS,
  fillPool as fillPoolOf,
  freshTokenReads,
  logins,
  meFreshTokens as meFreshTokensOf,
  meSessions as meSessionsOf,
  post,
  refreshChains as refreshChainsOf,
  registerUsers,
  USERS,
} from './lib/tessera.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PROFILE_SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
const WARMUP_SECONDS = 1;
const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RESULTS = path.join(ROOT, 'bench/results');
/** Settings the server gets besides port, data folder, issuer and the store's. */
const SETTINGS = BENCH_SETTINGS;

type StoreKind = 'sqlite' | 'postgres+redis';

const startServer = (env: Record<string, string>, nodeArgs: string[] = []) =>
  startTessera({ ...SETTINGS, ...env }, nodeArgs);
const cannon = (opts: Parameters<typeof load>[0] | Omit<Parameters<typeof load>[0], 'connections'>) =>
  load({ connections: CONNECTIONS, duration: SECONDS, ...opts });
const refreshChains = (
  base: string,
  chains: string[],
  opts: { seconds?: number; amount?: number; onPair?: (pair: Record<string, string>) => void } = {},
) =>
  refreshChainsOf(base, chains, {
    connections: CONNECTIONS,
    ...opts,
    ...(opts.amount === undefined ? { seconds: opts.seconds ?? SECONDS } : {}),
  });
const meFreshTokens = (base: string, pool: string[], seconds = SECONDS) =>
  meFreshTokensOf(base, pool, seconds, CONNECTIONS);
const meSessions = (base: string, sessions: string[], seconds = SECONDS) =>
  meSessionsOf(base, sessions, seconds, CONNECTIONS);
const fillPool = (base: string, pool: string[], size: number) => fillPoolOf(base, pool, size, CONNECTIONS);

interface Scenario {
  name: string;
  /** Before the round's /healthz: logins, minting. */
  prepare?: () => Promise<void>;
  run: () => Promise<Run>;
  /** The process whose CPU the run is charged: the server's unless the scenario runs elsewhere. */
  pid?: number;
}

/** Prepares every scenario, then: /healthz, each scenario, per round. */
async function rounds(
  scenarios: Scenario[],
  healthz: () => Promise<Run>,
  serverPid?: number,
): Promise<Row[]> {
  const all = [{ name: 'GET /healthz', run: healthz }, ...scenarios];
  const runs = all.map(() => [] as (Run & { ratio: number })[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of scenarios) await s.prepare?.();
    let ceiling = 0;
    for (const [i, s] of all.entries()) {
      const run = await withServerCpu(('pid' in s ? s.pid : undefined) ?? serverPid, s.run);
      if (i === 0) ceiling = run.rps;
      runs[i]!.push({ ...run, ratio: run.rps / ceiling });
      console.log(
        `  round ${r + 1}: ${s.name}: ${Math.round(run.rps)} req/s (${(run.rps / ceiling).toFixed(2)}× /healthz), server CPU ${fmt(run.serverCpuMicros ?? Number.NaN, 1)} µs/request`,
      );
    }
  }
  const ceilings = runs[0]!.map((x) => x.rps);
  return all.map((s, i) => summariseRounds(s.name, runs[i]!, ceilings));
}

const REFRESH = 'POST /auth/refresh, token mode, one chain per connection';
const ME_TOKEN = 'GET /auth/me, token mode, a new access token every request';
const ME_SESSION = 'GET /auth/me, session mode, one session per connection';
const LEAST_HEALTHZ = 'GET /healthz of a bare Fastify app (bench/apps/refresh-floor.ts)';
const LEAST_REFRESH = 'POST /auth/refresh of that app: one table, one transaction, one ES256 signature';

/**
 * The least a rotation can do, beside the server's refresh in the same rounds: the bare app's
 * /healthz and its refresh (each connection its own chain, as for the server).
 */
function leastRotation(app: Proc, seconds = SECONDS): Scenario[] {
  let chains: string[] = [];
  return [
    {
      name: LEAST_HEALTHZ,
      pid: app.child.pid,
      run: () => cannon({ url: `${app.base}/healthz`, duration: seconds }),
    },
    {
      name: LEAST_REFRESH,
      pid: app.child.pid,
      prepare: async () => {
        chains = await Promise.all(
          Array.from(
            { length: CONNECTIONS },
            async () => (await post(app.base, '/auth/login', {})).refresh_token!,
          ),
        );
      },
      run: () => refreshChains(app.base, chains, { seconds }),
    },
  ];
}

/** The scenarios of one store, on a server already started with its users registered. */
async function scenarios(base: string, withTokenReads: boolean): Promise<Scenario[]> {
  let chains: string[] = [];
  const sessions = await logins(base, 'session', CONNECTIONS);
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
    list.push({ name: ME_TOKEN, ...freshTokenReads(base, SECONDS, CONNECTIONS) });
  }
  list.push({ name: ME_SESSION, run: () => meSessions(base, sessions) });
  return list;
}

async function benchStore(kind: StoreKind, env: Record<string, string>): Promise<Row[]> {
  console.log(`${kind}:`);
  const server = await startServer(env);
  const least = kind === 'sqlite' ? await startApp('refresh-floor', {}) : undefined;
  try {
    await registerUsers(server.base);
    const list = await scenarios(server.base, kind === 'sqlite');
    if (least) list.push(...leastRotation(least));
    const healthz = (seconds = SECONDS) => cannon({ url: `${server.base}/healthz`, duration: seconds });
    await healthz(WARMUP_SECONDS);
    await meSessions(server.base, await logins(server.base, 'session', CONNECTIONS), WARMUP_SECONDS);
    await refreshChains(server.base, await logins(server.base, 'token', CONNECTIONS), {
      seconds: WARMUP_SECONDS,
    });
    for (const s of least ? leastRotation(least, WARMUP_SECONDS) : []) {
      await s.prepare?.();
      await s.run();
    }
    return await rounds(list, () => healthz(), server.child.pid);
  } finally {
    await server.stop();
    await least?.stop();
  }
}

/** A fresh PostgreSQL schema and Redis prefix, or why PostgreSQL + Redis cannot be used. */
async function postgresRedis(): Promise<
  { env: Record<string, string>; cleanup: () => Promise<void> } | { skip: string }
> {
  const suffix = randomBytes(5).toString('hex');
  const schema = `bench_core_${suffix}`;
  const prefix = `bench-core-${suffix}:`;
  const db = await connectPostgres();
  if ('skip' in db) return db;
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

function table(rows: Row[]): string[] {
  return [
    '| scenario | req/s | × /healthz | p50 ms | p99 ms | server CPU µs/request | failures | repeats | req/s per round |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${fmt(r.rps)} | ${r.ratio.toFixed(2)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${Number.isFinite(r.serverCpuMicros) ? fmt(r.serverCpuMicros, 1) : '—'} | ${r.failures} | ${r.repeats} | ${r.rounds.map((x) => fmt(x.rps)).join(' / ')} |`,
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
    "- the bare app (SQLite only): the least a refresh-token rotation can do, in its own process beside the server: one Fastify route, one SQLite table (WAL, synchronous NORMAL), one transaction per rotation (read the token, compare its secret's hash, mark it used, insert the successor), one ES256 access token signed on the thread pool; no sessions, users, throttle, metrics, logs or security headers. Its × /healthz is to the server's /healthz of the same round, like every row; its own /healthz is the row above it.",
    '- failures: non-2xx answers, connection errors, timeouts; repeats: a refresh token sent twice or an access token presented twice. Both must be 0.',
    '- server CPU µs/request: the CPU time (user + system, every thread: event loop, thread pool, SQLite) the server process used during the run, from /proc, divided by the requests it answered; medians over the rounds. It moves less with other load on the machine than req/s does.',
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
    // The warm-up run sets the pool of the profiled one: enough tokens that none is presented
    // twice, with room for a profiled run twice as fast as the warm-up (whose code is still cold).
    prepare: (() => {
      let rate = 4000;
      return async (base: string) => {
        const pool: string[] = [];
        await fillPool(base, pool, Math.ceil(rate * PROFILE_SECONDS * 2) + 2 * CONNECTIONS);
        return async () => {
          const run = await meFreshTokens(base, pool, PROFILE_SECONDS);
          rate = Math.max(rate, run.rps);
          return run;
        };
      };
    })(),
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
