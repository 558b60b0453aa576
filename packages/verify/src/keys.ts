import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import {
  type Algorithm,
  type AsymmetricAlgorithm,
  base64urlLength,
  type HmacAlgorithm,
  makeChecker,
  signatureBytes,
  type TrustedKey,
} from './algorithms.js';
import { decodeStrict } from './base64url.js';

export const MAX_KID_LENGTH = 256;
const MIN_RSA_BITS = 2048;
const MIN_HMAC_SECRET_BYTES = 32;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The public JWK members this library reads. Anything else in a JWKS entry is ignored. */
export interface PublicJwk {
  kty?: string;
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  [member: string]: unknown;
}

function b64Bytes(value: unknown, length?: number): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const buf = decodeStrict(value);
  if (buf === undefined || buf.length === 0) return undefined;
  if (length !== undefined && buf.length !== length) return undefined;
  return buf;
}

function finish(kid: string, alg: Algorithm, key: KeyObject, fingerprint: string): TrustedKey {
  const sigBytes = signatureBytes(alg, key);
  return {
    kid,
    alg,
    key,
    sigBytes,
    sigChars: base64urlLength(sigBytes),
    fingerprint,
    ...makeChecker(alg, key),
  };
}

/**
 * Imports one JWKS entry as a verification key, or explains why it cannot be used.
 * Returns a string reason (never throws) so one odd key cannot break the whole set.
 */
export function importJwk(jwk: unknown, allowed: readonly Algorithm[]): TrustedKey | string {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'not an object';
  const k = jwk as PublicJwk;
  if (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > MAX_KID_LENGTH) return 'bad kid';
  if (PRIVATE_MEMBERS.some((m) => m in k)) return 'private or symmetric key material';
  if (k.use !== undefined && k.use !== 'sig') return 'use is not sig';
  if (k.key_ops !== undefined && (!Array.isArray(k.key_ops) || !k.key_ops.includes('verify'))) {
    return 'key_ops lacks verify';
  }
  let alg: AsymmetricAlgorithm;
  let pub: Record<string, string>;
  if (k.kty === 'EC') {
    if (k.crv !== 'P-256' || (k.alg !== undefined && k.alg !== 'ES256')) return 'unsupported EC key';
    if (!b64Bytes(k.x, 32) || !b64Bytes(k.y, 32)) return 'bad EC coordinates';
    alg = 'ES256';
    pub = { kty: 'EC', crv: 'P-256', x: k.x!, y: k.y! };
  } else if (k.kty === 'OKP') {
    if (k.crv !== 'Ed25519' || (k.alg !== undefined && k.alg !== 'EdDSA' && k.alg !== 'Ed25519')) {
      return 'unsupported OKP key';
    }
    if (!b64Bytes(k.x, 32)) return 'bad OKP key';
    alg = 'EdDSA';
    pub = { kty: 'OKP', crv: 'Ed25519', x: k.x! };
  } else if (k.kty === 'RSA') {
    if (k.alg !== undefined && k.alg !== 'RS256') return 'unsupported RSA alg';
    const n = b64Bytes(k.n);
    if (!n || !b64Bytes(k.e)) return 'bad RSA key';
    alg = 'RS256';
    pub = { kty: 'RSA', n: k.n!, e: k.e! };
  } else {
    return 'unsupported kty';
  }
  if (!allowed.includes(alg)) return `algorithm ${alg} not allowed`;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub, format: 'jwk' });
  } catch {
    return 'key does not import';
  }
  if (alg === 'RS256' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS)
    return 'RSA key too small';
  return finish(k.kid, alg, key, JSON.stringify(pub));
}

/** The single shared-secret key of an HMAC verifier. Throws TypeError: this is caller configuration. */
export function importSecret(secret: string | Buffer | KeyObject, alg: HmacAlgorithm): TrustedKey {
  const keyObject =
    secret instanceof KeyObject
      ? secret
      : createSecretKey(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret);
  if (keyObject.type !== 'secret') throw new TypeError('secret must be a symmetric key');
  if ((keyObject.symmetricKeySize ?? 0) < MIN_HMAC_SECRET_BYTES) {
    throw new TypeError(`secret must be at least ${MIN_HMAC_SECRET_BYTES} bytes`);
  }
  return finish('', alg, keyObject, 'secret');
}
