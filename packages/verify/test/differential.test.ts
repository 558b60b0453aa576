// Differential test against jose on the same inputs: everything jose rejects we reject, and
// valid tokens are accepted by both with the same claims. We may be stricter than jose (we
// refuse jwk/jku/x5u/x5c/crit/b64 headers, a missing kid, missing iat/sub, cnf), never looser.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { createVerifier } from '../src/index.js';
import { AUDIENCE, b64, ISSUER, makeKey, signBytes } from './helpers.js';

const key = makeKey('ES256', 'k1');
const other = makeKey('ES256', 'k1');
const ed = makeKey('EdDSA', 'ed');
const NOW = 1_750_000_000;
const jwks = createLocalJWKSet({ keys: [key.jwk as never] });
const ours = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [key.jwk] },
  clockSkewSeconds: 30,
  cache: false,
  clock: () => NOW * 1000,
});

async function joseAccepts(token: string): Promise<boolean> {
  try {
    await jwtVerify(token, jwks, {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['ES256'],
      typ: 'at+jwt',
      clockTolerance: 30,
      currentDate: new Date(NOW * 1000),
      requiredClaims: ['exp'],
    });
    return true;
  } catch {
    return false;
  }
}

function oursAccepts(token: string): boolean {
  try {
    ours.verifySync(token);
    return true;
  } catch {
    return false;
  }
}

// Mostly-valid fields with an occasional bad one, so both outcomes are common.
function pick<T>(valid: fc.Arbitrary<T>, ...bad: unknown[]): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: valid, weight: 9 }, { arbitrary: fc.constantFrom(...bad), weight: 1 });
}
const INF = '__1e400__';
const near = (base: number) => fc.integer({ min: base - 40, max: base + 40 });
const badTime = [NOW - 31, NOW + 31, 0, -1, INF, '123', null, true, [], {}];

const header = fc.record({
  alg: pick(fc.constant('ES256'), 'none', 'HS256', 'EdDSA', 'ES384', 'es256', undefined, 1),
  kid: pick(fc.constant('k1'), 'k2', '', undefined, 7),
  typ: pick(fc.constantFrom('at+jwt', 'application/at+jwt', 'AT+JWT'), 'JWT', 'jwt', undefined, 1, 'at+jwt '),
  crit: pick(fc.constant(undefined), ['exp'], []),
  b64: pick(fc.constant(undefined), false, true),
  jku: pick(fc.constant(undefined), 'http://127.0.0.1:1/'),
});

const payload = fc.record({
  iss: pick(fc.constant(ISSUER), `${ISSUER}/`, 'x', undefined, 1),
  aud: pick(fc.constantFrom(AUDIENCE, [AUDIENCE], ['x', AUDIENCE]), 'x', [], undefined, 1, [1, AUDIENCE]),
  sub: pick(fc.constant('u1'), '', undefined, 5),
  exp: pick(near(NOW + 100), ...badTime, undefined),
  iat: pick(near(NOW - 100), ...badTime, undefined, NOW + 29, NOW + 30),
  nbf: pick(fc.constant(undefined), ...badTime, NOW + 29, NOW + 30, NOW - 31),
  sid: pick(fc.constant('s1'), 9, undefined),
  scope: pick(fc.constant('a b'), '', 3),
});

const signature = pick(fc.constant('valid'), 'other-key', 'eddsa', 'zero', 'short', 'der-ish', 'empty');

function build(h: unknown, p: unknown, sig: unknown): string {
  const input = `${b64(JSON.stringify(h))}.${b64(JSON.stringify(p).replaceAll(`"${INF}"`, '1e400'))}`;
  const data = Buffer.from(input);
  switch (sig) {
    case 'valid':
      return `${input}.${b64(signBytes('ES256', key.privateKey, data))}`;
    case 'other-key':
      return `${input}.${b64(signBytes('ES256', other.privateKey, data))}`;
    case 'eddsa':
      return `${input}.${b64(signBytes('EdDSA', ed.privateKey, data))}`;
    case 'zero':
      return `${input}.${b64(Buffer.alloc(64))}`;
    case 'short':
      return `${input}.${b64(signBytes('ES256', key.privateKey, data).subarray(0, 63))}`;
    case 'der-ish':
      return `${input}.${b64(Buffer.concat([Buffer.from([0x30, 0x44]), signBytes('ES256', key.privateKey, data)]))}`;
    default:
      return `${input}.`;
  }
}

test('differential: whatever jose rejects, we reject', async (t) => {
  let bothAccept = 0;
  let stricter = 0;
  await fc.assert(
    fc.asyncProperty(header, payload, signature, async (h, p, sig) => {
      const token = build(h, p, sig);
      const j = await joseAccepts(token);
      const o = oursAccepts(token);
      if (!j) assert.equal(o, false, `jose rejects but we accept: ${token}`);
      if (j && o) bothAccept++;
      if (j && !o) stricter++;
    }),
    { numRuns: 600 },
  );
  assert.ok(bothAccept > 0, 'the generator produced some valid tokens');
  t.diagnostic(` ${bothAccept} accepted by both, ${stricter} refused only by us, of 600`);
});

test('differential: string mutations of a valid token', async () => {
  const h = { alg: 'ES256', kid: 'k1', typ: 'at+jwt' };
  const valid = build(h, { iss: ISSUER, aud: AUDIENCE, sub: 'u', exp: NOW + 60, iat: NOW }, 'valid');
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: valid.length - 1 }),
      fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }),
      async (i, ch) => {
        const token = valid.slice(0, i) + ch + valid.slice(i + 1);
        if (!(await joseAccepts(token))) assert.equal(oursAccepts(token), false, token);
      },
    ),
    { numRuns: 300 },
  );
});

test('differential: valid tokens are accepted by both with the same claims', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        sub: fc.string({ minLength: 1, maxLength: 40 }),
        sid: fc.uuid(),
        jti: fc.uuid(),
        scope: fc
          .array(fc.constantFrom('read', 'write', 'admin', 'openid'), { maxLength: 4 })
          .map((a) => a.join(' ')),
        roles: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
        iat: fc.integer({ min: NOW - 300, max: NOW + 29 }),
        ttl: fc.integer({ min: 31, max: 3600 }),
        aud: fc.constantFrom<string | string[]>(AUDIENCE, [AUDIENCE], ['api', AUDIENCE]),
        typ: fc.constantFrom('at+jwt', 'application/at+jwt'),
        extra: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
      }),
      async (c) => {
        const p = { ...c.extra, iss: ISSUER, aud: c.aud, sub: c.sub, sid: c.sid, jti: c.jti, scope: c.scope };
        const full = { ...p, roles: c.roles, iat: c.iat, exp: NOW + c.ttl };
        delete (full as Record<string, unknown>)['cnf'];
        const token = build({ alg: 'ES256', kid: 'k1', typ: c.typ }, full, 'valid');
        assert.equal(await joseAccepts(token), true);
        assert.deepEqual(ours.verifySync(token), JSON.parse(JSON.stringify(full)));
      },
    ),
    { numRuns: 200 },
  );
});
