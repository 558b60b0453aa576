import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createVerifier, JwksClient, VerifyError } from '../src/index.js';
import { AUDIENCE, claims, ISSUER, makeKey, token } from './helpers.js';
import { type JwksServer, startJwksServer } from './jwks-server.js';

const k1 = makeKey('ES256', 'k1');
const k2 = makeKey('ES256', 'k2');
const servers: JwksServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function server(keys: unknown[], cc?: string): Promise<JwksServer> {
  const s = await startJwksServer(keys, cc);
  servers.push(s);
  return s;
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VerifyError) return e.code;
    throw e;
  }
  return undefined;
}

describe('JWKS client', () => {
  test('fetches once, then serves from cache within max-age', async () => {
    const s = await server([k1.jwk]);
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { url: s.url }, cache: false });
    for (let i = 0; i < 5; i++) assert.equal((await v.verify(token(k1))).sub, 'user-1');
    assert.equal(s.requests, 1);
  });

  test('honours Cache-Control max-age: refreshes in the background after it', async () => {
    const s = await server([k1.jwk], 'max-age=60');
    let t = Date.now();
    const clock = (): number => t;
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { url: s.url, clock },
      clock,
      cache: false,
    });
    await v.verify(token(k1));
    t += 59_000;
    await v.verify(token(k1));
    assert.equal(s.requests, 1);
    t += 2_000;
    v.verifySync(token(k1)); // still served from the old set; kicks a refresh
    await v.jwks!.refresh();
    assert.ok(s.requests >= 2);
  });

  test('unknown kid: one refetch for a flood of junk kids (single-flight + cooldown)', async () => {
    const s = await server([k1.jwk]);
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { url: s.url, cooldownMs: 60_000 },
    });
    await v.ready();
    s.requests = 0;
    const junk = Array.from({ length: 200 }, (_, i) => token({ ...k1, kid: `junk-${i}` }));
    const codes = await Promise.all(junk.map((t) => code(v.verify(t))));
    assert.ok(codes.every((c) => c === 'unknown_kid'));
    assert.ok(s.requests <= 1, `requests: ${s.requests}`);
    await Promise.all(junk.map((t) => code(v.verify(t))));
    assert.ok(s.requests <= 1, 'cooldown holds');
  });

  test('a newly rotated key is picked up on first sight of its kid', async () => {
    const s = await server([k1.jwk]);
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { url: s.url, cooldownMs: 0 } });
    await v.verify(token(k1));
    s.keys = [k1.jwk, k2.jwk];
    assert.equal((await v.verify(token(k2))).sub, 'user-1');
    assert.equal(s.requests, 2);
  });

  test('keeps working from cache while the account server is down', async () => {
    const s = await server([k1.jwk], 'max-age=1');
    let t = Date.now();
    const clock = (): number => t;
    const errors: Error[] = [];
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: { url: s.url, clock, cooldownMs: 0, minMaxAgeMs: 0, onError: (e) => errors.push(e) },
      clock,
    });
    await v.verify(token(k1));
    await s.close();
    t += 10_000;
    assert.equal((await v.verify(token(k1))).sub, 'user-1');
    await v.jwks!.refresh().catch(() => undefined);
    assert.equal((await v.verify(token(k1))).sub, 'user-1');
    assert.equal(await code(v.verify(token(k2))), 'unknown_kid');
    assert.ok(errors.length > 0);
  });

  test('cold start with the account server down: jwks_unavailable, not a crash', async () => {
    const s = await server([k1.jwk]);
    await s.close();
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { url: s.url, timeoutMs: 500 } });
    assert.equal(await code(v.verify(token(k1))), 'jwks_unavailable');
    assert.equal(await code(v.ready()), 'jwks_unavailable');
    assert.throws(
      () => v.verifySync(token(k1)),
      (e: unknown) => e instanceof VerifyError && e.code === 'jwks_unavailable',
    );
  });

  test('a retired key is flushed from the verified-token cache', async () => {
    const s = await server([k1.jwk, k2.jwk]);
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { url: s.url } });
    const tok = token(k1);
    await v.verify(tok);
    assert.ok(v.verifySync(tok));
    s.keys = [k2.jwk];
    await v.jwks!.refresh();
    assert.equal(await code(v.verify(tok)), 'unknown_kid');
  });

  test('a token whose key is retired while its signature is checked is not cached', async () => {
    let keys = [k1.jwk];
    // Answers from memory, in microtasks only: the refresh below ends before the signature
    // check on the thread pool can report back.
    const fetchKeys = (async () => ({
      status: 200,
      headers: new Headers({ 'cache-control': 'max-age=300' }),
      body: null,
      text: async () => JSON.stringify({ keys }),
    })) as unknown as typeof fetch;
    const client = new JwksClient({ url: 'https://auth.example.test/jwks', fetch: fetchKeys, cooldownMs: 0 });
    await client.refresh();
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: client });
    const tok = token(k1);
    v.verifySync(tok); // first sighting: the next verification would keep it
    const pending = v.verify(tok);
    keys = [k2.jwk];
    await client.refresh();
    assert.equal(client.get('k1'), undefined, 'k1 retired before the check reported back');
    assert.equal((await pending).sub, 'user-1', 'accepted: its key was trusted when it was presented');
    assert.throws(
      () => v.verifySync(tok),
      (e: unknown) => e instanceof VerifyError && e.code === 'unknown_kid',
    );
  });

  test('bad responses keep the previous key set', async () => {
    const s = await server([k1.jwk]);
    const client = new JwksClient({ url: s.url, cooldownMs: 0 });
    await client.refresh();
    for (const [status, keys] of [
      [500, [k1.jwk]],
      [200, []],
      [200, [{ kty: 'EC', crv: 'P-256', kid: 'x' }]],
    ] as const) {
      s.status = status;
      s.keys = [...keys];
      await assert.rejects(client.refresh());
      assert.ok(client.get('k1'));
    }
  });

  test('skips keys it must not use: private, wrong use, wrong curve, unknown kty', async () => {
    const priv = { ...makeKey('ES256', 'p').privateKey.export({ format: 'jwk' }), kid: 'p' };
    const enc = { ...k2.jwk, use: 'enc' };
    const s = await server([
      priv,
      enc,
      { ...k1.jwk, crv: 'P-384' },
      { kty: 'oct', k: 'AAAA', kid: 's' },
      k1.jwk,
    ]);
    const client = new JwksClient({ url: s.url });
    await client.refresh();
    assert.deepEqual(client.kids, ['k1']);
  });
});

test('tokens verify in parallel with the first JWKS load (single-flight)', async () => {
  const s = await server([k1.jwk]);
  const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { url: s.url } });
  const out = await Promise.all(Array.from({ length: 20 }, () => v.verify(token(k1, claims()))));
  assert.equal(out.length, 20);
  assert.equal(s.requests, 1);
});
