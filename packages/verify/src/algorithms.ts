import { createHmac, verify as cryptoVerify, type KeyObject, timingSafeEqual } from 'node:crypto';

export type AsymmetricAlgorithm = 'ES256' | 'EdDSA' | 'RS256';
export type HmacAlgorithm = 'HS256' | 'HS384' | 'HS512';
export type Algorithm = AsymmetricAlgorithm | HmacAlgorithm;

export const ASYMMETRIC_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['ES256', 'EdDSA', 'RS256'];
export const HMAC_ALGORITHMS: readonly HmacAlgorithm[] = ['HS256', 'HS384', 'HS512'];

export function isAlgorithm(x: unknown): x is Algorithm {
  return (
    typeof x === 'string' &&
    ((ASYMMETRIC_ALGORITHMS as readonly string[]).includes(x) ||
      (HMAC_ALGORITHMS as readonly string[]).includes(x))
  );
}

/** A key the verifier trusts, already imported, with everything the hot path needs precomputed. */
export interface TrustedKey {
  readonly kid: string;
  readonly alg: Algorithm;
  readonly key: KeyObject;
  /** Exact signature length in bytes, and in unpadded base64url characters. */
  readonly sigBytes: number;
  readonly sigChars: number;
  /** Identity of the public material, to notice a kid being reused for a different key. */
  readonly fingerprint: string;
  /** Verifies `sig` (already exactly `sigBytes` long) over `data`. */
  readonly check: (data: Uint8Array, sig: Uint8Array) => boolean;
  /**
   * The same check on libuv's thread pool (asymmetric keys), so the event loop goes on serving
   * while the curve or modulus arithmetic runs; HMAC keys answer at once. `data` and `sig` must
   * not change until it settles.
   */
  readonly checkOffThread: (data: Uint8Array, sig: Uint8Array) => Promise<boolean>;
}

export function base64urlLength(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

// Order of the P-256 group, big-endian. r and s must be in [1, n-1] (SEC 1, 4.1.4 step 1).
const P256_N = Uint8Array.from(
  Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex'),
);

/** 1 <= x <= n-1 for the 32-byte big-endian scalar at sig[off, off + 32). */
function scalarInRange(sig: Uint8Array, off: number): boolean {
  let any = 0;
  let order = 0; // sign of x - n, decided by the first differing byte
  for (let i = 0; i < 32; i++) {
    const b = sig[off + i]!;
    any |= b;
    if (order === 0) {
      const m = P256_N[i]!;
      if (b !== m) order = b < m ? -1 : 1;
    }
  }
  return any !== 0 && order < 0;
}

export function es256ScalarsInRange(sig: Uint8Array): boolean {
  // CVE-2022-21449: never hand r = 0 or s = 0 (or >= n) to the crypto layer.
  // Plain JS over the bytes (public values): no call into C++ on the hot path.
  return sig.length === 64 && scalarInRange(sig, 0) && scalarInRange(sig, 32);
}

type Check = (data: Uint8Array, sig: Uint8Array) => boolean;

/** A signature check on libuv's pool; a crypto error counts as a bad signature. */
function pooled(algorithm: string | null, key: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' }) {
  return (data: Uint8Array, sig: Uint8Array): Promise<boolean> =>
    new Promise((resolve) => {
      try {
        cryptoVerify(algorithm, data, key, sig, (err, ok) => resolve(err === null && ok));
      } catch {
        resolve(false);
      }
    });
}

export function makeChecker(
  alg: Algorithm,
  key: KeyObject,
): { check: Check; checkOffThread: (data: Uint8Array, sig: Uint8Array) => Promise<boolean> } {
  switch (alg) {
    case 'ES256': {
      const input = { key, dsaEncoding: 'ieee-p1363' as const };
      const offThread = pooled('sha256', input);
      return {
        check: (data, sig) => es256ScalarsInRange(sig) && cryptoVerify('sha256', data, input, sig),
        checkOffThread: (data, sig) =>
          es256ScalarsInRange(sig) ? offThread(data, sig) : Promise.resolve(false),
      };
    }
    case 'EdDSA':
      return { check: (data, sig) => cryptoVerify(null, data, key, sig), checkOffThread: pooled(null, key) };
    case 'RS256':
      return {
        check: (data, sig) => cryptoVerify('sha256', data, key, sig),
        checkOffThread: pooled('sha256', key),
      };
    case 'HS256':
    case 'HS384':
    case 'HS512': {
      const hash = `sha${alg.slice(2)}`;
      const check: Check = (data, sig) => timingSafeEqual(createHmac(hash, key).update(data).digest(), sig);
      // A MAC costs less than a trip to the pool.
      return {
        check,
        checkOffThread: (data, sig) => {
          try {
            return Promise.resolve(check(data, sig));
          } catch {
            return Promise.resolve(false);
          }
        },
      };
    }
  }
}

export function signatureBytes(alg: Algorithm, key: KeyObject): number {
  switch (alg) {
    case 'ES256':
    case 'EdDSA':
      return 64;
    case 'RS256':
      return Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    case 'HS256':
      return 32;
    case 'HS384':
      return 48;
    case 'HS512':
      return 64;
  }
}
