import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { bearerToken, createVerifier, RevocationSet } from '../src/index.js';
import { expressAuth, expressRequireRoles, expressRequireScopes } from '../src/middleware/express.js';
import {
  fastifyAuth,
  fastifyClaims,
  fastifyRequireRoles,
  fastifyRequireScopes,
} from '../src/middleware/fastify.js';
import {
  honoAuth,
  honoRequireRoles,
  honoRequireScopes,
  type TesseraHonoEnv,
} from '../src/middleware/hono.js';
import { AUDIENCE, claims, ISSUER, makeKey, token } from './helpers.js';

const key = makeKey('ES256', 'mw');
const stale = new RevocationSet({ maxStalenessMs: 1000 });
const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [key.jwk] } });
const staleVerifier = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [key.jwk] },
  revocations: stale,
});

type Call = (
  path: string,
  authorization?: string,
) => Promise<{ status: number; headers: Headers; body: unknown }>;

async function viaFetch(base: string, path: string, authorization?: string) {
  const res = await fetch(base + path, { headers: authorization ? { authorization } : {} });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

async function expressApp(): Promise<Call> {
  const app = express();
  app.get('/me', expressAuth(verifier), (req, res) => {
    res.json({ sub: req.auth?.sub });
  });
  app.get('/admin', expressAuth(verifier), expressRequireScopes(['admin']), (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/role', expressAuth(verifier), expressRequireRoles(['ops']), (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/stale', expressAuth(staleVerifier), (_req, res) => {
    res.json({ ok: true });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closers.push(() => new Promise((r) => server.close(() => r())));
  return (path, authz) => viaFetch(base, path, authz);
}

async function fastifyApp(): Promise<Call> {
  const app = Fastify();
  app.get('/me', { preHandler: fastifyAuth(verifier) }, async (req) => ({ sub: fastifyClaims(req)?.sub }));
  app.get('/admin', { preHandler: [fastifyAuth(verifier), fastifyRequireScopes(['admin'])] }, async () => ({
    ok: true,
  }));
  app.get('/role', { preHandler: [fastifyAuth(verifier), fastifyRequireRoles(['ops'])] }, async () => ({
    ok: true,
  }));
  app.get('/stale', { preHandler: fastifyAuth(staleVerifier) }, async () => ({ ok: true }));
  await app.ready();
  closers.push(() => app.close());
  return async (path, authz) => {
    const res = await app.inject({
      method: 'GET',
      url: path,
      headers: authz ? { authorization: authz } : {},
    });
    return {
      status: res.statusCode,
      headers: new Headers(res.headers as Record<string, string>),
      body: res.json(),
    };
  };
}

async function honoApp(): Promise<Call> {
  const app = new Hono<TesseraHonoEnv>();
  app.get('/me', honoAuth(verifier), (c) => c.json({ sub: c.get('auth').sub }));
  app.get('/admin', honoAuth(verifier), honoRequireScopes(['admin']), (c) => c.json({ ok: true }));
  app.get('/role', honoAuth(verifier), honoRequireRoles(['ops']), (c) => c.json({ ok: true }));
  app.get('/stale', honoAuth(staleVerifier), (c) => c.json({ ok: true }));
  return async (path, authz) => {
    const res = await app.request(path, { headers: authz ? { authorization: authz } : {} });
    return { status: res.status, headers: res.headers, body: await res.json() };
  };
}

for (const [name, make] of [
  ['Express', expressApp],
  ['Fastify', fastifyApp],
  ['Hono', honoApp],
] as const) {
  describe(`${name} adapter`, () => {
    let call: Call;
    before(async () => {
      call = await make();
    });
    test('valid token: 200 with the claims on the request', async () => {
      const r = await call('/me', `Bearer ${token(key)}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { sub: 'user-1' });
    });
    test('no token: 401 with a bare Bearer challenge', async () => {
      const r = await call('/me');
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="tessera"');
      assert.deepEqual((r.body as { error: string }).error, 'token_missing');
    });
    test('bad token: 401 error="invalid_token" and a stable code', async () => {
      const r = await call('/me', `Bearer ${token(key, claims({ exp: 1 }))}`);
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="tessera", error="invalid_token"/);
      assert.equal((r.body as { error: string }).error, 'token_expired');
      const junk = await call('/me', 'Bearer a b');
      assert.equal(junk.status, 401);
    });
    test('scope and role helpers: 403 insufficient_scope', async () => {
      const r = await call('/admin', `Bearer ${token(key)}`);
      assert.equal(r.status, 403);
      assert.match(r.headers.get('www-authenticate') ?? '', /error="insufficient_scope", scope="admin"/);
      assert.equal(
        (await call('/admin', `Bearer ${token(key, claims({ scope: 'read admin' }))}`)).status,
        200,
      );
      assert.equal((await call('/role', `Bearer ${token(key)}`)).status, 403);
      assert.equal((await call('/role', `Bearer ${token(key, claims({ roles: ['ops'] }))}`)).status, 200);
    });
    test('revocation feed stale: 503, fail closed', async () => {
      const r = await call('/stale', `Bearer ${token(key)}`);
      assert.equal(r.status, 503);
      assert.equal((r.body as { error: string }).error, 'feed_stale');
    });
  });
}

test('bearerToken parsing', () => {
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken('Basic abc'), undefined);
  assert.equal(bearerToken('Bearer abc'), 'abc');
  assert.equal(bearerToken('bearer   abc  '), 'abc');
  assert.equal(bearerToken('Bearer'), null);
  assert.equal(bearerToken('Bearer a b'), null);
  assert.equal(bearerToken(['Bearer a', 'Bearer b']), null);
});
