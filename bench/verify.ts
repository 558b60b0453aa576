// Token verification throughput, side by side in one run on the same keys and tokens:
// raw node:crypto (the limit), @tessera/verify uncached and cached, jose, fast-jwt, jsonwebtoken.
// Prints a markdown table and writes it to bench/results/verify.md.
//   npm run bench:verify                 (about 45 s)
//   BENCH_SECONDS=10 npm run bench:verify   (measuring budget, wall-clock seconds; default 30)
// Throughput is ops per CPU-second of this process (process.cpuUsage, all threads), measured in
// short slices that rotate between contenders, so other load on a shared machine hits all alike.
import { verify as cryptoVerify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createVerifier as fastJwtVerifier } from 'fast-jwt';
import { importJWK, jwtVerify } from 'jose';
import jsonwebtoken from 'jsonwebtoken';
import { createVerifier, RevocationSet } from '../packages/verify/src/index.js';
import { benchKeys, mintTokens } from './lib/tokens.js';

const ISSUER = 'https://auth.example.test';
const AUDIENCE = 'tessera';
const TOKENS = 2000;
const BUDGET_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 30);
const SLICE_SECONDS = 0.03;

const keys = benchKeys();
const { publicKey, jwk, pem } = keys;
const now = Math.floor(Date.now() / 1000);
const tokens = mintTokens(keys, TOKENS, { issuer: ISSUER, audience: AUDIENCE });
// The limit: signature verification alone, on inputs decoded ahead of time.
const decoded = tokens.map((t) => {
  const dot = t.lastIndexOf('.');
  return { data: Buffer.from(t.slice(0, dot)), sig: Buffer.from(t.slice(dot + 1), 'base64url') };
});
const rawKey = { key: publicKey, dsaEncoding: 'ieee-p1363' as const };

// Our verifiers also check a revocation set on every call (peers have no such check).
const revocations = new RevocationSet();
for (let i = 0; i < 10_000; i++) revocations.add({ sid: `revoked-${i}`, expires_at: now + 3600 });
const uncached = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [jwk] },
  cache: false,
  revocations,
});
const cached = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [jwk] },
  cache: { max: TOKENS },
  revocations,
});
const joseKey = await importJWK(jwk, 'ES256');
const fastJwt = fastJwtVerifier({
  key: pem,
  algorithms: ['ES256'],
  allowedIss: ISSUER,
  allowedAud: AUDIENCE,
});
const jwtOptions: jsonwebtoken.VerifyOptions = { algorithms: ['ES256'], issuer: ISSUER, audience: AUDIENCE };

interface Contender {
  name: string;
  note: string;
  sync?: (i: number) => unknown;
  async?: (i: number) => Promise<unknown>;
}

const contenders: Contender[] = [
  {
    name: 'raw crypto.verify',
    note: 'signature only, input decoded ahead of time, KeyObject',
    sync: (i) => {
      const d = decoded[i]!;
      if (!cryptoVerify('sha256', d.data, rawKey, d.sig)) throw new Error('bad');
    },
  },
  {
    name: 'raw crypto.verify from the token',
    note: 'split + decode the signature per token, no other check',
    sync: (i) => {
      const t = tokens[i]!;
      const dot = t.lastIndexOf('.');
      const sig = Buffer.from(t.slice(dot + 1), 'base64url');
      if (!cryptoVerify('sha256', Buffer.from(t.slice(0, dot), 'latin1'), rawKey, sig))
        throw new Error('bad');
    },
  },
  {
    name: '@tessera/verify, uncached',
    note: 'verifySync, every check',
    sync: (i) => uncached.verifySync(tokens[i]!),
  },
  {
    name: '@tessera/verify, cached',
    note: 'verifySync, warm cache',
    sync: (i) => cached.verifySync(tokens[i]!),
  },
  {
    name: '@tessera/verify, uncached, async',
    note: 'await verify()',
    async: (i) => uncached.verify(tokens[i]!),
  },
  {
    name: 'jose 6',
    note: 'jwtVerify, imported KeyObject',
    async: (i) =>
      jwtVerify(tokens[i]!, joseKey, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['ES256'],
        typ: 'at+jwt',
      }),
  },
  { name: 'fast-jwt 6', note: 'createVerifier (PEM parsed once, cached)', sync: (i) => fastJwt(tokens[i]!) },
  {
    name: 'jsonwebtoken 9',
    note: 'verify with KeyObject',
    sync: (i) => jsonwebtoken.verify(tokens[i]!, publicKey, jwtOptions),
  },
];

function cpuMs(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

let cursor = 0;
let lastWallMs = 0;
/** Runs `n` operations; returns the CPU milliseconds they took (wall milliseconds in lastWallMs). */
async function slice(c: Contender, n: number): Promise<number> {
  const wall = performance.now();
  const start = process.cpuUsage();
  let i = cursor;
  if (c.sync) {
    for (let k = 0; k < n; k++) {
      c.sync(i);
      i = i + 1 === TOKENS ? 0 : i + 1;
    }
  } else {
    for (let k = 0; k < n; k++) {
      await c.async!(i);
      i = i + 1 === TOKENS ? 0 : i + 1;
    }
  }
  cursor = i;
  const ms = cpuMs(start);
  lastWallMs = performance.now() - wall;
  return ms;
}

// Sanity (every contender accepts every token) and warm-up: JIT, caches, key imports. Two passes:
// the verified-token cache keeps a token from its second verification on.
for (const c of contenders) await slice(c, 2 * TOKENS);

// Calibrate a slice size per contender (about SLICE_SECONDS of CPU each).
const sliceOps = new Map<string, number>();
for (const c of contenders) {
  let n = 50;
  while ((await slice(c, n)) < SLICE_SECONDS * 250 && n < 1e7) n *= 2;
  sliceOps.set(c.name, Math.max(50, Math.round((n * SLICE_SECONDS * 1000) / Math.max(1, await slice(c, n)))));
}

const totals = new Map<string, { ops: number; ms: number; wallMs: number }>(
  contenders.map((c) => [c.name, { ops: 0, ms: 0, wallMs: 0 }]),
);
// The budget is wall-clock time (so the run stays bounded on a busy machine); rates use CPU time.
const began = performance.now();
for (let round = 0; performance.now() - began < BUDGET_SECONDS * 1000; round++) {
  // Rotate the order each round so no contender always follows the same one.
  for (let k = 0; k < contenders.length; k++) {
    const c = contenders[(k + round) % contenders.length]!;
    const n = sliceOps.get(c.name)!;
    const ms = await slice(c, n);
    const t = totals.get(c.name)!;
    t.ops += n;
    t.ms += ms;
    t.wallMs += lastWallMs;
  }
}
const ops = new Map([...totals].map(([k, v]) => [k, (v.ops * 1000) / v.ms]));
const wallOps = new Map([...totals].map(([k, v]) => [k, (v.ops * 1000) / v.wallMs]));
const raw = ops.get('raw crypto.verify')!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

const rows = contenders.map(
  (c) =>
    `| ${c.name} | ${c.note} | ${fmt(ops.get(c.name)!)} | ${(ops.get(c.name)! / raw).toFixed(2)}× | ` +
    `${fmt(wallOps.get(c.name)!)} |`,
);
const uncachedOps = ops.get('@tessera/verify, uncached')!;
const cachedOps = ops.get('@tessera/verify, cached')!;
const peers = ['jose 6', 'fast-jwt 6', 'jsonwebtoken 9'].map((n) => ops.get(n)!);
const goals = [
  `- uncached ≥ 0.9× raw crypto: ${(uncachedOps / raw).toFixed(2)}× — ${uncachedOps >= 0.9 * raw ? 'met' : 'NOT met'}`,
  `- uncached ≥ every peer: ${uncachedOps >= Math.max(...peers) ? 'met' : 'NOT met'} (best peer ${fmt(Math.max(...peers))} ops/s)`,
  `- cached ≥ 20× raw crypto: ${(cachedOps / raw).toFixed(1)}× — ${cachedOps >= 20 * raw ? 'met' : 'NOT met'}`,
];
const table = [
  `# Access-token verification (ES256), ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), ` +
    `${TOKENS} distinct tokens, all contenders in one process, ops per CPU-second, measured for ${BUDGET_SECONDS} s ` +
    `of ~${SLICE_SECONDS * 1000} ms slices rotated between contenders. "vs raw" is relative to the first row.`,
  '',
  '| verifier | how | ops/s (CPU) | vs raw | ops/s (wall) |',
  '| --- | --- | ---: | ---: | ---: |',
  ...rows,
  '',
  ...goals,
  '',
  'ops/s (CPU) divides by the CPU time of the whole process (all threads), so work that jose hands to',
  "libuv's thread pool (WebCrypto) counts; ops/s (wall) is also shown but moves with other load on the",
  'machine. Our two verifiers also check a 10,000-entry revocation set on every call.',
  '',
].join('\n');

console.log(table);
const out = path.resolve(import.meta.dirname, 'results', 'verify.md');
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, table);
console.log(`written to ${path.relative(process.cwd(), out)}`);
