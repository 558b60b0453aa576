import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf?: number;
  jti: string;
  sid: string;
  scope: string;
  roles?: string[];
  client_id?: string;
  [claim: string]: unknown;
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs a compact JWS with ES256 (raw r||s signature, as JWS requires). */
export function signJwt(header: { kid: string; typ: string }, claims: object, key: KeyObject): string {
  const input = `${b64({ alg: 'ES256', typ: header.typ, kid: header.kid })}.${b64(claims)}`;
  const signature = cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * The account server's own check of the access tokens it issued: ES256 only, key by kid from
 * its own ring, typ at+jwt, exact iss, aud, exp. Returns undefined for anything else.
 * API servers use packages/verify, which is stricter and faster; this one guards /auth routes.
 */
export function verifyOwnJwt(
  token: string,
  keyFor: (kid: string) => KeyObject | undefined,
  expect: { issuer: string; audience: string | readonly string[]; nowSeconds: number; typ?: string },
): AccessClaims | undefined {
  if (token.length > 8192) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  if (!SEGMENT.test(h) || !SEGMENT.test(p) || !SEGMENT.test(s)) return undefined;
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null)
    return undefined;
  if (header.alg !== 'ES256' || header.typ !== (expect.typ ?? 'at+jwt') || 'crit' in header) return undefined;
  if (typeof header.kid !== 'string') return undefined;
  const key = keyFor(header.kid);
  if (!key) return undefined;
  const signature = Buffer.from(s, 'base64url');
  if (signature.length !== 64) return undefined;
  if (!cryptoVerify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, signature))
    return undefined;
  if (claims.iss !== expect.issuer) return undefined;
  const wanted: readonly string[] = typeof expect.audience === 'string' ? [expect.audience] : expect.audience;
  const aud = claims.aud;
  const auds: unknown[] = Array.isArray(aud) ? aud : [aud];
  if (!auds.some((a) => typeof a === 'string' && wanted.includes(a))) return undefined;
  if (typeof claims.exp !== 'number' || claims.exp <= expect.nowSeconds) return undefined;
  if (typeof claims.iat !== 'number' || claims.iat > expect.nowSeconds + 60) return undefined;
  if (typeof claims.sub !== 'string' || typeof claims.sid !== 'string') return undefined;
  return claims as AccessClaims;
}
