import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { es256ScalarsInRange } from '../src/algorithms.js';
import { decodedLength, decodeStrictInto } from '../src/base64url.js';
import { createVerifier, isStrictBase64url, scopesOf, VerifyError } from '../src/index.js';
import { AUDIENCE, b64, claims, ISSUER, makeKey, now, signBytes, token } from './helpers.js';

const es = makeKey('ES256', 'es');
const ed = makeKey('EdDSA', 'ed');
const rs = makeKey('RS256', 'rs');

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof VerifyError) return e.code;
    throw e;
  }
  return undefined;
}

describe('verify checks signatures on the thread pool', () => {
  test('many tokens at once, good and forged, each gets its own verdict', async () => {
    // Tokens in flight share the verifier's scratch space between their checks: a mix-up would
    // pass a forgery or fail a good token.
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['ES256', 'EdDSA', 'RS256'],
      jwks: { keys: [es.jwk, ed.jwk, rs.jwk] },
      cache: false,
    });
    const cases = Array.from({ length: 300 }, (_, i) => {
      const key = [es, ed, rs][i % 3]!;
      const good = token(key, claims({ sub: `user-${i}` }));
      if (i % 4 !== 3) return { sub: `user-${i}`, jwt: good };
      // The same header and payload with another token's signature: a forgery that is well formed.
      const other = token(key, claims({ sub: `other-${i}` }));
      return {
        sub: null,
        jwt: `${good.slice(0, good.lastIndexOf('.'))}${other.slice(other.lastIndexOf('.'))}`,
      };
    });
    const verdicts = await Promise.allSettled(cases.map((c) => v.verify(c.jwt)));
    let accepted = 0;
    let refused = 0;
    verdicts.forEach((verdict, i) => {
      const c = cases[i]!;
      if (c.sub === null) {
        assert.equal(verdict.status, 'rejected', `forgery ${i} accepted`);
        assert.equal((verdict as PromiseRejectedResult).reason.code, 'invalid_signature');
        refused++;
      } else {
        assert.equal(
          verdict.status,
          'fulfilled',
          `token ${i}: ${String((verdict as PromiseRejectedResult).reason)}`,
        );
        assert.equal((verdict as PromiseFulfilledResult<{ sub: string }>).value.sub, c.sub);
        assert.equal(v.verifySync(c.jwt).sub, c.sub);
        accepted++;
      }
    });
    assert.equal(accepted, 225);
    assert.equal(refused, 75);
  });

  test('ES256 scalars out of range are refused before the pool, as on the calling thread', async () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [es.jwk] } });
    const good = token(es, claims());
    const zero = `${good.slice(0, good.lastIndexOf('.'))}.${b64(Buffer.alloc(64))}`;
    await assert.rejects(v.verify(zero), (e: VerifyError) => e.code === 'invalid_signature');
    assert.equal(
      code(() => v.verifySync(zero)),
      'invalid_signature',
    );
  });
});

describe('accepts', () => {
  test('ES256 by default, returning the claims', async () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [es.jwk] } });
    const c = claims({ roles: ['admin'] });
    assert.deepEqual(await v.verify(token(es, c)), c);
    assert.deepEqual(v.verifySync(token(es, c)), c);
  });
  test('EdDSA and RS256 only when configured', () => {
    const strict = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [es.jwk] } });
    assert.equal(
      code(() => strict.verifySync(token(ed))),
      'unsupported_alg',
    );
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['ES256', 'EdDSA', 'RS256'],
      jwks: { keys: [es.jwk, ed.jwk, rs.jwk] },
    });
    for (const k of [es, ed, rs]) assert.equal(v.verifySync(token(k)).sub, 'user-1');
  });
  test('HS256 with an explicit shared secret only', () => {
    const secret = randomBytes(32);
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret });
    const input = `${b64({ alg: 'HS256', typ: 'at+jwt' })}.${b64(claims())}`;
    assert.equal(
      v.verifySync(`${input}.${b64(signBytes('HS256', secret, Buffer.from(input)))}`).sub,
      'user-1',
    );
    const wrong = `${input}.${b64(signBytes('HS256', randomBytes(32), Buffer.from(input)))}`;
    assert.equal(
      code(() => v.verifySync(wrong)),
      'invalid_signature',
    );
    assert.throws(() =>
      createVerifier({ issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret: 'short' }),
    );
  });
  test('audience list, custom skew', () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: ['a', 'b'],
      clockSkewSeconds: 0,
      jwks: { keys: [es.jwk] },
    });
    assert.equal(v.verifySync(token(es, claims({ aud: 'b' }))).aud, 'b');
    assert.equal(
      code(() => v.verifySync(token(es, claims({ aud: 'b', exp: now() - 1 })))),
      'token_expired',
    );
  });
  test('scopesOf', () => {
    assert.deepEqual(scopesOf({ scope: 'a  b c' }), ['a', 'b', 'c']);
    assert.deepEqual(scopesOf({}), []);
  });
});

describe('construction mistakes are TypeErrors', () => {
  const base = { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [es.jwk] } };
  for (const [name, o] of Object.entries({
    'no issuer': { ...base, issuer: '' },
    'no audience': { ...base, audience: [] },
    'unknown alg': { ...base, algorithms: ['none'] },
    'empty algs': { ...base, algorithms: [] },
    'mixed HS and ES': { ...base, algorithms: ['ES256', 'HS256'] },
    'secret with ES': { ...base, secret: randomBytes(32) },
    'no keys': { issuer: ISSUER, audience: AUDIENCE },
    'huge skew': { ...base, clockSkewSeconds: 3600 },
    'bad max': { ...base, maxTokenBytes: 10 },
    'cache max 0': { ...base, cache: { max: 0 } },
    'cache max above 10M': { ...base, cache: { max: 10_000_001 } },
    'private key in keys': { ...base, jwks: { keys: [makeKey().privateKey.export({ format: 'jwk' })] } },
  })) {
    test(name, () => assert.throws(() => createVerifier(o as never), TypeError));
  }
});

describe('cache of verified tokens', () => {
  /** A verifier of `es` tokens with the cache on, at its default size unless `max` is given. */
  const cachedVerifier = (max?: number) =>
    createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: [es.jwk] },
      ...(max === undefined ? {} : { cache: { max } }),
    });
  test('hits skip the crypto but still check expiry and revocation', () => {
    let t = Date.now();
    const revoked = new Set<string>();
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: [es.jwk] },
      clock: () => t,
      revocations: { check: (c) => (revoked.has(c.sid as string) ? 'token_revoked' : null) },
    });
    const tok = token(es, claims({ exp: Math.floor(t / 1000) + 60 }));
    v.verifySync(tok);
    const cached = v.verifySync(tok);
    assert.equal(v.verifySync(tok), cached, 'same frozen object from the cache');
    assert.ok(Object.isFrozen(cached));
    revoked.add('sess-1');
    assert.equal(
      code(() => v.verifySync(tok)),
      'token_revoked',
    );
    revoked.clear();
    t += 100_000;
    assert.equal(
      code(() => v.verifySync(tok)),
      'token_expired',
    );
  });
  test('a token enters at its second verification', () => {
    const v = cachedVerifier();
    const tok = token(es);
    const first = v.verifySync(tok);
    assert.ok(Object.isFrozen(first), 'claims are frozen whether or not they are kept');
    const second = v.verifySync(tok);
    assert.notEqual(second, first, 'the first verification keeps nothing');
    assert.equal(v.verifySync(tok), second, 'the second one is kept');
    v.clearCache();
    const afterClear = v.verifySync(tok);
    assert.notEqual(afterClear, second, 'cleared');
    assert.notEqual(v.verifySync(tok), afterClear, 'and the first sighting forgotten with it');
  });
  /** The fingerprint's low 6 bits: every table (64 bits or more) tells tokens apart by them. */
  const low6 = (tok: string) => Buffer.from(tok.slice(tok.lastIndexOf('.') + 1), 'base64url')[3]! & 63;
  test('first sightings are forgotten after twice as many others as the cache holds', () => {
    const v = cachedVerifier(2);
    const tok = token(es);
    // Four others whose bits differ from tok's and from each other's: four first sightings.
    const taken = new Set([low6(tok)]);
    const others: string[] = [];
    while (others.length < 4) {
      const t = token(es);
      if (!taken.has(low6(t))) {
        taken.add(low6(t));
        others.push(t);
      }
    }
    v.verifySync(tok);
    for (const t of others) v.verifySync(t); // the fourth other clears the table
    const again = v.verifySync(tok); // a first sighting again: not kept
    assert.notEqual(v.verifySync(tok), again);
  });
  test('a working set the size of the cache is held from its second round on', () => {
    const v = cachedVerifier(300);
    const toks = Array.from({ length: 300 }, () => token(es));
    for (const t of toks) v.verifySync(t);
    const second = toks.map((t) => v.verifySync(t));
    for (const [i, t] of toks.entries()) assert.equal(v.verifySync(t), second[i], `token ${i} kept`);
  });
  test('bounded in size', () => {
    const v = cachedVerifier(3);
    const toks = Array.from({ length: 10 }, () => token(es));
    for (const tok of toks) v.verifySync(tok);
    for (const tok of toks) assert.equal(v.verifySync(tok).sub, 'user-1');
  });
  test('cache off', () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [es.jwk] }, cache: false });
    const tok = token(es);
    assert.notEqual(v.verifySync(tok), v.verifySync(tok));
  });
});

describe('confirmation (cnf) hook', () => {
  const tok = token(es, claims({ cnf: { jkt: 'thumb' } }));
  test('rejected by default', () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [es.jwk] } });
    assert.equal(
      code(() => v.verifySync(tok)),
      'unsupported_confirmation',
    );
  });
  test('a hook sees cnf', () => {
    const seen: unknown[] = [];
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: [es.jwk] },
      confirmation: (cnf) => seen.push(cnf),
    });
    v.verifySync(tok);
    assert.deepEqual(seen, [{ jkt: 'thumb' }]);
  });
});

test('strict base64url matches the canonical encoding exactly (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      const s = Buffer.from(bytes).toString('base64url');
      assert.ok(isStrictBase64url(s));
      if (s.length > 0) {
        // Any other string decoding to the same bytes is refused.
        for (const alt of [
          `${s}=`,
          `${s} `,
          `${s.slice(0, -1)}${String.fromCharCode(s.charCodeAt(s.length - 1) ^ 1)}`,
        ]) {
          if (alt !== s && Buffer.from(alt, 'base64url').equals(Buffer.from(bytes))) {
            assert.equal(isStrictBase64url(alt), false, alt);
          }
        }
      }
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), (s) => {
      if (isStrictBase64url(s)) assert.equal(Buffer.from(s, 'base64url').toString('base64url'), s);
    }),
  );
});

test('in-place base64url decoding accepts exactly what isStrictBase64url accepts (property)', () => {
  const out = new Uint8Array(64);
  const check = (s: string, pre = '', post = ''): void => {
    const text = `${pre}${s}${post}`;
    const n = decodeStrictInto(text, pre.length, pre.length + s.length, out);
    if (isStrictBase64url(s)) {
      assert.equal(n, decodedLength(s.length));
      assert.deepEqual(Buffer.from(out.subarray(0, n)), Buffer.from(s, 'base64url'));
    } else {
      assert.equal(n, -1, JSON.stringify(s));
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.string({ maxLength: 3 }), (bytes, junk) => {
      const s = Buffer.from(bytes).toString('base64url');
      check(s, junk, junk);
      for (let i = 0; i <= s.length; i++) check(`${s.slice(0, i)}${junk}${s.slice(i)}`, '.', '.');
      if (s.length > 0) check(`${s.slice(0, -1)}${String.fromCharCode(s.charCodeAt(s.length - 1) ^ 1)}`);
    }),
  );
  fc.assert(fc.property(fc.string({ maxLength: 20, unit: 'binary' }), (s) => check(s, 'x', 'y')));
  for (const s of ['=', 'AA==', 'AA=', '+/+/', 'A', 'AAAAA', 'AB', 'AAB', 'AA\u0141A', '\u0100AAA']) check(s);
});

test('ES256 r and s are range-checked against the P-256 order exactly (property)', () => {
  const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const bytes = (x: bigint): Buffer => Buffer.from(x.toString(16).padStart(64, '0'), 'hex');
  const ok = (x: bigint): boolean => x >= 1n && x < n;
  const edge = [0n, 1n, 2n, n - 2n, n - 1n, n, n + 1n, 2n ** 256n - 1n, n >> 1n, (n >> 8n) << 8n];
  for (const r of edge) {
    for (const s of edge) {
      assert.equal(es256ScalarsInRange(Buffer.concat([bytes(r), bytes(s)])), ok(r) && ok(s), `${r} ${s}`);
    }
  }
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
      fc.bigInt({ min: n - 300n, max: n + 300n }),
      (a, b) => {
        assert.equal(es256ScalarsInRange(Buffer.concat([bytes(a), bytes(b)])), ok(a) && ok(b));
        assert.equal(es256ScalarsInRange(Buffer.concat([bytes(b), bytes(a)])), ok(a) && ok(b));
      },
    ),
  );
  assert.equal(es256ScalarsInRange(bytes(1n)), false, 'not 64 bytes');
});
