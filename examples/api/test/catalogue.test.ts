// A catalogue of crafted tokens thrown at the example API server over HTTP: every one must be
// refused with 401 (and a WWW-Authenticate challenge), valid tokens must pass, nothing crashes.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { freePort } from '../../../packages/server/test/helpers.js';
import {
  b64,
  claims as baseClaims,
  makeKey,
  now,
  signBytes,
  token,
} from '../../../packages/verify/test/helpers.js';
import { type JwksServer, startJwksServer } from '../../../packages/verify/test/jwks-server.js';
import { type ApiServer, startApiServer } from '../server.js';

const key = makeKey('ES256', 'current');
const next = makeKey('ES256', 'next');
let issuer: JwksServer;
let api: ApiServer;
let ISS = '';

// First-party access tokens, as the account server issues them (scope `api`).
const claims = (o: Record<string, unknown> = {}) => baseClaims({ iss: ISS, scope: 'api', ...o });
const good = (o: Record<string, unknown> = {}, h: Record<string, unknown> = {}) => token(key, claims(o), h);

before(async () => {
  issuer = await startJwksServer([key.jwk]);
  ISS = issuer.origin;
  const port = await freePort();
  api = await startApiServer({
    issuer: ISS,
    port,
    publicUrl: `http://127.0.0.1:${port}`,
    corsOrigins: ['http://app.example.test'],
  });
});
after(async () => {
  await api.close();
  await issuer.close();
});

async function hello(authorization?: string, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { ...extra };
  if (authorization !== undefined) headers['authorization'] = authorization;
  const res = await fetch(`${api.url}/api/hello`, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

function catalogue(): [string, string][] {
  const H = { alg: 'ES256', kid: 'current', typ: 'at+jwt' };
  const raw = (h: unknown, p: unknown, s: string) => `${b64(h)}.${b64(p)}.${s}`;
  const signed = (
    h: unknown,
    p: unknown,
    alg = 'ES256',
    k: Parameters<typeof signBytes>[1] = key.privateKey,
  ) => {
    const input = `${b64(h)}.${typeof p === 'string' ? p : b64(p)}`;
    return `${input}.${b64(signBytes(alg, k, Buffer.from(input, 'latin1')))}`;
  };
  const [h, p, s] = good().split('.') as [string, string, string];
  const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
  const sig = Buffer.from(s, 'base64url');
  const pem = key.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const list: [string, string][] = [];
  const add = (name: string, t: string) => list.push([name, t]);

  for (const alg of ['none', 'None', 'NONE', 'nonE']) {
    add(`alg ${alg} unsigned`, raw({ ...H, alg }, claims(), ''));
    add(`alg ${alg} with signature`, raw({ ...H, alg }, claims(), s));
  }
  add('alg missing', signed({ kid: 'current', typ: 'at+jwt' }, claims()));
  for (const alg of [null, 0, true, [], {}, ['ES256']])
    add(`alg ${JSON.stringify(alg)}`, raw({ ...H, alg }, claims(), s));
  for (const alg of ['ES384', 'ES512', 'RS256', 'PS256', 'EdDSA', 'HS256', 'es256', 'ES256\u0000'])
    add(`alg ${alg}`, raw({ ...H, alg }, claims(), s));
  for (const [name, secret] of [
    ['PEM', pem],
    ['PEM trimmed', pem.trim()],
    ['PEM leading whitespace', `  \n${pem}`],
    ['DER', key.publicKey.export({ format: 'der', type: 'spki' })],
    ['JWK JSON', JSON.stringify(key.jwk)],
    ['PKCS#1 PEM', rsa.publicKey.export({ format: 'pem', type: 'pkcs1' })],
  ] as const) {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      add(`${alg} keyed with ${name}`, signed({ ...H, alg }, claims(), alg, Buffer.from(secret)));
    }
  }
  add('empty signature', `${h}.${p}.`);
  add('two segments', `${h}.${p}`);
  add('one segment', h);
  add('four segments', `${h}.${p}.${s}.${s}`);
  add('trailing dot', `${h}.${p}.${s}.`);
  add('empty header', `.${p}.${s}`);
  add('empty payload', signed(H, ''));
  add('only dots', '..');
  add('header not JSON', `${b64('nope')}.${p}.${s}`);
  add('header JSON array', `${b64('[]')}.${p}.${s}`);
  add('header JSON null', `${b64('null')}.${p}.${s}`);
  add('payload not JSON', signed(H, b64('nope')));
  add('payload JSON array', signed(H, b64('[1]')));
  add('payload JSON string', signed(H, b64('"x"')));
  add('header padded base64', `${h}==.${p}.${s}`);
  add('header standard base64 chars', `${h.slice(0, 5)}+/${h.slice(7)}.${p}.${s}`);
  add('payload with non-canonical last char', signed(H, `${p.slice(0, -1)}${p.endsWith('A') ? 'B' : 'A'}`));
  add('payload with a latin1 char', signed(H, `${p.slice(0, 4)}\u00e9${p.slice(5)}`));
  add('header invalid UTF-8', `${b64(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))}.${p}.${s}`);
  add('payload changed, old signature', `${h}.${b64(claims({ sub: 'admin' }))}.${s}`);
  add('header changed, old signature', `${b64({ ...H, x: 1 })}.${p}.${s}`);
  add('signature bit flipped', `${h}.${p}.${b64(Buffer.from(sig.map((b, i) => (i === 5 ? b ^ 1 : b))))}`);
  add('signature of another payload', `${h}.${p}.${good({ sub: 'other' }).split('.')[2]}`);
  add('psychic signature r=s=0', `${h}.${p}.${b64(Buffer.alloc(64))}`);
  add('r = 0', `${h}.${p}.${b64(Buffer.concat([Buffer.alloc(32), sig.subarray(32)]))}`);
  add('s = 0', `${h}.${p}.${b64(Buffer.concat([sig.subarray(0, 32), Buffer.alloc(32)]))}`);
  add('r = n', `${h}.${p}.${b64(Buffer.concat([n, sig.subarray(32)]))}`);
  add('s = n', `${h}.${p}.${b64(Buffer.concat([sig.subarray(0, 32), n]))}`);
  add('r,s = 0xff..', `${h}.${p}.${b64(Buffer.alloc(64, 0xff))}`);
  add(
    'DER signature',
    `${h}.${p}.${b64(sign('sha256', Buffer.from(`${h}.${p}`), { key: key.privateKey, dsaEncoding: 'der' }))}`,
  );
  for (const len of [1, 32, 63, 65, 128])
    add(`signature ${len} bytes`, `${h}.${p}.${b64(Buffer.alloc(len, 7))}`);
  add('signature padded', `${h}.${p}.${s}==`);
  add('embedded jwk', token(makeKey('ES256', 'current'), claims(), { jwk: key.jwk }));
  add('embedded jwk, no kid', token(makeKey('ES256', 'x'), claims(), { kid: undefined, jwk: makeKey().jwk }));
  add('jku', good({}, { jku: `${ISS}/.well-known/jwks.json` }));
  add('x5u', good({}, { x5u: 'http://127.0.0.1:1/c.pem' }));
  add('x5c', good({}, { x5c: ['MIIBIjAN'] }));
  for (const kid of [
    'nope',
    '../../dev/null',
    '../../../etc/passwd',
    "1' OR '1'='1",
    'current ',
    'CURRENT',
    '%00',
  ])
    add(`kid ${JSON.stringify(kid)}`, token({ ...key, kid }, claims()));
  add('kid very long', token({ ...key, kid: 'k'.repeat(5000) }, claims()));
  add('kid missing', token({ ...key, kid: undefined as unknown as string }, claims()));
  add('kid number', good({}, { kid: 1 }));
  add('kid of a key the server does not publish yet', token(next, claims()));
  add('crit exp', good({}, { crit: ['exp'] }));
  add('crit b64', good({}, { crit: ['b64'], b64: false }));
  add('crit empty', good({}, { crit: [] }));
  const t = now();
  add('expired', good({ exp: t - 3600 }));
  add('expired just beyond skew', good({ exp: t - 40 }));
  add('exp missing', good({ exp: undefined }));
  add('exp string', good({ exp: String(t + 300) }));
  add('exp Infinity (1e400)', signed(H, b64(JSON.stringify(claims()).replace(/"exp":\d+/, '"exp":1e400'))));
  add('exp negative', good({ exp: -1 }));
  add('nbf future', good({ nbf: t + 600 }));
  add('nbf string', good({ nbf: 'later' }));
  add('iat future', good({ iat: t + 600 }));
  add('iat missing', good({ iat: undefined }));
  add('iss wrong', good({ iss: 'https://evil.example' }));
  add('iss trailing slash', good({ iss: `${ISS}/` }));
  add('iss missing', good({ iss: undefined }));
  add('iss array', good({ iss: [ISS] }));
  add('aud wrong', good({ aud: 'other' }));
  add('aud missing', good({ aud: undefined }));
  add('aud empty array', good({ aud: [] }));
  add('aud case', good({ aud: 'Tessera' }));
  add('sub missing', good({ sub: undefined }));
  add('sub number', good({ sub: 42 }));
  add('sub empty', good({ sub: '' }));
  add('roles not an array', good({ roles: 'admin' }));
  add('scope array', good({ scope: ['read'] }));
  add('cnf-bound token (DPoP) without proof', good({ cnf: { jkt: 'abc' } }));
  for (const typ of [
    undefined,
    'JWT',
    'jwt',
    'id_token+jwt',
    'refresh+jwt',
    'dpop+jwt',
    'logout+jwt',
    'at+JWT2',
  ])
    add(`typ ${JSON.stringify(typ)}`, good({}, { typ }));
  add('opaque refresh token', 'rt_01HXYZ.c2VjcmV0c2VjcmV0c2VjcmV0');
  add('session token', 'sess_abc.def');
  add('oversized payload', good({ pad: 'x'.repeat(10_000) }));
  add('oversized header', good({}, { pad: 'x'.repeat(1500) }));
  add('deeply nested payload', signed(H, b64(`${'['.repeat(2000)}${']'.repeat(2000)}`)));
  add(
    'signed by an unknown P-256 key with the right kid',
    token({ ...makeKey('ES256'), kid: 'current' }, claims()),
  );
  add('EdDSA token with the ES256 kid', token({ ...makeKey('EdDSA'), kid: 'current' }, claims()));
  add('random junk', 'garbage');
  add('percent-encoded nulls', '%00.%00.%00');
  add('non-ASCII token', 'ünïcødé.ünïcødé.ünïcødé');
  return list;
}

describe('example API server: crafted-token catalogue', () => {
  test('a valid token: 200 {sub, sid, scope}', async () => {
    const r = await hello(`Bearer ${good()}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { sub: 'user-1', sid: 'sess-1', scope: 'api' });
  });

  test('every crafted token is refused with 401 and a challenge', async () => {
    const list = catalogue();
    assert.ok(list.length > 120, `catalogue has ${list.length} entries`);
    for (const [name, t] of list) {
      const r = await hello(`Bearer ${t}`).catch((e: unknown) => ({
        status: -1,
        headers: new Headers(),
        body: e,
      }));
      assert.equal(r.status, 401, `${name}: got ${r.status} ${JSON.stringify(r.body)}`);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="tessera"/, name);
      assert.equal(typeof r.body.error, 'string', name);
    }
  });

  test('raw requests a fetch client would not send: 4xx, never 5xx, server stays up', async () => {
    const { connect } = await import('node:net');
    for (const value of [
      'Bearer \u0001\u0002.\u0003.\u0004',
      `Bearer ${'a'.repeat(70_000)}`,
      'Bearer \u00ff\u00fe.x.y',
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        const sock = connect(api.port, '127.0.0.1');
        let data = '';
        sock.on('data', (d) => {
          data += d.toString('latin1');
        });
        sock.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
        sock.on('error', reject);
        sock.end(
          `GET /api/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${value}\r\n\r\n`,
          'latin1',
        );
      });
      assert.ok(status >= 400 && status < 500, `status ${status}`);
    }
    assert.equal((await hello(`Bearer ${good()}`)).status, 200);
  });

  test('malformed Authorization headers: 401', async () => {
    for (const h of [
      '',
      'Bearer',
      'Bearer ',
      `Basic ${good()}`,
      `Token ${good()}`,
      `Bearer ${good()} extra`,
      'Bearer a.b.c d',
    ]) {
      const r = await hello(h);
      assert.equal(r.status, 401, JSON.stringify(h));
      assert.ok(r.headers.get('www-authenticate'));
    }
    assert.equal((await hello(`bearer ${good()}`)).status, 200, 'the scheme is case-insensitive');
  });

  test('any single-character change to a valid token is refused (property)', async () => {
    const valid = good();
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: valid.length - 1 }),
        fc.constantFrom(...alphabet),
        fc.constantFrom('replace', 'insert', 'delete'),
        async (i, ch, op) => {
          const mutated =
            op === 'replace'
              ? valid.slice(0, i) + ch + valid.slice(i + 1)
              : op === 'insert'
                ? valid.slice(0, i) + ch + valid.slice(i)
                : valid.slice(0, i) + valid.slice(i + 1);
          if (mutated === valid) return;
          const r = await hello(`Bearer ${mutated.trim()}`);
          if (mutated.trim() === valid) return;
          assert.equal(r.status, 401, `${op} ${JSON.stringify(ch)} at ${i}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('a signed __proto__ claim is data, not a prototype (accepted, nothing polluted)', async () => {
    const input = `${b64({ alg: 'ES256', kid: 'current', typ: 'at+jwt' })}.${b64(
      JSON.stringify(claims()).replace('{', '{"__proto__":{"polluted":true},'),
    )}`;
    const tok = `${input}.${b64(signBytes('ES256', key.privateKey, Buffer.from(input)))}`;
    assert.equal((await hello(`Bearer ${tok}`)).status, 200);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  test('the server is still up and still accepts valid tokens', async () => {
    assert.equal((await hello(`Bearer ${good()}`)).status, 200);
  });

  test('CORS: exact-match origins, Authorization allowed, no credentials', async () => {
    const pre = await fetch(`${api.url}/api/hello`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://app.example.test',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://app.example.test');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.equal(pre.headers.get('access-control-allow-credentials'), null);
    for (const origin of [
      'http://evil.test',
      'http://app.example.test.evil.test',
      'null',
      'http://APP.example.test',
    ]) {
      const r = await hello(`Bearer ${good()}`, { origin });
      assert.equal(r.headers.get('access-control-allow-origin'), null, origin);
    }
    const ok = await hello(`Bearer ${good()}`, { origin: 'http://app.example.test' });
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://app.example.test');
    assert.match(ok.headers.get('vary') ?? '', /Origin/);
  });

  test('keeps answering while the account server is stopped', async () => {
    const tok = good();
    await issuer.close();
    assert.equal((await hello(`Bearer ${tok}`)).status, 200);
    assert.equal((await hello(`Bearer ${good()}`)).status, 200, 'a token never seen before, known key');
    assert.equal((await hello(`Bearer ${token(next, claims())}`)).status, 401, 'unknown kid: 401, no crash');
  });
});
