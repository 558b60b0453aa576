// docs/security.md, "Access tokens" (what a verifier must reject): one test (or more) per line, asserting the code.
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { createVerifier, RevocationSet, VerifyError, type VerifyErrorCode } from '../src/index.js';
import { AUDIENCE, b64, claims, ISSUER, makeKey, now, signBytes, token } from './helpers.js';

const key = makeKey('ES256', 'main');
const revocations = new RevocationSet();
const verifier = createVerifier({
  issuer: ISSUER,
  audience: AUDIENCE,
  jwks: { keys: [key.jwk] },
  revocations,
  cache: { max: 100 },
});

function rejects(tok: string, code: VerifyErrorCode): void {
  assert.throws(
    () => verifier.verifySync(tok),
    (err: unknown) => err instanceof VerifyError && err.code === code,
    `expected ${code}`,
  );
}

function raw(header: unknown, payload: unknown, sig: string): string {
  return `${b64(header)}.${b64(payload)}.${sig}`;
}

const H = { alg: 'ES256', kid: 'main', typ: 'at+jwt' };

test('a valid token is accepted (control)', () => {
  assert.equal(verifier.verifySync(token(key)).sub, 'user-1');
});

describe('1. alg none', () => {
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    test(`${alg} without and with a signature`, () => {
      rejects(raw({ ...H, alg }, claims(), ''), 'unsupported_alg');
      rejects(raw({ ...H, alg }, claims(), b64('sig')), 'unsupported_alg');
    });
  }
});

describe('2. alg missing, not a string, not allowed', () => {
  const good = token(key).split('.')[2]!;
  test('missing', () => rejects(raw({ kid: 'main', typ: 'at+jwt' }, claims(), good), 'unsupported_alg'));
  for (const alg of [null, 1, ['ES256'], { alg: 'ES256' }, true]) {
    test(`alg ${JSON.stringify(alg)}`, () => rejects(raw({ ...H, alg }, claims(), good), 'unsupported_alg'));
  }
  for (const alg of ['ES384', 'ES512', 'RS256', 'PS256', 'EdDSA', 'HS256', 'es256', 'ES256 ']) {
    test(`alg ${alg}`, () => rejects(raw({ ...H, alg }, claims(), good), 'unsupported_alg'));
  }
  test('alg of the token differs from the alg of the key its kid names', () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['ES256', 'EdDSA'],
      jwks: { keys: [key.jwk] },
    });
    const ed = makeKey('EdDSA', 'main');
    assert.throws(
      () => v.verifySync(token(ed)),
      (e: unknown) => e instanceof VerifyError && e.code === 'unsupported_alg',
    );
  });
});

describe('3. HS256 signed with the public key (algorithm confusion)', () => {
  const spki = key.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  const rsa = makeKey('RS256', 'rsa');
  const encodings: Record<string, Buffer | string> = {
    'PEM SPKI': spki,
    'PEM SPKI without trailing newline': spki.trim(),
    'PEM with leading whitespace': `\n  ${spki}`,
    DER: key.publicKey.export({ format: 'der', type: 'spki' }),
    'JWK JSON': JSON.stringify(key.jwk),
    'PKCS#1 PEM (RSA key)': rsa.publicKey.export({ format: 'pem', type: 'pkcs1' }) as string,
  };
  for (const [name, secret] of Object.entries(encodings)) {
    test(name, () => {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const input = `${b64({ ...H, alg })}.${b64(claims())}`;
        rejects(
          `${input}.${b64(signBytes(alg, Buffer.from(secret), Buffer.from(input)))}`,
          'unsupported_alg',
        );
      }
    });
  }
  test('an RS256 verifier refuses HS256 signed with its PKCS#1 key', () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['RS256'],
      jwks: { keys: [rsa.jwk] },
    });
    const secret = rsa.publicKey.export({ format: 'pem', type: 'pkcs1' }) as string;
    const input = `${b64({ alg: 'HS256', kid: 'rsa', typ: 'at+jwt' })}.${b64(claims())}`;
    const tok = `${input}.${b64(signBytes('HS256', Buffer.from(secret), Buffer.from(input)))}`;
    assert.throws(
      () => v.verifySync(tok),
      (e: unknown) => e instanceof VerifyError && e.code === 'unsupported_alg',
    );
  });
  test('a verifier cannot even be built with HS* next to asymmetric keys', () => {
    assert.throws(
      () =>
        createVerifier({
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: ['ES256', 'HS256'],
          jwks: { keys: [key.jwk] },
        }),
      TypeError,
    );
    assert.throws(
      () =>
        createVerifier({
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: ['HS256'],
          jwks: { keys: [key.jwk] },
        }),
      TypeError,
    );
  });
});

describe('4. structure', () => {
  const [h, p, s] = token(key).split('.') as [string, string, string];
  test('empty signature', () => rejects(`${h}.${p}.`, 'invalid_signature'));
  test('missing segments', () => {
    rejects(`${h}.${p}`, 'token_malformed');
    rejects(h, 'token_malformed');
    rejects(`${h}..${s}`.replace('..', '.'), 'token_malformed');
  });
  test('extra segments', () => {
    rejects(`${h}.${p}.${s}.`, 'token_malformed');
    rejects(`${h}.${p}.${s}.${s}`, 'token_malformed');
    rejects(`${h}.${p}.${p}.${s}.${s}`, 'token_malformed');
  });
  test('empty header', () => rejects(`.${p}.${s}`, 'token_malformed'));
  test('empty payload', () => {
    const input = `${h}.`;
    rejects(`${input}.${b64(signBytes('ES256', key.privateKey, Buffer.from(input)))}`, 'token_malformed');
  });
  test('empty token', () => rejects('', 'token_missing'));
  test('not JSON, JSON but not an object', () => {
    for (const bad of ['not json', '[]', 'null', '"str"', '1', '{"alg":"ES256"']) {
      rejects(`${b64(bad)}.${p}.${s}`, 'token_malformed');
    }
    for (const bad of ['[]', 'null', '"x"', '42', 'nope']) {
      const input = `${h}.${b64(bad)}`;
      rejects(`${input}.${b64(signBytes('ES256', key.privateKey, Buffer.from(input)))}`, 'token_malformed');
    }
  });
  test('non-canonical or invalid base64url in any segment', () => {
    rejects(`${h}=.${p}.${s}`, 'token_malformed');
    rejects(`${h.replace(/./, '+')}.${p}.${s}`, 'token_malformed');
    rejects(`${h} .${p}.${s}`, 'token_malformed');
    rejects(`${h}.${p}.${s.slice(0, -1)}=`, 'invalid_signature');
    // Payload segment with a junk character, re-signed so only the encoding is wrong.
    for (const bad of [
      `${p}=`,
      `${p.slice(0, 10)}*${p.slice(11)}`,
      `${p.slice(0, 10)}\u0141${p.slice(11)}`,
    ]) {
      const input = `${h}.${bad}`;
      rejects(
        `${input}.${b64(signBytes('ES256', key.privateKey, Buffer.from(input, 'latin1')))}`,
        'token_malformed',
      );
    }
  });
  test('header bytes that are not UTF-8', () => {
    rejects(`${b64(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))}.${p}.${s}`, 'token_malformed');
  });
});

describe('5. header or payload changed, signature kept', () => {
  const [h, p, s] = token(key).split('.') as [string, string, string];
  test('payload changed', () => {
    rejects(`${h}.${b64(claims({ sub: 'admin' }))}.${s}`, 'invalid_signature');
  });
  test('header changed', () => {
    rejects(`${b64({ ...H, extra: 1 })}.${p}.${s}`, 'invalid_signature');
  });
  test('one bit of the signature flipped', () => {
    const sig = Buffer.from(s, 'base64url');
    sig[10]! ^= 1;
    rejects(`${h}.${p}.${b64(sig)}`, 'invalid_signature');
  });
});

describe('6. ECDSA signature edge cases', () => {
  const input = `${b64(H)}.${b64(claims())}`;
  const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
  const good = signBytes('ES256', key.privateKey, Buffer.from(input));
  const r = good.subarray(0, 32);
  const s = good.subarray(32);
  test('r = 0 and s = 0 (psychic signature)', () =>
    rejects(`${input}.${b64(Buffer.alloc(64))}`, 'invalid_signature'));
  test('r = 0 or s = 0 alone', () => {
    rejects(`${input}.${b64(Buffer.concat([Buffer.alloc(32), s]))}`, 'invalid_signature');
    rejects(`${input}.${b64(Buffer.concat([r, Buffer.alloc(32)]))}`, 'invalid_signature');
  });
  test('r or s equal to n, or above n', () => {
    rejects(`${input}.${b64(Buffer.concat([n, s]))}`, 'invalid_signature');
    rejects(`${input}.${b64(Buffer.concat([r, n]))}`, 'invalid_signature');
    rejects(`${input}.${b64(Buffer.concat([Buffer.alloc(32, 0xff), s]))}`, 'invalid_signature');
  });
  test('s + n (malleated beyond n) and r = n, s = n', () => {
    rejects(`${input}.${b64(Buffer.concat([n, n]))}`, 'invalid_signature');
  });
  test('DER-encoded signature', () => {
    const der = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'der' });
    rejects(`${input}.${b64(der)}`, 'invalid_signature');
  });
  test('not exactly 64 bytes', () => {
    for (const len of [0, 1, 32, 63, 65, 96, 128]) {
      const sig = Buffer.concat([good, good, good]).subarray(0, len);
      rejects(`${input}.${b64(sig)}`, 'invalid_signature');
    }
  });
  test('a valid signature from another P-256 key', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    rejects(`${input}.${b64(signBytes('ES256', other.privateKey, Buffer.from(input)))}`, 'invalid_signature');
  });
});

describe('7. embedded key headers are never used', () => {
  const attacker = makeKey('ES256', 'main');
  test('jwk, jku, x5u, x5c are refused even with a signature by the embedded key', () => {
    for (const extra of [
      { jwk: attacker.jwk },
      { jku: 'http://127.0.0.1:1/jwks.json' },
      { x5u: 'http://127.0.0.1:1/cert.pem' },
      { x5c: ['MIIB'] },
    ]) {
      rejects(token(attacker, claims(), extra), 'unsupported_header');
    }
  });
  test('a jku header on a token signed by the trusted key is refused too (never fetched)', () => {
    rejects(token(key, claims(), { jku: 'http://127.0.0.1:1/jwks.json' }), 'unsupported_header');
  });
  test('a token signed by an embedded jwk with no kid', () => {
    rejects(token(attacker, claims(), { kid: undefined, jwk: attacker.jwk }), 'unsupported_header');
  });
});

describe('8. kid that names no known key', () => {
  for (const kid of ['nope', '../../dev/null', "' OR 1=1 --", '/etc/passwd', 'main\u0000', 'MAIN', ' main']) {
    test(`kid ${JSON.stringify(kid)}`, () => rejects(token(key, claims(), { kid }), 'unknown_kid'));
  }
  test('missing kid', () => rejects(token(key, claims(), { kid: undefined }), 'unknown_kid'));
  test('very long kid', () => rejects(token(key, claims(), { kid: 'a'.repeat(300) }), 'token_malformed'));
  test('kid of the wrong type', () => {
    for (const kid of [1, null, ['main'], { id: 'main' }, ''])
      rejects(token(key, claims(), { kid }), 'token_malformed');
  });
});

describe('9. crit', () => {
  test('crit naming anything', () => {
    rejects(token(key, claims(), { crit: ['exp'] }), 'unsupported_header');
    rejects(token(key, claims(), { crit: ['b64'], b64: false }), 'unsupported_header');
    rejects(token(key, claims(), { crit: [] }), 'unsupported_header');
  });
});

describe('10. time claims', () => {
  const t = now();
  test('exp in the past beyond the skew', () =>
    rejects(token(key, claims({ exp: t - 31 })), 'token_expired'));
  test('exp missing or not a number', () => {
    rejects(token(key, claims({ exp: undefined })), 'invalid_claims');
    rejects(token(key, claims({ exp: `${t + 300}` })), 'invalid_claims');
    rejects(token(key, claims({ exp: null })), 'invalid_claims');
  });
  test('nbf in the future', () => rejects(token(key, claims({ nbf: t + 120 })), 'token_not_yet_valid'));
  test('nbf not a number', () => rejects(token(key, claims({ nbf: 'now' })), 'invalid_claims'));
  test('iat in the future', () => rejects(token(key, claims({ iat: t + 120 })), 'token_not_yet_valid'));
  test('iat missing', () => rejects(token(key, claims({ iat: undefined })), 'invalid_claims'));
  test('within the skew is accepted', () => {
    assert.equal(
      verifier.verifySync(token(key, claims({ exp: t - 5, iat: t + 5, nbf: t + 5 }))).sub,
      'user-1',
    );
  });
});

describe('11. issuer and audience', () => {
  test('wrong iss (exact compare)', () => {
    for (const iss of [`${ISSUER}/`, ISSUER.toUpperCase(), 'https://evil.test', '', undefined, [ISSUER], 1]) {
      rejects(token(key, claims({ iss })), 'invalid_issuer');
    }
  });
  test('aud missing or not matching', () => {
    for (const aud of [undefined, 'other', '', [], ['other'], [AUDIENCE, 1], 'Tessera', null]) {
      rejects(token(key, claims({ aud })), 'invalid_audience');
    }
  });
  test('an array containing the expected audience is fine', () => {
    assert.deepEqual(verifier.verifySync(token(key, claims({ aud: ['other', AUDIENCE] }))).aud, [
      'other',
      AUDIENCE,
    ]);
  });
});

describe('12. wrong token type', () => {
  for (const typ of [
    undefined,
    'JWT',
    'jwt',
    'id_token+jwt',
    'refresh+jwt',
    'dpop+jwt',
    'at+jwt ',
    1,
    null,
  ]) {
    test(`typ ${JSON.stringify(typ)}`, () => rejects(token(key, claims(), { typ }), 'invalid_type'));
  }
  test('application/at+jwt is the same media type and is accepted', () => {
    assert.equal(verifier.verifySync(token(key, claims(), { typ: 'application/at+jwt' })).sub, 'user-1');
  });
  test('an opaque refresh or session token', () => {
    rejects('rt_abc123.c2VjcmV0c2VjcmV0', 'token_malformed');
    rejects('abc.def', 'token_malformed');
  });
});

describe('13. oversized tokens and headers', () => {
  test('a token over maxTokenBytes is refused before decoding', () => {
    rejects(token(key, claims({ pad: 'x'.repeat(9000) })), 'token_too_large');
    rejects('x'.repeat(100_000), 'token_too_large');
  });
  test('a header over the header limit', () => {
    rejects(token(key, claims(), { pad: 'x'.repeat(2000) }), 'token_too_large');
  });
  test('maxTokenBytes is configurable', () => {
    const small = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { keys: [key.jwk] },
      maxTokenBytes: 300,
    });
    assert.throws(
      () => small.verifySync(token(key, claims({ pad: 'x'.repeat(200) }))),
      (e: unknown) => e instanceof VerifyError && e.code === 'token_too_large',
    );
  });
});

describe('14. revoked sid', () => {
  test('a revoked sid is refused although the signature is fine, cached or not', () => {
    const tok = token(key, claims({ sid: 'sess-revoked' }));
    verifier.verifySync(tok);
    assert.equal(verifier.verifySync(tok).sid, 'sess-revoked'); // seen twice: now cached
    revocations.add({ sid: 'sess-revoked', expires_at: now() + 600 });
    rejects(tok, 'token_revoked');
    rejects(token(key, claims({ sid: 'sess-revoked' })), 'token_revoked');
  });
  test('re-encodings of one token do not slip past (revocation is keyed on claims)', () => {
    const c = claims({ sid: 'sess-reenc' });
    const a = token(key, c);
    const b = token(key, b64(JSON.stringify(c, null, 2)));
    assert.notEqual(a, b);
    revocations.add({ sid: 'sess-reenc', expires_at: now() + 600 });
    rejects(a, 'token_revoked');
    rejects(b, 'token_revoked');
  });
  test('a revoked jti, and a user-wide not_before', () => {
    revocations.add({ jti: 'jti-bad', expires_at: now() + 600 });
    rejects(token(key, claims({ jti: 'jti-bad', sid: 's-x' })), 'token_revoked');
    revocations.add({ sub: 'user-nb', not_before: now() - 10, expires_at: now() + 600 });
    rejects(token(key, claims({ sub: 'user-nb', sid: 's-y', iat: now() - 20 })), 'token_revoked');
    assert.equal(verifier.verifySync(token(key, claims({ sub: 'user-nb', sid: 's-z' }))).sub, 'user-nb');
  });
});

test('RSA-PSS-padded signature is refused for RS256', () => {
  const rsa = makeKey('RS256', 'rsa');
  const v = createVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    algorithms: ['RS256'],
    jwks: { keys: [rsa.jwk] },
  });
  const input = `${b64({ alg: 'RS256', kid: 'rsa', typ: 'at+jwt' })}.${b64(claims())}`;
  const pss = sign('sha256', Buffer.from(input), {
    key: rsa.privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
  });
  assert.throws(
    () => v.verifySync(`${input}.${b64(pss)}`),
    (e: unknown) => e instanceof VerifyError,
  );
});
