import { isUtf8 } from 'node:buffer';
import type { KeyObject } from 'node:crypto';
import {
  type Algorithm,
  ASYMMETRIC_ALGORITHMS,
  HMAC_ALGORITHMS,
  type HmacAlgorithm,
  isAlgorithm,
  type TrustedKey,
} from './algorithms.js';
import { decodeStrictInto } from './base64url.js';
import { signatureFingerprint, VerifiedTokenCache } from './cache.js';
import { type AccessTokenClaims, type ClaimRules, checkClaims, deepFreeze, scopesOf } from './claims.js';
import { VerifyError } from './errors.js';
import { JwksClient, type JwksClientOptions } from './jwks.js';
import { importJwk, importSecret, MAX_KID_LENGTH } from './keys.js';
import type { RevocationChecker } from './revocation.js';

export type JwksSource = Omit<JwksClientOptions, 'algorithms'> | { keys: readonly unknown[] } | JwksClient;

/** What to do with a token carrying `cnf` (proof-of-possession binding, e.g. DPoP `jkt`). */
export type ConfirmationPolicy =
  | 'reject'
  | 'ignore'
  | ((cnf: Readonly<Record<string, unknown>>, claims: AccessTokenClaims) => void);

export interface VerifierOptions {
  /** Exact `iss` value. */
  issuer: string;
  /** Accepted `aud` value(s); a token matches when its `aud` (string or array) names one of them. */
  audience: string | readonly string[];
  /** Trusted keys: fetched (`{url}`), fixed (`{keys}`), or a shared JwksClient. Asymmetric only. */
  jwks?: JwksSource;
  /** Shared secret for HS* algorithms. Never combined with `jwks` or asymmetric algorithms. */
  secret?: string | Buffer | KeyObject;
  /** Allowed `alg` values. Default `['ES256']`. */
  algorithms?: readonly Algorithm[];
  /** Leeway for exp / nbf / iat, seconds. Default 30, at most 300. */
  clockSkewSeconds?: number;
  /** Tokens longer than this are refused before any decoding. Default 8192. */
  maxTokenBytes?: number;
  /** Cache of verified tokens. Default `{ max: 10000 }`; `false` turns it off. */
  cache?: false | { max?: number };
  /**
   * Scopes every accepted token must carry (`insufficient_scope`, HTTP 403, otherwise). An API for
   * Tessera's first-party tokens asks for `['api']`: tokens issued to OAuth clients or machines
   * then fail here even before their audience is checked. Default: none.
   */
  requiredScopes?: readonly string[];
  /** Revocation source (e.g. a RevocationSet fed by a RevocationFeedClient), checked on every verify. */
  revocations?: RevocationChecker;
  /** Default `'reject'`: tokens bound with `cnf` need proof of possession this library does not do. */
  confirmation?: ConfirmationPolicy;
  /** Milliseconds since the epoch; for tests. */
  clock?: () => number;
}

export interface Verifier {
  /**
   * Verifies a compact JWS access token; fetches keys when needed. A token not in the cache has
   * its signature checked on libuv's thread pool, so the event loop serves other requests
   * meanwhile. Throws VerifyError.
   */
  verify(token: string): Promise<AccessTokenClaims>;
  /** Same checks on the calling thread, with the keys already in memory; an unseen kid throws `unknown_kid`. */
  verifySync(token: string): AccessTokenClaims;
  /** Resolves once keys are loaded (a no-op for fixed keys). */
  ready(): Promise<void>;
  clearCache(): void;
  readonly jwks: JwksClient | undefined;
  readonly algorithms: readonly Algorithm[];
}

interface ParsedHeader {
  readonly alg: Algorithm;
  readonly kid: string | undefined;
}

const MAX_HEADER_CHARS = 1024;
const HEADER_CACHE_MAX = 64;
// 10M entries of claims are gigabytes already; the first-sightings table takes 2 bytes per entry.
const MAX_CACHE_ENTRIES = 10_000_000;
// The key must never come from the token: embedded keys and key URLs are refused outright.
const REFUSED_HEADER_PARAMS = ['jwk', 'jku', 'x5u', 'x5c', 'crit', 'b64'];
// Scratch space for the hot path: verifySync is synchronous and never re-entered while these are
// in use, so decoding into shared buffers saves an allocation per segment per token.
// INPUT holds the signing input (at most maxTokenBytes <= 65536 bytes), DECODED a decoded header
// or payload, SIG a decoded signature (RSA moduli are at most 16384 bits = 2048 bytes).
const INPUT = new ArrayBuffer(65536);
const INPUT_BYTES = new Uint8Array(INPUT);
const DECODED = new ArrayBuffer(49152);
const DECODED_BYTES = new Uint8Array(DECODED);
const DECODED_BUF = Buffer.from(DECODED);
const SIG = new Uint8Array(8192);
const SIG_VIEWS: Uint8Array[] = [];

/** Parses `text.slice(start, end)` as base64url of a UTF-8 JSON object. */
function parseJsonObject(text: string, start: number, end: number): Record<string, unknown> {
  const n = start === end ? -1 : decodeStrictInto(text, start, end, DECODED_BYTES);
  if (n < 0) throw new VerifyError('token_malformed');
  let high = 0;
  for (let i = 0; i < n; i++) high |= DECODED_BYTES[i]!;
  let json: string;
  if (high < 0x80) {
    // All ASCII: one byte per char, nothing to validate; latin1 is the cheapest exact decoding.
    json = DECODED_BUF.toString('latin1', 0, n);
  } else {
    if (!isUtf8(new Uint8Array(DECODED, 0, n))) throw new VerifyError('token_malformed');
    json = DECODED_BUF.toString('utf8', 0, n);
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new VerifyError('token_malformed');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new VerifyError('token_malformed');
  return value as Record<string, unknown>;
}

function isAccessTokenTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const t = typ.toLowerCase();
  return t === 'at+jwt' || t === 'application/at+jwt';
}

function validateOptions(o: VerifierOptions): { algorithms: Algorithm[]; audiences: string[] } {
  if (typeof o.issuer !== 'string' || o.issuer.length === 0)
    throw new TypeError('issuer must be a non-empty string');
  const audiences = typeof o.audience === 'string' ? [o.audience] : [...(o.audience ?? [])];
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a.length === 0)) {
    throw new TypeError('audience must be a non-empty string or list of strings');
  }
  const algorithms = [...(o.algorithms ?? ['ES256'])];
  if (algorithms.length === 0 || !algorithms.every(isAlgorithm)) {
    throw new TypeError(
      `algorithms must be a non-empty subset of ${[...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS]}`,
    );
  }
  const hmac = algorithms.filter((a) => (HMAC_ALGORITHMS as readonly string[]).includes(a));
  if (hmac.length > 0 && hmac.length !== algorithms.length) {
    throw new TypeError('HS* algorithms cannot be allowed next to asymmetric ones');
  }
  if (hmac.length > 0 && (o.secret === undefined || o.jwks !== undefined)) {
    throw new TypeError('HS* algorithms need an explicit `secret` and no `jwks`');
  }
  if (hmac.length === 0 && (o.secret !== undefined || o.jwks === undefined)) {
    throw new TypeError('asymmetric algorithms need `jwks` and no `secret`');
  }
  const skew = o.clockSkewSeconds ?? 30;
  if (typeof skew !== 'number' || !(skew >= 0 && skew <= 300))
    throw new TypeError('clockSkewSeconds must be 0..300');
  const max = o.maxTokenBytes ?? 8192;
  if (!Number.isInteger(max) || max < 256 || max > 65536)
    throw new TypeError('maxTokenBytes must be 256..65536');
  if (
    o.requiredScopes !== undefined &&
    !(
      Array.isArray(o.requiredScopes) &&
      o.requiredScopes.every((s) => typeof s === 'string' && /^\S+$/.test(s))
    )
  ) {
    throw new TypeError('requiredScopes must be a list of scope names');
  }
  const cacheMax = o.cache ? o.cache.max : undefined;
  if (
    cacheMax !== undefined &&
    !(Number.isInteger(cacheMax) && cacheMax > 0 && cacheMax <= MAX_CACHE_ENTRIES)
  ) {
    throw new TypeError(`cache.max must be an integer 1..${MAX_CACHE_ENTRIES}`);
  }
  return { algorithms, audiences };
}

export function createVerifier(options: VerifierOptions): Verifier {
  const { algorithms, audiences } = validateOptions(options);
  const rules: ClaimRules = { issuer: options.issuer, audiences, skew: options.clockSkewSeconds ?? 30 };
  const maxTokenBytes = options.maxTokenBytes ?? 8192;
  const clock = options.clock ?? Date.now;
  const revocations = options.revocations;
  const confirmation = options.confirmation ?? 'reject';
  const requiredScopes = [...(options.requiredScopes ?? [])];
  const scopeError = requiredScopes.join(' ');
  const allowed = new Set<string>(algorithms);
  const cache =
    options.cache === false
      ? undefined
      : new VerifiedTokenCache<AccessTokenClaims>(options.cache?.max ?? 10_000);

  // Key lookup: by kid from a JWKS, or by alg for the single HMAC secret.
  let jwks: JwksClient | undefined;
  let lookup: (header: ParsedHeader) => TrustedKey | undefined;
  if (options.secret !== undefined) {
    const byAlg = new Map<string, TrustedKey>();
    for (const alg of algorithms) byAlg.set(alg, importSecret(options.secret, alg as HmacAlgorithm));
    lookup = (h) => byAlg.get(h.alg);
  } else if (options.jwks instanceof JwksClient) {
    jwks = options.jwks;
  } else if (options.jwks && 'keys' in options.jwks) {
    const fixed = new Map<string, TrustedKey>();
    for (const jwk of options.jwks.keys) {
      const k = importJwk(jwk, algorithms);
      if (typeof k === 'string') throw new TypeError(`jwks.keys: unusable key (${k})`);
      fixed.set(k.kid, k);
    }
    lookup = (h) => (h.kid === undefined ? undefined : fixed.get(h.kid));
  } else if (options.jwks) {
    jwks = new JwksClient({ ...options.jwks, algorithms });
  }
  if (jwks) {
    const client = jwks;
    lookup = (h) => (h.kid === undefined ? undefined : client.get(h.kid));
    client.onKeysRemoved((kids) => cache?.deleteKids(kids));
  }

  // Parsed headers by exact header segment: tokens from one key share the same header bytes.
  const headerCache = new Map<string, ParsedHeader>();
  function parseHeader(segment: string): ParsedHeader {
    const hit = headerCache.get(segment);
    if (hit) return hit;
    if (segment.length > MAX_HEADER_CHARS) throw new VerifyError('token_too_large');
    const h = parseJsonObject(segment, 0, segment.length);
    const alg = h['alg'];
    if (typeof alg !== 'string' || !allowed.has(alg)) throw new VerifyError('unsupported_alg');
    for (const p of REFUSED_HEADER_PARAMS) if (p in h) throw new VerifyError('unsupported_header');
    if (!isAccessTokenTyp(h['typ'])) throw new VerifyError('invalid_type');
    const kid = h['kid'];
    if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) {
      throw new VerifyError('token_malformed');
    }
    const parsed: ParsedHeader = { alg: alg as Algorithm, kid };
    if (headerCache.size >= HEADER_CACHE_MAX) headerCache.clear();
    headerCache.set(segment, parsed);
    return parsed;
  }
  // The header of the previous token: compared in place, so the common case slices nothing.
  let lastHeaderSegment = '';
  let lastHeader: ParsedHeader | undefined;
  function headerOf(token: string, dot1: number): ParsedHeader {
    if (
      lastHeader !== undefined &&
      dot1 === lastHeaderSegment.length &&
      token.startsWith(lastHeaderSegment)
    ) {
      return lastHeader;
    }
    const segment = token.slice(0, dot1);
    const parsed = parseHeader(segment);
    lastHeaderSegment = segment;
    lastHeader = parsed;
    return parsed;
  }

  function checkRevocation(claims: AccessTokenClaims, nowMs: number): void {
    if (revocations) {
      const verdict = revocations.check(claims, nowMs);
      if (verdict !== null) throw new VerifyError(verdict);
    }
  }

  /** A token whose structure, header and key are checked; its signature is next. */
  interface Signed {
    readonly hit?: undefined;
    readonly key: TrustedKey;
    readonly header: ParsedHeader;
    readonly dot1: number;
    readonly dot2: number;
    /** For the cache's admission (see VerifiedTokenCache). */
    readonly fingerprint: number;
    /** The signing input and the signature, in the shared scratch buffers. */
    readonly input: Uint8Array;
    readonly sig: Uint8Array;
  }

  /** The claims of an already-verified token (expiry and revocation checked again), or its parts. */
  function begin(token: string, nowMs: number): { readonly hit: AccessTokenClaims } | Signed {
    if (typeof token !== 'string' || token.length === 0) throw new VerifyError('token_missing');
    if (token.length > maxTokenBytes) throw new VerifyError('token_too_large');

    if (cache) {
      const hit = cache.get(token);
      if (hit) {
        if (hit.exp <= nowMs / 1000 - rules.skew) {
          cache.delete(token);
          throw new VerifyError('token_expired');
        }
        checkRevocation(hit.claims, nowMs);
        return { hit: hit.claims };
      }
    }

    const dot1 = token.indexOf('.');
    const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
    if (dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) throw new VerifyError('token_malformed');
    const header = headerOf(token, dot1);

    const key = lookup(header);
    if (key === undefined) {
      if (jwks && !jwks.loaded) throw new VerifyError('jwks_unavailable');
      throw new VerifyError('unknown_kid');
    }
    // The key fixes the algorithm: a kid for an ES256 key cannot be used with any other alg.
    if (key.alg !== header.alg) throw new VerifyError('unsupported_alg');

    if (token.length - dot2 - 1 !== key.sigChars) throw new VerifyError('invalid_signature');
    const sigBytes = decodeStrictInto(token, dot2 + 1, token.length, SIG);
    if (sigBytes !== key.sigBytes) throw new VerifyError('invalid_signature');
    let sig = SIG_VIEWS[sigBytes];
    if (sig === undefined) {
      sig = new Uint8Array(SIG.buffer, 0, sigBytes);
      SIG_VIEWS[sigBytes] = sig;
    }
    // Only the header has been checked to be base64url (ASCII) so far; each char is copied as its
    // low byte (as latin1 would), and a payload with any other char is refused right after, before
    // its claims are read. A plain JS copy: measured faster here than a Buffer#write call into C++.
    for (let i = 0; i < dot2; i++) INPUT_BYTES[i] = token.charCodeAt(i);
    return {
      key,
      header,
      dot1,
      dot2,
      fingerprint: signatureFingerprint(sig),
      input: new Uint8Array(INPUT, 0, dot2),
      sig,
    };
  }

  /** The claims of a token whose signature is good: every claim rule, then the cache. */
  function complete(token: string, signed: Signed, nowMs: number): AccessTokenClaims {
    const payload = parseJsonObject(token, signed.dot1 + 1, signed.dot2);
    const claims = checkClaims(payload, rules, nowMs / 1000);
    if (requiredScopes.length > 0) {
      const have = scopesOf(claims);
      if (!requiredScopes.every((s) => have.includes(s)))
        throw new VerifyError('insufficient_scope', { scope: scopeError });
    }
    if (claims.cnf !== undefined && confirmation !== 'ignore') {
      if (confirmation === 'reject') throw new VerifyError('unsupported_confirmation');
      confirmation(claims.cnf, claims);
    }
    checkRevocation(claims, nowMs);
    if (cache) {
      deepFreeze(claims);
      // Kept only while its key is still trusted: a key retired while verify() awaited the
      // signature has had its entries dropped already, and this one must not come after them.
      if (cache.admits(signed.fingerprint) && lookup(signed.header)?.fingerprint === signed.key.fingerprint)
        cache.set(token, { claims, exp: claims.exp, kid: signed.key.kid });
    }
    return claims;
  }

  function verifySync(token: string): AccessTokenClaims {
    const nowMs = clock();
    const step = begin(token, nowMs);
    if (step.hit) return step.hit;
    let ok: boolean;
    try {
      ok = step.key.check(step.input, step.sig);
    } catch {
      ok = false;
    }
    if (!ok) throw new VerifyError('invalid_signature');
    return complete(token, step, nowMs);
  }

  /**
   * verifySync with the signature checked on libuv's pool. The signing input and signature are
   * copied out of the scratch buffers first, since other tokens use them while this one waits;
   * the claims are read at the clock of the moment the signature is known to be good.
   */
  async function verifyOffThread(token: string): Promise<AccessTokenClaims> {
    const step = begin(token, clock());
    if (step.hit) return step.hit;
    const input = step.input.slice();
    const sig = step.sig.slice();
    if (!(await step.key.checkOffThread(input, sig))) throw new VerifyError('invalid_signature');
    // complete() reads the payload from the token itself, not from the scratch buffers.
    return complete(token, step, clock());
  }

  async function verify(token: string): Promise<AccessTokenClaims> {
    try {
      return await verifyOffThread(token);
    } catch (err) {
      if (!(jwks && err instanceof VerifyError)) throw err;
      if (err.code === 'jwks_unavailable') {
        // No key set yet (cold start): structure and header already passed; load keys once.
        try {
          await jwks.ready();
        } catch (cause) {
          throw new VerifyError('jwks_unavailable', { cause });
        }
      } else if (err.code === 'unknown_kid') {
        // Maybe a freshly rotated key: refetch once (single-flight, rate-limited by a cooldown).
        await jwks.refreshForUnknownKid();
      } else {
        throw err;
      }
    }
    return verifyOffThread(token);
  }

  return {
    verify,
    verifySync,
    async ready() {
      if (jwks) {
        try {
          await jwks.ready();
        } catch (err) {
          throw new VerifyError('jwks_unavailable', { cause: err });
        }
      }
    },
    clearCache() {
      cache?.clear();
      headerCache.clear();
      lastHeader = undefined;
      lastHeaderSegment = '';
    },
    jwks,
    algorithms,
  };
}
