// One judge for the server's own access tokens: the same crafted variants (docs/security.md,
// "Access tokens") of a first-party token at /auth/me and of an OAuth token at
// /oauth/introspect must get the same verdict, so the two paths can never drift apart again.
import assert from 'node:assert/strict';
import { createHmac, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { call, registerAndLogin } from './helpers.js';
import { basic, form, type OAuthFixture, signIn, startOAuthServer, webAppTokens } from './oauth-helpers.js';

let f: OAuthFixture;
let firstParty: string;
let oauthToken: string;
let idToken: string;
before(async () => {
  f = await startOAuthServer();
  const { login } = await registerAndLogin(f.srv.url, { mode: 'token', delivery: 'header' });
  firstParty = login.body.access_token as string;
  const tokens = await webAppTokens(f, (await signIn(f.srv)).cookie);
  oauthToken = tokens.access_token as string;
  idToken = tokens.id_token as string;
});
after(async () => {
  await f.srv.close();
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const decode = (segment: string) => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));

type Json = Record<string, unknown>;

/** How a variant is made from a token the server issued: new header/claims, and how it is signed. */
interface Variant {
  header?: (h: Json) => Json;
  claims?: (c: Json, nowS: number) => Json | string;
  /** Default 'server': a valid ES256 signature by the server's current key over the new parts. */
  signature?: 'server' | 'keep' | 'empty' | ((input: string) => string);
  /** Applied to the finished compact token. */
  wrap?: (token: string) => string;
}

function craft(token: string, v: Variant): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const nowS = Math.floor(f.srv.clock.now / 1000);
  const header = v.header ? b64(v.header(decode(h))) : h;
  const claims = v.claims ? b64(v.claims(decode(p), nowS)) : p;
  const input = `${header}.${claims}`;
  let sig: string;
  const how = v.signature ?? 'server';
  if (how === 'keep') sig = s;
  else if (how === 'empty') sig = '';
  else if (how === 'server') {
    const { key } = f.srv.app.keys.signingKey();
    sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  } else sig = how(input);
  const out = `${input}.${sig}`;
  return v.wrap ? v.wrap(out) : out;
}

const currentKid = () => f.srv.app.keys.signingKey().kid;
const publicPem = () =>
  f.srv.app.keys.publicKey(currentKid())!.export({ format: 'pem', type: 'spki' }) as string;
const raw = (bytes: Buffer) => () => bytes.toString('base64url');

/** Every variant here must be refused. */
const REFUSED: Record<string, Variant> = {
  'alg none, no signature': { header: (h) => ({ ...h, alg: 'none' }), signature: 'empty' },
  'alg None with a signature': { header: (h) => ({ ...h, alg: 'None' }), signature: 'keep' },
  'alg missing': { header: ({ alg: _a, ...h }) => h },
  'alg ES384': { header: (h) => ({ ...h, alg: 'ES384' }) },
  'HS256 with the public key as secret': {
    header: (h) => ({ ...h, alg: 'HS256' }),
    signature: (input) => createHmac('sha256', publicPem()).update(input).digest('base64url'),
  },
  'empty signature': { signature: 'empty' },
  'two segments': { wrap: (t) => t.split('.').slice(0, 2).join('.') },
  'four segments': { wrap: (t) => `${t}.${t.split('.')[2]}` },
  'empty header': { wrap: (t) => `.${t.split('.').slice(1).join('.')}` },
  'payload changed, signature kept': { claims: (c) => ({ ...c, scope: 'api admin' }), signature: 'keep' },
  'r = s = 0': { signature: raw(Buffer.alloc(64)) },
  'r and s >= n': { signature: raw(Buffer.alloc(64, 0xff)) },
  'signature of 65 bytes': { signature: raw(Buffer.alloc(65, 1)) },
  'embedded jwk': {
    header: (h) => ({ ...h, jwk: f.srv.app.keys.jwks().keys[0] }),
  },
  'jku header': { header: (h) => ({ ...h, jku: 'https://evil.example/jwks.json' }) },
  'x5u header': { header: (h) => ({ ...h, x5u: 'https://evil.example/cert.pem' }) },
  'x5c header': { header: (h) => ({ ...h, x5c: ['MIIB'] }) },
  'kid as a path': { header: (h) => ({ ...h, kid: '../../dev/null' }) },
  'kid as SQL': { header: (h) => ({ ...h, kid: "' OR 1=1 --" }) },
  'kid very long': { header: (h) => ({ ...h, kid: 'k'.repeat(300) }) },
  'kid missing': { header: ({ kid: _k, ...h }) => h },
  crit: { header: (h) => ({ ...h, crit: ['exp'] }) },
  'exp now': { claims: (c, now) => ({ ...c, exp: now }) },
  'exp in the past': { claims: (c, now) => ({ ...c, exp: now - 1 }) },
  'exp missing': { claims: ({ exp: _e, ...c }) => c },
  'exp a string': { claims: (c) => ({ ...c, exp: String(c.exp) }) },
  'exp 1e400': { claims: (c) => JSON.stringify({ ...c, exp: 0 }).replace('"exp":0', '"exp":1e400') },
  'nbf 30 s ahead': { claims: (c, now) => ({ ...c, nbf: now + 30 }) },
  'iat 30 s ahead': { claims: (c, now) => ({ ...c, iat: now + 30 }) },
  'iss another': { claims: (c) => ({ ...c, iss: 'https://evil.example' }) },
  'iss with a trailing slash': { claims: (c) => ({ ...c, iss: `${c.iss}/` }) },
  'aud missing': { claims: ({ aud: _a, ...c }) => c },
  'aud another': { claims: (c) => ({ ...c, aud: 'https://evil.example' }) },
  'aud empty list': { claims: (c) => ({ ...c, aud: [] }) },
  'aud with a non-string': { claims: (c) => ({ ...c, aud: [c.aud, 1] }) },
  'typ JWT (an ID token)': { header: (h) => ({ ...h, typ: 'JWT' }) },
  'typ missing': { header: ({ typ: _t, ...h }) => h },
  'typ dpop+jwt': { header: (h) => ({ ...h, typ: 'dpop+jwt' }) },
  oversized: { claims: (c) => ({ ...c, pad: 'x'.repeat(8200) }) },
  'sid missing': { claims: ({ sid: _s, ...c }) => c },
  'sid a number': { claims: (c) => ({ ...c, sid: 7 }) },
  'sid another': { claims: (c) => ({ ...c, sid: 'no-such-session-or-grant' }) },
  'sub missing': { claims: ({ sub: _s, ...c }) => c },
  'sub empty': { claims: (c) => ({ ...c, sub: '' }) },
  'cnf a string': { claims: (c) => ({ ...c, cnf: 'jkt' }) },
  'cnf with an x5t#S256': { claims: (c) => ({ ...c, cnf: { 'x5t#S256': 'A'.repeat(43) } }) },
};

/** Variants still good: the format allows them, so both paths must take them. */
const ACCEPTED: Record<string, Variant> = {
  'as issued': { signature: 'keep' },
  're-signed, same parts': {},
  'typ application/at+jwt': { header: (h) => ({ ...h, typ: 'application/at+jwt' }) },
  'typ AT+JWT': { header: (h) => ({ ...h, typ: 'AT+JWT' }) },
  'aud a list naming it': { claims: (c) => ({ ...c, aud: [c.aud, 'https://elsewhere.example'] }) },
};

async function meAccepts(token: string): Promise<boolean> {
  const res = await call(f.srv.url, 'GET', '/auth/me', { headers: { authorization: `Bearer ${token}` } });
  assert.ok(res.status === 200 || res.status === 401, `/auth/me answered ${res.status}`);
  return res.status === 200;
}

async function introspectionAccepts(token: string): Promise<boolean> {
  const res = await form(f.srv, '/oauth/introspect', { token }, basic(f.web.client.client_id, f.web.secret));
  if (res.status === 400 && res.body.error === 'invalid_request') return false;
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(typeof res.body.active, 'boolean');
  return res.body.active === true;
}

describe('/auth/me and /oauth/introspect judge crafted tokens alike', () => {
  for (const [name, variant] of Object.entries(REFUSED)) {
    it(`refused by both: ${name}`, async () => {
      const me = await meAccepts(craft(firstParty, variant));
      const introspected = await introspectionAccepts(craft(oauthToken, variant));
      assert.deepEqual({ me, introspected }, { me: false, introspected: false });
    });
  }

  for (const [name, variant] of Object.entries(ACCEPTED)) {
    it(`accepted by both: ${name}`, async () => {
      const me = await meAccepts(craft(firstParty, variant));
      const introspected = await introspectionAccepts(craft(oauthToken, variant));
      assert.deepEqual({ me, introspected }, { me: true, introspected: true });
    });
  }

  it('neither takes the other kind of token, nor an ID token', async () => {
    assert.equal(await meAccepts(oauthToken), false);
    assert.equal(await introspectionAccepts(firstParty), false);
    assert.equal(await meAccepts(idToken), false);
    assert.equal(await introspectionAccepts(idToken), false);
  });

  it('both end a token exactly accessTokenTtl after it was issued', async () => {
    const me = craft(firstParty, {});
    const oauth = craft(oauthToken, {});
    const ttl = f.srv.config.accessTokenTtl * 1000;
    const start = f.srv.clock.now;
    try {
      f.srv.clock.now = start + ttl - 1000;
      assert.deepEqual([await meAccepts(me), await introspectionAccepts(oauth)], [true, true]);
      f.srv.clock.now = start + ttl + 1000;
      assert.deepEqual([await meAccepts(me), await introspectionAccepts(oauth)], [false, false]);
    } finally {
      f.srv.clock.now = start;
    }
  });
});
