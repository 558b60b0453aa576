import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { normalizeHtu } from '@tessera/verify';
import { OAuthError } from './errors.js';
import type { OAuthStore } from './types.js';

const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** How old (seconds) a proof may be, and how far in the future its iat may lie (clock skew). */
export const DPOP_MAX_AGE = 300;
export const DPOP_MAX_SKEW = 60;

export interface DpopCheck {
  proof: string | undefined;
  method: string;
  /** The endpoint's URL as the client addressed it, without query or fragment. */
  url: string;
  /** For resource requests: the access token, whose hash the proof must carry in `ath`. */
  accessToken?: string;
  now: number;
}

const bad = (why: string) => new OAuthError('invalid_dpop_proof', why);

/** RFC 7638 thumbprint of a P-256 public key. */
export function jwkThumbprint(jwk: { crv: string; x: string; y: string }): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical).digest('base64url');
}

function parseJson(segment: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw bad('The DPoP proof is not a JWT.');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('The DPoP proof is not a JWT.');
  return v as Record<string, unknown>;
}

/**
 * RFC 9449 §4.3: one ES256 proof, signed by the embedded public key, for this method and URL,
 * recent, never seen before (jti kept in the store for the whole window). Returns the key's
 * thumbprint (`cnf.jkt`).
 */
export async function checkDpopProof(store: OAuthStore, check: DpopCheck): Promise<string> {
  const proof = check.proof;
  if (proof === undefined) throw bad('A DPoP proof is required.');
  if (proof.length > 4096) throw bad('The DPoP proof is too large.');
  const parts = proof.split('.');
  if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) throw bad('The DPoP proof is not a JWT.');
  const [h, p, s] = parts as [string, string, string];
  const header = parseJson(h);
  const claims = parseJson(p);
  if (header.typ !== 'dpop+jwt') throw bad('The DPoP proof must have typ dpop+jwt.');
  if (header.alg !== 'ES256') throw bad('DPoP proofs must be signed with ES256.');
  if ('crit' in header) throw bad('The DPoP proof has unsupported critical headers.');
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (
    typeof jwk !== 'object' ||
    jwk === null ||
    jwk.kty !== 'EC' ||
    jwk.crv !== 'P-256' ||
    typeof jwk.x !== 'string' ||
    typeof jwk.y !== 'string' ||
    'd' in jwk
  ) {
    throw bad('The DPoP proof must carry a public P-256 jwk.');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, format: 'jwk' });
  } catch {
    throw bad('The DPoP proof key is not a valid P-256 key.');
  }
  const signature = Buffer.from(s, 'base64url');
  if (
    signature.length !== 64 ||
    !cryptoVerify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, signature)
  ) {
    throw bad('The DPoP proof signature is wrong.');
  }
  if (typeof claims.jti !== 'string' || claims.jti.length < 8 || claims.jti.length > 256)
    throw bad('The DPoP proof needs a jti.');
  if (claims.htm !== check.method) throw bad('The DPoP proof is for another HTTP method.');
  // The same htu rule as API servers apply (packages/verify): one normalisation, user info refused.
  const htu = typeof claims.htu === 'string' ? normalizeHtu(claims.htu) : undefined;
  if (htu === undefined || htu !== normalizeHtu(check.url)) throw bad('The DPoP proof is for another URL.');
  const nowSeconds = Math.floor(check.now / 1000);
  if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat))
    throw bad('The DPoP proof needs an iat.');
  if (claims.iat > nowSeconds + DPOP_MAX_SKEW || claims.iat < nowSeconds - DPOP_MAX_AGE)
    throw bad('The DPoP proof is too old or from the future.');
  if (check.accessToken !== undefined) {
    const ath = createHash('sha256').update(check.accessToken).digest('base64url');
    if (claims.ath !== ath) throw bad('The DPoP proof is not for this access token.');
  }
  const jkt = jwkThumbprint({ crv: 'P-256', x: jwk.x, y: jwk.y });
  const fresh = await store.rememberJti(
    `${jkt}:${claims.jti}`,
    (claims.iat + DPOP_MAX_AGE + DPOP_MAX_SKEW) * 1000,
    check.now,
  );
  if (!fresh) throw bad('The DPoP proof was used before.');
  return jkt;
}
