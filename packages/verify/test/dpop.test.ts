// DPoP proofs (RFC 9449) on the resource-server side: every refusal asserts its code and reason.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { calculateJwkThumbprint, type JWK } from 'jose';
import {
  accessTokenHash,
  createDpopChecker,
  createVerifier,
  type DpopExpectation,
  type DpopFailureReason,
  type DpopProof,
  dpopConfirmation,
  jwkThumbprint,
  MemoryReplayStore,
  normalizeHtu,
  rememberProof,
  requestHtu,
  singleProof,
  VerifyError,
  type VerifyErrorCode,
  verifyDpopProof,
  verifyTokenRequestProof,
} from '../src/index.js';
import { b64, signBytes } from './helpers.js';

const URL_ = 'https://api.example.test/api/hello';
const PUBLIC = 'https://api.example.test';
const TOKEN = 'header.payload.signature-of-some-access-token';
const NOW = 1_800_000_000_000;

interface ProofKey {
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function proofKey(): ProofKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown> };
}

const key = proofKey();

interface ProofOptions {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** Claims or header members to leave out. */
  omit?: string[];
  signer?: (input: Buffer) => Buffer;
  k?: ProofKey;
}

function proof(o: ProofOptions = {}): string {
  const k = o.k ?? key;
  const header: Record<string, unknown> = { typ: 'dpop+jwt', alg: 'ES256', jwk: k.jwk, ...o.header };
  const claims: Record<string, unknown> = {
    htm: 'GET',
    htu: URL_,
    iat: Math.floor(NOW / 1000),
    jti: randomUUID(),
    ath: accessTokenHash(TOKEN),
    ...o.claims,
  };
  for (const m of o.omit ?? []) {
    delete header[m];
    delete claims[m];
  }
  const input = `${b64(header)}.${b64(claims)}`;
  const sig = o.signer
    ? o.signer(Buffer.from(input))
    : sign('sha256', Buffer.from(input), { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64(sig)}`;
}

const expect: DpopExpectation = { method: 'GET', url: URL_, accessToken: TOKEN, nowMs: NOW };

function refused(fn: () => unknown, code: VerifyErrorCode, reason?: DpopFailureReason): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VerifyError, String(e));
    assert.equal(e.code, code);
    if (reason !== undefined) assert.equal(e.reason, reason);
    return true;
  });
}

const proofRefused = (p: string, reason: DpopFailureReason, e: Partial<DpopExpectation> = {}) =>
  refused(() => verifyDpopProof(p, { ...expect, ...e }), 'dpop_proof_invalid', reason);

describe('verifyDpopProof', () => {
  test('a valid proof passes and yields the RFC 7638 thumbprint of its key', async () => {
    const out = verifyDpopProof(proof({ claims: { jti: 'jti-0000001' } }), expect);
    assert.equal(out.jkt, await calculateJwkThumbprint(key.jwk as JWK));
    assert.equal(out.jkt, jwkThumbprint(key.jwk as { x: string; y: string }));
    assert.equal(out.jti, 'jti-0000001');
  });

  test('size and shape are checked before any decoding', () => {
    proofRefused(`${'A'.repeat(4096)}.`, 'too_large');
    proofRefused('', 'missing');
    const [h, p, s] = proof().split('.') as [string, string, string];
    proofRefused(`${h}.${p}`, 'malformed');
    proofRefused(`${h}.${p}.${s}.${s}`, 'malformed');
    proofRefused(`${h}=.${p}.${s}`, 'malformed');
    proofRefused(`${h}.${p}=.${s}`, 'signature'); // the signature covers the payload bytes as sent
    proofRefused(`.${p}.${s}`, 'malformed');
    proofRefused(`${b64('not json')}.${p}.${s}`, 'malformed');
    proofRefused(`${b64([1, 2])}.${p}.${s}`, 'malformed');
  });

  test('typ must be exactly dpop+jwt', () => {
    for (const typ of [undefined, 'jwt', 'at+jwt', 'DPOP+JWT', 'application/dpop+jwt', 1]) {
      proofRefused(proof({ header: { typ } }), 'typ');
    }
  });

  test('alg must be ES256: none, HS256, RS256 and friends are refused', () => {
    const hsInput = (input: Buffer) => signBytes('HS256', JSON.stringify(key.jwk), input);
    proofRefused(proof({ header: { alg: 'HS256' }, signer: hsInput }), 'alg');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaJwk = rsa.publicKey.export({ format: 'jwk' });
    proofRefused(
      proof({ header: { alg: 'RS256', jwk: rsaJwk }, signer: (i) => sign('sha256', i, rsa.privateKey) }),
      'alg',
    );
    for (const alg of ['none', 'None', 'NONE', 'ES384', 'es256', 'EdDSA', '', null, ['ES256']]) {
      proofRefused(proof({ header: { alg } }), 'alg');
    }
    proofRefused(proof({ omit: ['alg'] }), 'alg');
    const [h, p] = proof({ header: { alg: 'none' } }).split('.') as [string, string];
    proofRefused(`${h}.${p}.`, 'alg');
  });

  test('crit is refused', () => {
    proofRefused(proof({ header: { crit: ['exp'], exp: 1 } }), 'crit');
    proofRefused(proof({ header: { crit: [] } }), 'crit');
  });

  test('jwk must be a public P-256 key', () => {
    const full = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateJwk = full.privateKey.export({ format: 'jwk' });
    const signer = (i: Buffer) => sign('sha256', i, { key: full.privateKey, dsaEncoding: 'ieee-p1363' });
    proofRefused(proof({ header: { jwk: privateJwk }, signer }), 'jwk');
    proofRefused(proof({ omit: ['jwk'] }), 'jwk');
    proofRefused(proof({ header: { jwk: 'key' } }), 'jwk');
    proofRefused(proof({ header: { jwk: { ...key.jwk, kty: 'RSA' } } }), 'jwk');
    proofRefused(proof({ header: { jwk: { ...key.jwk, crv: 'P-384' } } }), 'jwk');
    proofRefused(proof({ header: { jwk: { ...key.jwk, x: `${key.jwk['x']}AA` } } }), 'jwk');
    proofRefused(proof({ header: { jwk: { ...key.jwk, k: 'c2VjcmV0' } } }), 'jwk');
    const ed = generateKeyPairSync('ed25519');
    proofRefused(proof({ header: { jwk: ed.publicKey.export({ format: 'jwk' }) } }), 'jwk');
    // A point that is not on the curve.
    proofRefused(proof({ header: { jwk: { ...key.jwk, y: key.jwk['x'] } } }), 'jwk');
    // Extra public members are ignored (only kty/crv/x/y are used), and do not change the jkt.
    const extra = verifyDpopProof(proof({ header: { jwk: { ...key.jwk, kid: 'k', alg: 'ES256' } } }), expect);
    assert.equal(extra.jkt, jwkThumbprint(key.jwk as { x: string; y: string }));
  });

  test('the signature must be a 64-byte ES256 signature by the embedded key', () => {
    const other = proofKey();
    const byOther = (i: Buffer) => sign('sha256', i, { key: other.privateKey, dsaEncoding: 'ieee-p1363' });
    proofRefused(proof({ signer: byOther }), 'signature');
    proofRefused(proof({ signer: (i) => sign('sha256', i, key.privateKey) }), 'signature'); // DER
    proofRefused(proof({ signer: () => Buffer.alloc(64) }), 'signature'); // r = s = 0
    const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
    proofRefused(proof({ signer: () => Buffer.concat([n, n]) }), 'signature');
    const good = proof();
    const [h, p, s] = good.split('.') as [string, string, string];
    proofRefused(`${h}.${p}.${s.slice(0, -2)}`, 'signature');
    proofRefused(`${h}.${p}.${s}AA`, 'signature');
    proofRefused(`${h}.${p}.`, 'signature');
    // Claims changed, old signature kept.
    const forged = b64({
      htm: 'POST',
      htu: URL_,
      iat: NOW / 1000,
      jti: randomUUID(),
      ath: accessTokenHash(TOKEN),
    });
    proofRefused(`${h}.${forged}.${s}`, 'signature');
    // The key swapped for another one in the header, old signature kept.
    const [h2] = proof({ k: other }).split('.') as [string];
    proofRefused(`${h2}.${p}.${s}`, 'signature');
  });

  test('htm must equal the request method', () => {
    proofRefused(proof({ claims: { htm: 'POST' } }), 'htm');
    proofRefused(proof({ claims: { htm: 'get' } }), 'htm');
    proofRefused(proof({ omit: ['htm'] }), 'htm');
    proofRefused(proof(), 'htm', { method: 'DELETE' });
  });

  test('htu must equal the request URL, normalised, without query and fragment', () => {
    for (const htu of [
      'https://api.example.test/api/hello?x=1',
      'https://api.example.test/api/hello#frag',
      'HTTPS://API.EXAMPLE.TEST/api/hello',
      'https://api.example.test:443/api/hello',
      'https://api.example.test/api/./hello',
    ]) {
      assert.ok(verifyDpopProof(proof({ claims: { htu } }), expect), htu);
    }
    for (const htu of [
      'https://api.example.test/api/other',
      'https://api.example.test/api/hello/',
      'https://api.example.test/API/hello',
      'http://api.example.test/api/hello',
      'https://api.example.test:8443/api/hello',
      'https://evil.example.test/api/hello',
      'https://user@api.example.test/api/hello',
      '/api/hello',
      'ftp://api.example.test/api/hello',
      '',
      42,
    ]) {
      proofRefused(proof({ claims: { htu } }), 'htu');
    }
    proofRefused(proof({ omit: ['htu'] }), 'htu');
    proofRefused(proof(), 'htu', { url: 'https://api.example.test/api/other' });
  });

  test('iat within 300 s in the past and 60 s in the future', () => {
    const t = NOW / 1000;
    assert.ok(verifyDpopProof(proof({ claims: { iat: t - 299 } }), expect));
    assert.ok(verifyDpopProof(proof({ claims: { iat: t + 59 } }), expect));
    proofRefused(proof({ claims: { iat: t - 301 } }), 'iat');
    proofRefused(proof({ claims: { iat: t + 61 } }), 'iat');
    proofRefused(proof({ claims: { iat: String(t) } }), 'iat');
    proofRefused(proof({ claims: { iat: null } }), 'iat');
    proofRefused(proof({ omit: ['iat'] }), 'iat');
    proofRefused(proof({ claims: { iat: t - 20 } }), 'iat', { maxAgeSeconds: 10 });
  });

  test('jti must be a string', () => {
    proofRefused(proof({ omit: ['jti'] }), 'jti');
    proofRefused(proof({ claims: { jti: 12345678 } }), 'jti');
    proofRefused(proof({ claims: { jti: 'short' } }), 'jti');
    proofRefused(proof({ claims: { jti: 'x'.repeat(257) } }), 'jti');
  });

  test('ath must be the hash of the access token sent with it', () => {
    proofRefused(proof({ omit: ['ath'] }), 'ath');
    proofRefused(proof({ claims: { ath: accessTokenHash('another-token') } }), 'ath');
    proofRefused(proof(), 'ath', { accessToken: `${TOKEN}x` });
    const hex = createHash('sha256').update(TOKEN).digest('hex');
    proofRefused(proof({ claims: { ath: hex } }), 'ath');
  });
});

describe('verifyTokenRequestProof (token endpoints: no access token yet)', () => {
  const TOKEN_URL = 'https://auth.example.test/oauth/token';
  const at = { method: 'POST', url: TOKEN_URL, nowMs: NOW };
  const tokenProof = (o: ProofOptions = {}) =>
    proof({ ...o, claims: { htm: 'POST', htu: TOKEN_URL, ...o.claims }, omit: ['ath', ...(o.omit ?? [])] });

  test('a proof without ath passes and yields its key thumbprint', () => {
    const out = verifyTokenRequestProof(tokenProof({ claims: { jti: 'jti-token-01' } }), at);
    assert.equal(out.jkt, jwkThumbprint(key.jwk as { x: string; y: string }));
    assert.equal(out.jti, 'jti-token-01');
  });

  test('every other check of verifyDpopProof still applies', () => {
    const no = (p: string, reason: DpopFailureReason, e: Partial<typeof at> = {}) =>
      refused(() => verifyTokenRequestProof(p, { ...at, ...e }), 'dpop_proof_invalid', reason);
    no('', 'missing');
    no(tokenProof({ header: { typ: 'JWT' } }), 'typ');
    no(tokenProof({ header: { alg: 'HS256' } }), 'alg');
    no(tokenProof({ header: { crit: ['exp'] } }), 'crit');
    no(tokenProof({ header: { jwk: { ...key.jwk, d: 'x' } } }), 'jwk');
    no(tokenProof({ k: proofKey(), header: { jwk: key.jwk } }), 'signature');
    no(tokenProof({ claims: { htm: 'GET' } }), 'htm');
    no(tokenProof({ claims: { htu: 'https://evil.example/oauth/token' } }), 'htu');
    no(tokenProof({ claims: { iat: NOW / 1000 - 301 } }), 'iat');
    no(tokenProof({ claims: { jti: 'short' } }), 'jti');
  });

  test('verifyDpopProof still demands an access token', () => {
    assert.throws(
      () => verifyDpopProof(tokenProof(), { ...at } as unknown as DpopExpectation),
      (e: unknown) => e instanceof TypeError,
    );
  });
});

describe('rememberProof: replay through any DpopReplayStore', () => {
  test('once per key and jti, for the whole iat window; a store that cannot answer fails closed', async () => {
    const store = new MemoryReplayStore();
    const checked: DpopProof = { jkt: 'k'.repeat(43), jti: 'jti-replay-1', iat: NOW / 1000 };
    await rememberProof(store, checked, NOW);
    await assert.rejects(rememberProof(store, checked, NOW + 360_000), (e: unknown) => {
      return e instanceof VerifyError && e.code === 'dpop_replayed';
    });
    await rememberProof(store, checked, NOW + 361_000);
    await rememberProof(store, { ...checked, jkt: 'j'.repeat(43) }, NOW);
    const cause = new Error('store down');
    await assert.rejects(
      rememberProof({ remember: async () => Promise.reject(cause) }, checked, NOW),
      (e: unknown) => e instanceof VerifyError && e.code === 'dpop_replay_unavailable' && e.cause === cause,
    );
    const seen: number[] = [];
    await rememberProof(
      {
        remember: (_id, expiresAt) => {
          seen.push(expiresAt);
          return true;
        },
      },
      checked,
      NOW,
      { maxAgeSeconds: 10, maxSkewSeconds: 5 },
    );
    assert.deepEqual(seen, [NOW + 16_000]);
  });
});

describe('singleProof: exactly one DPoP header, size-limited', () => {
  test('one value passes', () => {
    assert.equal(singleProof('a.b.c'), 'a.b.c');
    assert.equal(singleProof(['a.b.c']), 'a.b.c');
  });
  test('missing, repeated and oversized headers are refused', () => {
    refused(() => singleProof(undefined), 'dpop_proof_invalid', 'missing');
    refused(() => singleProof(''), 'dpop_proof_invalid', 'missing');
    refused(() => singleProof([]), 'dpop_proof_invalid', 'missing');
    refused(() => singleProof(['a.b.c', 'a.b.c']), 'dpop_proof_invalid', 'multiple');
    refused(() => singleProof('a.b.c, a.b.c'), 'dpop_proof_invalid', 'multiple');
    refused(() => singleProof('a.b.c,'), 'dpop_proof_invalid', 'multiple');
    refused(() => singleProof('x'.repeat(4097)), 'dpop_proof_invalid', 'too_large');
    refused(() => singleProof(['x'.repeat(4097)]), 'dpop_proof_invalid', 'too_large');
    assert.equal(singleProof('x'.repeat(4096)).length, 4096);
  });
});

describe('htu helpers', () => {
  test('normalizeHtu', () => {
    assert.equal(normalizeHtu('HTTP://Example.COM:80/a?b#c'), 'http://example.com/a');
    assert.equal(normalizeHtu('https://example.com'), 'https://example.com/');
    assert.equal(normalizeHtu('javascript:alert(1)'), undefined);
    assert.equal(normalizeHtu('not a url'), undefined);
  });
  test('requestHtu joins the public base URL and the request path, never another authority', () => {
    assert.equal(requestHtu('https://api.example.test', '/api/hello?x=1'), URL_);
    assert.equal(requestHtu('https://api.example.test/', '/api/hello'), URL_);
    assert.equal(requestHtu('https://example.test/svc/', '/api/hello'), 'https://example.test/svc/api/hello');
    assert.equal(
      requestHtu('https://api.example.test', '//evil.example/x'),
      'https://api.example.test//evil.example/x',
    );
    assert.equal(requestHtu('https://api.example.test', 'http://evil.example/api/hello?q'), URL_);
    assert.equal(requestHtu('not a url', '/x'), undefined);
  });
});

describe('createDpopChecker: binding and replay', () => {
  const jkt = jwkThumbprint(key.jwk as { x: string; y: string });
  const claims = (cnf?: Record<string, unknown>) => ({
    iss: 'i',
    sub: 's',
    aud: 'a',
    exp: NOW / 1000 + 60,
    iat: NOW / 1000,
    ...(cnf ? { cnf } : {}),
  });
  const request = (p: string | string[] | undefined, o: Record<string, unknown> = {}) => ({
    method: 'GET',
    url: '/api/hello?x=1',
    proof: p,
    accessToken: TOKEN,
    ...o,
  });
  async function refusedAsync(p: Promise<unknown>, code: VerifyErrorCode) {
    await assert.rejects(p, (e: unknown) => e instanceof VerifyError && e.code === code);
  }

  test('a valid proof for a bound token passes once; the replay is refused', async () => {
    const checker = createDpopChecker({ publicUrl: PUBLIC, clock: () => NOW });
    const p = proof();
    const first = checker.checkProof(request(p));
    await checker.confirm(first, claims({ jkt }));
    const again = checker.checkProof(request(p));
    await refusedAsync(checker.confirm(again, claims({ jkt })), 'dpop_replayed');
    // A new proof (new jti) from the same key is fine.
    await checker.confirm(checker.checkProof(request(proof())), claims({ jkt }));
  });

  test('a proof by a key other than the bound one: dpop_binding_mismatch', async () => {
    const checker = createDpopChecker({ publicUrl: PUBLIC, clock: () => NOW });
    const other = proofKey();
    const checked = checker.checkProof(request(proof({ k: other })));
    await refusedAsync(checker.confirm(checked, claims({ jkt })), 'dpop_binding_mismatch');
    await refusedAsync(
      checker.confirm(checked, claims({ jkt: `${jkt.slice(1)}A` })),
      'dpop_binding_mismatch',
    );
  });

  test('a token without cnf.jkt: dpop_token_unbound', async () => {
    const checker = createDpopChecker({ publicUrl: PUBLIC, clock: () => NOW });
    const checked = checker.checkProof(request(proof()));
    await refusedAsync(checker.confirm(checked, claims()), 'dpop_token_unbound');
    await refusedAsync(checker.confirm(checked, claims({ 'x5t#S256': 'abc' })), 'dpop_token_unbound');
    await refusedAsync(checker.confirm(checked, claims({ jkt: 7 })), 'dpop_token_unbound');
  });

  test('publicUrl is required and is the only source of the expected htu', () => {
    const checker = createDpopChecker({ publicUrl: PUBLIC, clock: () => NOW });
    assert.ok(checker.checkProof(request(proof())));
    // An absolute-form target names another host: only its path counts.
    assert.ok(checker.checkProof(request(proof(), { url: 'http://10.0.0.7:8080/api/hello?x=1' })));
    const elsewhere = createDpopChecker({ publicUrl: 'https://other-api.example.test', clock: () => NOW });
    refused(() => elsewhere.checkProof(request(proof())), 'dpop_proof_invalid', 'htu');
    for (const publicUrl of [undefined, '', '/relative', 'ftp://api.example.test']) {
      assert.throws(
        () => createDpopChecker({ publicUrl } as unknown as Parameters<typeof createDpopChecker>[0]),
        TypeError,
        String(publicUrl),
      );
    }
    assert.throws(() => (createDpopChecker as (o?: unknown) => unknown)(), TypeError);
  });

  test('configurable iat window', () => {
    const checker = createDpopChecker({
      publicUrl: PUBLIC,
      clock: () => NOW,
      maxAgeSeconds: 10,
      maxSkewSeconds: 0,
    });
    refused(
      () => checker.checkProof(request(proof({ claims: { iat: NOW / 1000 - 11 } }))),
      'dpop_proof_invalid',
      'iat',
    );
    refused(
      () => checker.checkProof(request(proof({ claims: { iat: NOW / 1000 + 1 } }))),
      'dpop_proof_invalid',
      'iat',
    );
    assert.ok(checker.checkProof(request(proof({ claims: { iat: NOW / 1000 - 9 } }))));
  });

  test('oversized and repeated DPoP headers are refused before decoding', () => {
    const checker = createDpopChecker({ publicUrl: PUBLIC, clock: () => NOW, maxProofBytes: 1024 });
    refused(() => checker.checkProof(request(proof().padEnd(1025, 'A'))), 'dpop_proof_invalid', 'too_large');
    refused(() => checker.checkProof(request([proof(), proof()])), 'dpop_proof_invalid', 'multiple');
    refused(() => checker.checkProof(request(undefined)), 'dpop_proof_invalid', 'missing');
  });

  test('a replay store that cannot answer fails closed (503 code)', async () => {
    const checker = createDpopChecker({
      publicUrl: PUBLIC,
      clock: () => NOW,
      replay: {
        remember() {
          throw new Error('redis down');
        },
      },
    });
    const checked = checker.checkProof(request(proof()));
    await refusedAsync(checker.confirm(checked, claims({ jkt })), 'dpop_replay_unavailable');
    const async = createDpopChecker({
      publicUrl: PUBLIC,
      clock: () => NOW,
      replay: { remember: async () => false },
    });
    await refusedAsync(async.confirm(checked, claims({ jkt })), 'dpop_replayed');
  });
});

describe('MemoryReplayStore', () => {
  test('remembers ids until they expire, bounded, and refuses to forget early', () => {
    const store = new MemoryReplayStore({ max: 2 });
    assert.equal(store.remember('a', 1000, 0), true);
    assert.equal(store.remember('a', 1000, 1), false);
    assert.equal(store.remember('b', 1001, 2), true);
    assert.throws(() => store.remember('c', 1002, 3), /full/);
    assert.equal(store.remember('a', 2000, 999), false);
    // Once "a" has expired it is dropped, which makes room.
    assert.equal(store.remember('c', 2002, 1000), true);
    assert.equal(store.size, 2);
    assert.throws(() => store.remember('a', 2003, 1000), /full/);
    assert.equal(store.remember('a', 2003, 1001), true); // "b" expired at 1001
  });

  test('through a checker: the id outlives every iat that could still pass', async () => {
    let now = NOW;
    const store = new MemoryReplayStore();
    const checker = createDpopChecker({ publicUrl: PUBLIC, clock: () => now, replay: store });
    const jkt = jwkThumbprint(key.jwk as { x: string; y: string });
    const p = proof({ claims: { iat: NOW / 1000 + 60 } });
    const req = {
      method: 'GET',
      url: '/api/hello',
      origin: 'https://api.example.test',
      proof: p,
      accessToken: TOKEN,
    };
    const bound = { iss: 'i', sub: 's', aud: 'a', exp: 0, iat: 0, cnf: { jkt } };
    await checker.confirm(checker.checkProof(req), bound);
    now = NOW + 359_000; // iat + 299 s: the proof itself is still acceptable
    const late: DpopProof = checker.checkProof(req);
    await assert.rejects(
      checker.confirm(late, bound),
      (e: unknown) => (e as VerifyError).code === 'dpop_replayed',
    );
  });
});

describe('dpopConfirmation (verifier policy)', () => {
  test('lets through exactly { jkt } with a well-formed thumbprint', () => {
    const jkt = jwkThumbprint(key.jwk as { x: string; y: string });
    const claims = { iss: 'i', sub: 's', aud: 'a', exp: 0, iat: 0 };
    assert.doesNotThrow(() => dpopConfirmation({ jkt }, claims));
    for (const cnf of [{ jkt: 'abc' }, { jkt, 'x5t#S256': 'x' }, { 'x5t#S256': 'x' }, {}, { jkt: 1 }]) {
      refused(() => dpopConfirmation(cnf, claims), 'unsupported_confirmation');
    }
  });
  test('createVerifier accepts the policy', () => {
    assert.ok(
      createVerifier({
        issuer: 'https://i',
        audience: 'a',
        jwks: { keys: [] },
        confirmation: dpopConfirmation,
      }),
    );
  });
});
