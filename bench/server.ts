// Account-server throughput: /auth/me in both modes, /auth/refresh, beside the framework floor
// (/healthz) and the raw crypto each request needs. Server in its own process; loopback only.
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import argon2 from 'argon2';
import autocannon from 'autocannon';
import { PASSWORD_PARAMS } from '../packages/server/src/domain/passwords.js';

const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = 16;
const PORT = 4700 + Math.floor(Math.random() * 200);
const BASE = `http://127.0.0.1:${PORT}`;
const PASSWORD = 'benchmark passphrase 42';

function opsPerSecond(fn: () => void, ms = 1500): number {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
  }
  return n / (ms / 1000);
}

async function passwordHashTiming(): Promise<{ hashMs: number; verifyMs: number }> {
  const runs = 20;
  let t = performance.now();
  let hash = '';
  for (let i = 0; i < runs; i++) hash = await argon2.hash(`${PASSWORD}${i}`, PASSWORD_PARAMS);
  const hashMs = (performance.now() - t) / runs;
  t = performance.now();
  for (let i = 0; i < runs; i++) await argon2.verify(hash, `${PASSWORD}${runs - 1}`);
  return { hashMs, verifyMs: (performance.now() - t) / runs };
}

async function post(pathname: string, body: unknown): Promise<any> {
  const res = await fetch(`${BASE}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return res.json();
}

function cannon(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const length = opts.amount === undefined ? { duration: DURATION } : {};
    autocannon({ ...length, connections: CONNECTIONS, ...opts }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
  });
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/cli/main.ts', 'serve'], {
    env: {
      ...process.env,
      TESSERA_PORT: String(PORT),
      TESSERA_DATA_DIR: dataDir,
      TESSERA_LOG_LEVEL: 'warn',
      TESSERA_ISSUER: BASE,
      TESSERA_REGISTER_PER_IP_PER_HOUR: '1000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (let i = 0; i < 100; i++) {
      if (
        await fetch(`${BASE}/healthz`).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await post('/auth/register', { username: 'bench', password: PASSWORD });
    const token = await post('/auth/login', {
      username: 'bench',
      password: PASSWORD,
      mode: 'token',
      delivery: 'header',
    });
    const session = await post('/auth/login', {
      username: 'bench',
      password: PASSWORD,
      mode: 'session',
      delivery: 'header',
    });
    const chains: string[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      chains.push(
        (
          await post('/auth/login', {
            username: 'bench',
            password: PASSWORD,
            mode: 'token',
            delivery: 'header',
          })
        ).refresh_token,
      );
    }

    const results: { name: string; rps: number; p50: number; p99: number; non2xx: number }[] = [];
    const record = (name: string, r: autocannon.Result) =>
      results.push({
        name,
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        non2xx: r.non2xx + r.errors,
      });

    record('GET /healthz (framework floor)', await cannon({ url: `${BASE}/healthz` }));
    // Distinct access tokens, each presented once: every request pays a full ES256 verification.
    const FRESH = 4000;
    const fresh: string[] = [];
    let chain = (
      await post('/auth/login', { username: 'bench', password: PASSWORD, mode: 'token', delivery: 'header' })
    ).refresh_token;
    while (fresh.length < FRESH) {
      const pair = await post('/auth/refresh', { refresh_token: chain });
      fresh.push(pair.access_token);
      chain = pair.refresh_token;
    }
    let nextFresh = 0;
    record(
      'GET /auth/me, token mode, a new token each request (ES256 verify + session read)',
      await cannon({
        url: `${BASE}/auth/me`,
        amount: FRESH,
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => ({
              ...req,
              headers: { ...req.headers, authorization: `Bearer ${fresh[nextFresh++ % FRESH]}` },
            }),
          },
        ],
      }),
    );
    record(
      'GET /auth/me, token mode, one token repeated (verified-token cache + session read)',
      await cannon({ url: `${BASE}/auth/me`, headers: { authorization: `Bearer ${token.access_token}` } }),
    );
    record(
      'GET /auth/me, session mode (SHA-256 + session read)',
      await cannon({ url: `${BASE}/auth/me`, headers: { authorization: `Bearer ${session.session_token}` } }),
    );
    let next = 0;
    record(
      'POST /auth/refresh (rotate + ES256 sign)',
      await cannon({
        url: `${BASE}/auth/refresh`,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req, ctx) => {
              const context = ctx as Record<string, unknown>;
              context.token ??= chains[next++ % chains.length];
              return { ...req, body: JSON.stringify({ refresh_token: context.token }) };
            },
            onResponse: (status, body, ctx) => {
              if (status === 200) (ctx as Record<string, unknown>).token = JSON.parse(body).refresh_token;
            },
          },
        ],
      }),
    );

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = Buffer.from('x'.repeat(300));
    const sig = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const signOps = opsPerSecond(() => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
    const verifyOps = opsPerSecond(() =>
      verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig),
    );
    const pw = await passwordHashTiming();

    const floor = results[0]!.rps;
    const lines = [
      `Account server, one process, SQLite (WAL), ${CONNECTIONS} connections, ${DURATION} s each, loopback; ${new Date().toISOString().slice(0, 10)}`,
      '',
      '| what | req/s | × /healthz | p50 ms | p99 ms | non-2xx |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...results.map(
        (r) =>
          `| ${r.name} | ${Math.round(r.rps)} | ${(r.rps / floor).toFixed(2)} | ${r.p50} | ${r.p99} | ${r.non2xx} |`,
      ),
      '',
      '| raw limit in this process | ops/s |',
      '| --- | ---: |',
      `| ES256 sign (node:crypto) | ${Math.round(signOps)} |`,
      `| ES256 verify (node:crypto) | ${Math.round(verifyOps)} |`,
      '',
      `Password hashing, argon2id m=${PASSWORD_PARAMS.memoryCost} KiB t=${PASSWORD_PARAMS.timeCost} p=${PASSWORD_PARAMS.parallelism}: hash ${pw.hashMs.toFixed(1)} ms, verify ${pw.verifyMs.toFixed(1)} ms (mean of 20, on libuv's pool).`,
    ];
    const text = lines.join('\n');
    console.log(text);
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/server.md', `${text}\n`);
  } finally {
    child.kill('SIGTERM');
  }
}

await main();
