// Keys and tokens made by the tests themselves, with full control over every byte.
import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import type { Algorithm } from '../src/algorithms.js';

export const ISSUER = 'https://auth.example.test';
export const AUDIENCE = 'tessera';

export interface TestKey {
  kid: string;
  alg: Algorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: Record<string, unknown>;
}

export function makeKey(
  alg: 'ES256' | 'EdDSA' | 'RS256' = 'ES256',
  kid = `k-${alg}-${Math.random()}`,
): TestKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { kid, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk };
}

export function b64(x: unknown): string {
  if (Buffer.isBuffer(x)) return x.toString('base64url');
  return Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
}

export function signBytes(alg: string, key: KeyObject | Buffer | string, data: Buffer): Buffer {
  switch (alg) {
    case 'ES256':
      return sign('sha256', data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
      return sign(null, data, key as KeyObject);
    case 'RS256':
      return sign('sha256', data, key as KeyObject);
    case 'HS256':
    case 'HS384':
    case 'HS512':
      return createHmac(`sha${alg.slice(2)}`, key)
        .update(data)
        .digest();
    default:
      throw new Error(`cannot sign ${alg}`);
  }
}

export function now(): number {
  return Math.floor(Date.now() / 1000);
}

export function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const t = now();
  return {
    iss: ISSUER,
    sub: 'user-1',
    aud: AUDIENCE,
    exp: t + 300,
    iat: t,
    jti: `jti-${Math.random()}`,
    sid: 'sess-1',
    scope: 'read write',
    ...overrides,
  };
}

/** Signs header+payload exactly as given (objects are JSON-encoded, strings used verbatim). */
export function token(
  key: TestKey,
  payload: unknown = claims(),
  header: Record<string, unknown> = {},
): string {
  const h = { alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header };
  const input = `${b64(h)}.${typeof payload === 'string' ? payload : b64(payload)}`;
  return `${input}.${b64(signBytes(key.alg, key.privateKey, Buffer.from(input)))}`;
}

/** Serves a JWKS over HTTP for JWKS-client and end-to-end tests. */
export { startJwksServer } from './jwks-server.js';
