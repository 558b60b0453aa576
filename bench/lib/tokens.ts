// One ES256 key and distinct access tokens signed with it, in the shape Tessera issues
// (typ at+jwt, iss, sub, aud, exp, iat, jti, sid, scope): what every token bench verifies.
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

export interface BenchKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as a JWK with kid `k1`, alg ES256, use sig. */
  jwk: Record<string, unknown>;
  /** The public key as SPKI PEM. */
  pem: string;
}

export function benchKeys(): BenchKeys {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKey,
    publicKey,
    jwk: { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' },
    pem: publicKey.export({ format: 'pem', type: 'spki' }) as string,
  };
}

const b64 = (x: unknown): string => Buffer.from(JSON.stringify(x)).toString('base64url');

/** `count` distinct tokens, valid for `lifetimeSeconds` from now. */
export function mintTokens(
  keys: BenchKeys,
  count: number,
  opts: { issuer: string; audience: string; lifetimeSeconds?: number },
): string[] {
  const now = Math.floor(Date.now() / 1000);
  const header = b64({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' });
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const payload = b64({
      iss: opts.issuer,
      sub: `user-${i}`,
      aud: opts.audience,
      exp: now + (opts.lifetimeSeconds ?? 3600),
      iat: now,
      jti: `jti-${i}-${Math.random().toString(36).slice(2)}`,
      sid: `sess-${i}`,
      scope: 'read write',
    });
    const input = `${header}.${payload}`;
    const sig = sign('sha256', Buffer.from(input), { key: keys.privateKey, dsaEncoding: 'ieee-p1363' });
    tokens.push(`${input}.${sig.toString('base64url')}`);
  }
  return tokens;
}
