// The bench harness's own pieces, so that a report cannot rot unnoticed: the ratio arithmetic,
// the table and chart writers, token minting, and one bench app started as the report starts it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createVerifier } from '@tessera/verify';
import { startApp } from './proc.js';
import { barChart, escapeXml, lineChart, markdownTable } from './report.js';
import { bytesPerItem, goal, median, quantile, type Run, summariseRounds } from './stats.js';
import { benchKeys, mintTokens } from './tokens.js';

const run = (rps: number, extra: Partial<Run> = {}): Run => ({
  requests: rps,
  seconds: 1,
  rps,
  p50: 1,
  p99: 2,
  failures: 0,
  repeats: 0,
  ...extra,
});

test('median and quantile', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5), 5);
});

test('a row is the median of per-round ratios to that round’s ceiling, not a ratio of medians', () => {
  // Round ceilings 100, 200, 400; the cell 90, 100, 360: ratios 0.9, 0.5, 0.9.
  const row = summariseRounds(
    'cell',
    [run(90), run(100, { failures: 1 }), run(360, { repeats: 2 })],
    [100, 200, 400],
  );
  assert.equal(row.ratio, 0.9);
  assert.equal(row.rps, 100);
  assert.deepEqual(
    row.rounds.map((r) => r.ratio),
    [0.9, 0.5, 0.9],
  );
  assert.equal(row.failures, 1);
  assert.equal(row.repeats, 2);
  assert.throws(() => summariseRounds('cell', [run(1)], [1, 2]), /1 runs, 2 ceilings/);
  assert.ok(Number.isNaN(summariseRounds('cell', [run(1)], [0]).ratio));
});

test('bytes per item is the slope, and a goal with a missing figure is not met', () => {
  assert.equal(bytesPerItem({ count: 1000, bytes: 10_000 }, { count: 11_000, bytes: 1_010_000 }), 100);
  assert.ok(Number.isNaN(bytesPerItem({ count: 5, bytes: 1 }, { count: 5, bytes: 2 })));
  assert.equal(goal('x', undefined, '').met, false);
  assert.equal(goal('x', undefined as boolean | undefined, '').met, false);
  assert.equal(goal('x', true, '').met, true);
});

test('markdown tables escape pipes and align columns', () => {
  assert.deepEqual(markdownTable(['a', 'b'], [['x|y', 3]], ['l', 'r']), [
    '| a | b |',
    '| --- | ---: |',
    '| x\\|y | 3 |',
  ]);
});

test('charts are SVG with every label escaped and bars scaled to the largest value', () => {
  const svg = barChart('Routes <1>', 'req/s', [
    { label: 'a & b', value: 100, note: '1.00× ceiling', group: 'g1' },
    { label: 'c', value: 50, group: 'g2' },
    { label: 'missing', value: Number.NaN },
  ]);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /Routes &lt;1&gt;/);
  assert.match(svg, />a &amp; b</);
  assert.match(svg, /width="360"/);
  assert.match(svg, /width="180"/);
  assert.doesNotMatch(svg, /NaN/);
  const line = lineChart('p99', 'sessions', 'ms', [
    {
      name: 'SQLite',
      points: [
        { x: 1000, y: 2 },
        { x: 1_000_000, y: 3 },
      ],
    },
    { name: 'empty', points: [] },
  ]);
  assert.match(line, /<polyline/);
  assert.match(line, />1,000,000</);
  assert.doesNotMatch(line, /NaN|Infinity/);
  assert.equal(escapeXml(`<'"&>`), '&lt;&apos;&quot;&amp;&gt;');
});

test('minted tokens verify with the bench key, and the Fastify app checks them on every route', async () => {
  const keys = benchKeys();
  const [token] = mintTokens(keys, 1, { issuer: 'https://i.test', audience: 'tessera' });
  const verifier = createVerifier({
    issuer: 'https://i.test',
    audience: 'tessera',
    jwks: { keys: [keys.jwk] },
  });
  assert.equal(verifier.verifySync(token!).sub, 'user-0');
  const app = await startApp('fastify-tokens', {
    BENCH_JWK: JSON.stringify(keys.jwk),
    BENCH_PEM: keys.pem,
    BENCH_ISSUER: 'https://i.test',
    BENCH_AUDIENCE: 'tessera',
  });
  try {
    const status = async (route: string, authorization?: string) => {
      const res = await fetch(`${app.base}${route}`, { headers: authorization ? { authorization } : {} });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await status('/open'), 200);
    for (const route of ['/tessera', '/fastify-jwt', '/fast-jwt']) {
      assert.equal(await status(route, `Bearer ${token}`), 200, route);
      assert.equal(await status(route, `Bearer ${token!.slice(0, -4)}AAAA`), 401, route);
      assert.equal(await status(route), 401, route);
    }
  } finally {
    await app.stop();
  }
});

test('the bare refresh app rotates a chain, and refuses a spent, a changed and a missing token', async () => {
  const app = await startApp('refresh-floor', {});
  try {
    const post = async (route: string, body: unknown) => {
      const res = await fetch(`${app.base}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    const first = (await post('/auth/login', {})).body.refresh_token!;
    const rotated = await post('/auth/refresh', { refresh_token: first });
    assert.equal(rotated.status, 200);
    const [header] = rotated.body.access_token!.split('.');
    assert.equal(JSON.parse(Buffer.from(header!, 'base64url').toString()).alg, 'ES256');
    const next = rotated.body.refresh_token!;
    assert.notEqual(next, first);
    assert.equal((await post('/auth/refresh', { refresh_token: first })).status, 401, 'spent');
    assert.equal(
      (await post('/auth/refresh', { refresh_token: `${next.slice(0, -2)}AA` })).status,
      401,
      'changed',
    );
    assert.equal((await post('/auth/refresh', {})).status, 401, 'missing');
    assert.equal(
      (await post('/auth/refresh', { refresh_token: next })).status,
      200,
      'the successor still works',
    );
  } finally {
    await app.stop();
  }
});
