// DPoP through the middleware core and the three adapters, over real HTTP: the scheme/binding
// rules (DPoP tokens never as Bearer, plain tokens never as DPoP), challenges, replay, headers.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import {
  accessTokenHash,
  authenticate,
  authenticateRequest,
  createDpopChecker,
  createVerifier,
  dpopConfirmation,
  jwkThumbprint,
} from '../src/index.js';
import { expressAuth } from '../src/middleware/express.js';
import { fastifyAuth, fastifyClaims } from '../src/middleware/fastify.js';
import { honoAuth, type TesseraHonoEnv } from '../src/middleware/hono.js';
import { AUDIENCE, b64, claims, ISSUER, makeKey, token } from './helpers.js';

const issuerKey = makeKey('ES256', 'dpop-mw');
const verifier = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [issuerKey.jwk] },
  confirmation: dpopConfirmation,
});
// The default policy: cnf refused by the verifier itself.
const strictVerifier = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [issuerKey.jwk] },
});
const lenientVerifier = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [issuerKey.jwk] },
  confirmation: 'ignore',
});

function proofKey(): { privateKey: KeyObject; jwk: Record<string, unknown>; jkt: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  return { privateKey, jwk, jkt: jwkThumbprint(jwk as { x: string; y: string }) };
}
const client = proofKey();
const bound = () => token(issuerKey, claims({ cnf: { jkt: client.jkt } }));
const plain = () => token(issuerKey, claims());

function proof(htu: string, accessToken: string, o: { htm?: string; k?: ReturnType<typeof proofKey> } = {}) {
  const k = o.k ?? client;
  const input = `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: k.jwk })}.${b64({
    htm: o.htm ?? 'GET',
    htu,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    ath: accessTokenHash(accessToken),
  })}`;
  return `${input}.${b64(sign('sha256', Buffer.from(input), { key: k.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
}

interface Res {
  status: number;
  challenge: string;
  body: { error?: string; sub?: string };
}

/** GET with node:http, so a header can be sent twice (array value = two header lines). */
function get(url: string, headers: Record<string, string | string[]>): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          challenge: String(res.headers['www-authenticate'] ?? ''),
          body: text ? JSON.parse(text) : {},
        }),
      );
    });
    req.on('error', reject);
  });
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

// Clients address the APIs as PUBLIC; the servers listen on loopback ports (a proxy in between).
const PUBLIC = 'https://api.example.test';
const dpop = createDpopChecker({ publicUrl: PUBLIC });

async function expressBase(): Promise<string> {
  const app = express();
  app.get('/me', expressAuth(verifier, { dpop }), (req, res) => {
    res.json({ sub: req.auth?.sub });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function fastifyBase(): Promise<string> {
  const app = Fastify();
  app.get('/me', { preHandler: fastifyAuth(verifier, { dpop }) }, async (req) => ({
    sub: fastifyClaims(req)?.sub,
  }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function honoBase(): Promise<string> {
  const app = new Hono<TesseraHonoEnv>();
  app.get('/me', honoAuth(verifier, { dpop }), (c) => c.json({ sub: c.get('auth').sub }));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

for (const [name, make] of [
  ['Express', expressBase],
  ['Fastify', fastifyBase],
  ['Hono', honoBase],
] as const) {
  describe(`${name} adapter with DPoP`, () => {
    let base = '';
    before(async () => {
      base = await make();
    });

    test('DPoP-bound token with a fresh proof: 200; the same proof again: 401 dpop_replayed', async () => {
      const t = bound();
      const p = proof(`${PUBLIC}/me`, t);
      const ok = await get(`${base}/me?page=2`, { authorization: `DPoP ${t}`, dpop: p });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.sub, 'user-1');
      const again = await get(`${base}/me`, { authorization: `DPoP ${t}`, dpop: p });
      assert.equal(again.status, 401);
      assert.equal(again.body.error, 'dpop_replayed');
      assert.equal(
        again.challenge,
        'DPoP realm="tessera", algs="ES256", error="invalid_dpop_proof", error_description="dpop_replayed"',
      );
    });

    test('a proof naming the address the request reached instead of publicUrl: 401', async () => {
      const t = bound();
      const r = await get(`${base}/me`, { authorization: `DPoP ${t}`, dpop: proof(`${base}/me`, t) });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'dpop_proof_invalid');
    });

    test('DPoP-bound token as Bearer: 401 invalid_token (dpop_required)', async () => {
      const r = await get(`${base}/me`, { authorization: `Bearer ${bound()}` });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'dpop_required');
      assert.match(
        r.challenge,
        /^Bearer realm="tessera", error="invalid_token", error_description="dpop_required"/,
      );
      assert.match(r.challenge, /DPoP realm="tessera", algs="ES256"$/);
    });

    test('plain token with the DPoP scheme and a valid proof: 401 invalid_token', async () => {
      const t = plain();
      const r = await get(`${base}/me`, { authorization: `DPoP ${t}`, dpop: proof(`${PUBLIC}/me`, t) });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'dpop_token_unbound');
      assert.match(r.challenge, /^DPoP realm="tessera", algs="ES256", error="invalid_token"/);
      // ... and still fine as Bearer.
      assert.equal((await get(`${base}/me`, { authorization: `Bearer ${t}` })).status, 200);
    });

    test('no proof, two proofs, oversized proof, wrong URL/method/key: 401 invalid_dpop_proof', async () => {
      const t = bound();
      const cases: [string, Record<string, string | string[]>, string][] = [
        ['no proof', { authorization: `DPoP ${t}` }, 'dpop_proof_invalid'],
        [
          'two DPoP headers',
          { authorization: `DPoP ${t}`, dpop: [proof(`${PUBLIC}/me`, t), proof(`${PUBLIC}/me`, t)] },
          'dpop_proof_invalid',
        ],
        ['oversized', { authorization: `DPoP ${t}`, dpop: 'A'.repeat(5000) }, 'dpop_proof_invalid'],
        [
          'other URL',
          { authorization: `DPoP ${t}`, dpop: proof(`${PUBLIC}/other`, t) },
          'dpop_proof_invalid',
        ],
        [
          'other host',
          { authorization: `DPoP ${t}`, dpop: proof('http://localhost/me', t) },
          'dpop_proof_invalid',
        ],
        [
          'other method',
          { authorization: `DPoP ${t}`, dpop: proof(`${PUBLIC}/me`, t, { htm: 'POST' }) },
          'dpop_proof_invalid',
        ],
        [
          'other token (ath)',
          { authorization: `DPoP ${t}`, dpop: proof(`${PUBLIC}/me`, bound()) },
          'dpop_proof_invalid',
        ],
        [
          'other key',
          { authorization: `DPoP ${t}`, dpop: proof(`${PUBLIC}/me`, t, { k: proofKey() }) },
          'dpop_binding_mismatch',
        ],
      ];
      for (const [label, headers, code] of cases) {
        const r = await get(`${base}/me`, headers);
        assert.equal(r.status, 401, label);
        assert.equal(r.body.error, code, label);
        assert.match(r.challenge, /^DPoP realm="tessera", algs="ES256", error="invalid_dpop_proof"/, label);
      }
    });

    test('bad token with a good proof: 401 invalid_token with a DPoP challenge', async () => {
      const t = token(issuerKey, claims({ exp: 1, cnf: { jkt: client.jkt } }));
      const r = await get(`${base}/me`, { authorization: `DPoP ${t}`, dpop: proof(`${PUBLIC}/me`, t) });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'token_expired');
      assert.match(r.challenge, /^DPoP realm="tessera", algs="ES256", error="invalid_token"/);
    });

    test('no credentials: both challenges', async () => {
      const r = await get(`${base}/me`, {});
      assert.equal(r.status, 401);
      assert.equal(r.challenge, 'Bearer realm="tessera", DPoP realm="tessera", algs="ES256"');
    });
  });
}

describe('core without a DPoP checker', () => {
  const request = (authorization: string, d?: string) => ({
    method: 'GET',
    url: '/me',
    authorization,
    dpop: d,
  });

  test('the DPoP scheme is not recognised (token_missing)', async () => {
    const t = bound();
    const out = await authenticateRequest(
      verifier,
      request(`DPoP ${t}`, proof('https://api.example.test/me', t)),
    );
    assert.equal(out.ok, false);
    if (!out.ok) assert.equal(out.failure.body.error, 'token_missing');
  });

  test('a cnf.jkt token is never accepted as Bearer, whatever the verifier policy', async () => {
    for (const v of [verifier, lenientVerifier]) {
      const out = await authenticate(v, `Bearer ${bound()}`);
      assert.equal(out.ok, false);
      if (!out.ok) {
        assert.equal(out.failure.status, 401);
        assert.equal(out.failure.body.error, 'dpop_required');
      }
    }
    const strict = await authenticate(strictVerifier, `Bearer ${bound()}`);
    assert.equal(strict.ok, false);
    if (!strict.ok) assert.equal(strict.failure.body.error, 'unsupported_confirmation');
    const oddJkt = await authenticate(
      lenientVerifier,
      `Bearer ${token(issuerKey, claims({ cnf: { jkt: 1 } }))}`,
    );
    assert.equal(oddJkt.ok, false);
    if (!oddJkt.ok) assert.equal(oddJkt.failure.body.error, 'dpop_required');
    assert.equal((await authenticate(lenientVerifier, `Bearer ${plain()}`)).ok, true);
  });

  test('a verifier left on the default policy refuses DPoP tokens even with a good proof', async () => {
    const t = bound();
    const out = await authenticateRequest(
      strictVerifier,
      request(`DPoP ${t}`, proof('https://api.example.test/me', t)),
      { dpop: createDpopChecker({ publicUrl: PUBLIC }) },
    );
    assert.equal(out.ok, false);
    if (!out.ok) assert.equal(out.failure.body.error, 'unsupported_confirmation');
  });

  test('a replay store that is down: 503, fail closed', async () => {
    const t = bound();
    const down = createDpopChecker({
      publicUrl: PUBLIC,
      replay: {
        remember: async () => {
          throw new Error('down');
        },
      },
    });
    const out = await authenticateRequest(
      verifier,
      request(`DPoP ${t}`, proof('https://api.example.test/me', t)),
      { dpop: down },
    );
    assert.equal(out.ok, false);
    if (!out.ok) {
      assert.equal(out.failure.status, 503);
      assert.equal(out.failure.body.error, 'dpop_replay_unavailable');
    }
  });
});
