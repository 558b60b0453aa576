// Times the unknown-user and wrong-password login paths against each other, interleaved, on a
// server in its own process. The ratio of their medians should stay within 0.9–1.1.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const PORT = 4900 + Math.floor(Math.random() * 90);
const BASE = `http://127.0.0.1:${PORT}`;

async function login(
  username: string,
  password: string,
): Promise<{ ms: number; status: number; body: string }> {
  const t = performance.now();
  const res = await fetch(`${BASE}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await res.text();
  return { ms: performance.now() - t, status: res.status, body };
}

function stats(xs: number[]): { median: number; mean: number; p90: number } {
  const s = [...xs].sort((a, b) => a - b);
  return {
    median: s[Math.floor(s.length / 2)]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    p90: s[Math.floor(s.length * 0.9)]!,
  };
}

async function main(): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--conditions=@tessera/source', '--import', 'tsx', 'packages/server/src/cli/main.ts', 'serve'],
    {
      env: {
        ...process.env,
        TESSERA_PORT: String(PORT),
        TESSERA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'tessera-enum-')),
        TESSERA_LOG_LEVEL: 'warn',
        // throttling would answer 429 before any hashing; this measures the hashing paths themselves
        TESSERA_LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000000',
        TESSERA_LOGIN_MAX_FAILURES_PER_IP: '1000000',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
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
    await fetch(`${BASE}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'existing', password: 'the real passphrase' }),
    });
    const unknown: number[] = [];
    const wrong: number[] = [];
    const bodies = new Set<string>();
    for (let i = 0; i < 10; i++) await login('existing', 'warm up the pool'); // warm-up
    for (let i = 0; i < ROUNDS; i++) {
      const order = i % 2 === 0 ? ['u', 'w'] : ['w', 'u'];
      for (const o of order) {
        const r =
          o === 'u'
            ? await login(`nobody${i}`, 'a wrong password')
            : await login('existing', 'a wrong password');
        (o === 'u' ? unknown : wrong).push(r.ms);
        bodies.add(`${r.status} ${r.body}`);
      }
    }
    const u = stats(unknown);
    const w = stats(wrong);
    const text = [
      `Login with an unknown user vs a wrong password, ${ROUNDS} each, interleaved; server in its own process; ${new Date().toISOString().slice(0, 10)}`,
      '',
      '| path | median ms | mean ms | p90 ms |',
      '| --- | ---: | ---: | ---: |',
      `| unknown user | ${u.median.toFixed(1)} | ${u.mean.toFixed(1)} | ${u.p90.toFixed(1)} |`,
      `| wrong password | ${w.median.toFixed(1)} | ${w.mean.toFixed(1)} | ${w.p90.toFixed(1)} |`,
      '',
      `Ratio of medians (unknown / wrong): **${(u.median / w.median).toFixed(3)}**; ratio of means: ${(u.mean / w.mean).toFixed(3)}.`,
      `Distinct answers seen: ${bodies.size} (${[...bodies].join(' | ')})`,
    ].join('\n');
    console.log(text);
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/enumeration.md', `${text}\n`);
  } finally {
    child.kill('SIGTERM');
  }
}

await main();
