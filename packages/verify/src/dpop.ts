// DPoP (RFC 9449) on the resource-server side: the proof a client sends in the `DPoP` header next
// to `Authorization: DPoP <token>`, checked against the request and the token's `cnf.jkt`.
// node:crypto only. The proof's own key is the one place this library uses an embedded `jwk`:
// it is the key being proven, and it is trusted only once its thumbprint equals the `cnf.jkt` of
// an access token the verifier has already accepted.
import { isUtf8 } from 'node:buffer';
import {
  createHash,
  createPublicKey,
  verify as cryptoVerify,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto';
import { es256ScalarsInRange } from './algorithms.js';
import { decodeStrict } from './base64url.js';
import type { AccessTokenClaims } from './claims.js';
import { type DpopFailureReason, VerifyError } from './errors.js';
import type { ConfirmationPolicy } from './verifier.js';

/** The only proof algorithm accepted (also what the `algs` challenge parameter advertises). */
export const DPOP_ALGORITHMS: readonly string[] = ['ES256'];
export const DPOP_DEFAULT_MAX_AGE_SECONDS = 300;
export const DPOP_DEFAULT_MAX_SKEW_SECONDS = 60;
export const DPOP_DEFAULT_MAX_PROOF_BYTES = 4096;
const MIN_JTI = 8;
const MAX_JTI = 256;
const JKT = /^[A-Za-z0-9_-]{43}$/;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const bad = (reason: DpopFailureReason) => new VerifyError('dpop_proof_invalid', { reason });

/** What a proof is checked against. */
export interface DpopExpectation {
  /** The request method, e.g. `GET` (compared exactly with `htm`). */
  method: string;
  /** The request URL as the client addressed it (query and fragment are ignored). */
  url: string;
  /** The access token sent with the proof; `ath` must be its SHA-256, base64url. */
  accessToken: string;
  /** Milliseconds since the epoch. */
  nowMs: number;
  maxAgeSeconds?: number;
  maxSkewSeconds?: number;
  maxProofBytes?: number;
}

/**
 * What a proof sent to an authorization server's token endpoint (RFC 9449, 5) is checked against:
 * there is no access token yet, so no `ath`.
 */
export type DpopTokenRequestExpectation = Omit<DpopExpectation, 'accessToken'>;

/** A proof that passed every check that needs no state: what is left is binding and replay. */
export interface DpopProof {
  /** RFC 7638 thumbprint of the proof's key. */
  readonly jkt: string;
  readonly jti: string;
  readonly iat: number;
}

/** RFC 7638 SHA-256 thumbprint of a P-256 public key (members in lexicographic order). */
export function jwkThumbprint(jwk: { x: string; y: string }): string {
  const canonical = `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** base64url(SHA-256(token)): the `ath` a proof must carry for that access token. */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/**
 * `scheme://host[:port]/path` of an absolute http(s) URL: scheme and host lower-cased, the default
 * port dropped, dot segments resolved (all by the WHATWG parser), query and fragment removed.
 * undefined for anything else, including URLs with user info.
 */
export function normalizeHtu(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  if (u.username !== '' || u.password !== '') return undefined;
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/**
 * The URL a request was addressed to, for `htu`. `base` is the external base URL
 * (`https://api.example.com`, or with a path prefix a proxy strips: `https://example.com/api`);
 * `target` is the request target as received: origin-form (`/a/b?q`) or absolute-form (only its
 * path is used: the host comes from `base`, never from the request line).
 */
export function requestHtu(base: string, target: string): string | undefined {
  let path: string;
  if (target.startsWith('/')) {
    const end = target.search(/[?#]/);
    path = end < 0 ? target : target.slice(0, end);
  } else {
    try {
      path = new URL(target).pathname;
    } catch {
      return undefined;
    }
  }
  let b: URL;
  try {
    b = new URL(base);
  } catch {
    return undefined;
  }
  const prefix = b.pathname.endsWith('/') ? b.pathname.slice(0, -1) : b.pathname;
  // Concatenated as text, never resolved against `base`: a target like `//evil.example/x` must
  // stay a path on our host, not become another authority.
  return normalizeHtu(`${b.protocol}//${b.host}${prefix}${path}`);
}

function parseSegment(segment: string): Record<string, unknown> {
  const bytes = segment.length === 0 ? undefined : decodeStrict(segment);
  if (bytes === undefined || !isUtf8(bytes)) throw bad('malformed');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw bad('malformed');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('malformed');
  return value as Record<string, unknown>;
}

function importProofKey(jwk: unknown): { key: KeyObject; x: string; y: string } {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw bad('jwk');
  const k = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in k)) throw bad('jwk');
  if (k['kty'] !== 'EC' || k['crv'] !== 'P-256') throw bad('jwk');
  const { x, y } = k;
  if (typeof x !== 'string' || typeof y !== 'string') throw bad('jwk');
  // Exactly 32 bytes each in canonical base64url: one encoding per key, so one thumbprint per key.
  if (decodeStrict(x)?.length !== 32 || decodeStrict(y)?.length !== 32) throw bad('jwk');
  try {
    // Only kty/crv/x/y reach the importer; it refuses points that are not on the curve.
    return { key: createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' }), x, y };
  } catch {
    throw bad('jwk');
  }
}

/** The single proof in a `DPoP` header value (a string, or the list of repeated header values). */
export function singleProof(
  header: string | readonly string[] | undefined | null,
  maxProofBytes = DPOP_DEFAULT_MAX_PROOF_BYTES,
): string {
  if (header === undefined || header === null) throw bad('missing');
  if (typeof header !== 'string') {
    if (header.length === 0) throw bad('missing');
    if (header.length > 1) throw bad('multiple');
    return singleProof(header[0], maxProofBytes);
  }
  if (header.length > maxProofBytes) throw bad('too_large');
  if (header.length === 0) throw bad('missing');
  // Node and fetch join repeated headers with ", "; a compact JWS has neither commas nor spaces.
  if (header.includes(',')) throw bad('multiple');
  return header;
}

/**
 * Checks a DPoP proof (RFC 9449, 4.3) against a request and the access token sent with it,
 * everything but replay and the token binding (see `createDpopChecker`). Throws VerifyError
 * `dpop_proof_invalid` with a `reason`; returns the key thumbprint, jti and iat.
 */
export function verifyDpopProof(proof: string, expect: DpopExpectation): DpopProof {
  if (typeof expect.accessToken !== 'string') throw new TypeError('accessToken must be a string');
  return checkProof(proof, expect, expect.accessToken);
}

/**
 * Checks a DPoP proof sent to a token endpoint (RFC 9449, 5): the same checks as
 * `verifyDpopProof` except `ath`, since no access token exists yet. Replay is left to
 * `rememberProof`; the returned `jkt` is what the issued token's `cnf.jkt` names.
 */
export function verifyTokenRequestProof(proof: string, expect: DpopTokenRequestExpectation): DpopProof {
  return checkProof(proof, expect, undefined);
}

function checkProof(
  proof: string,
  expect: DpopTokenRequestExpectation,
  accessToken: string | undefined,
): DpopProof {
  const maxBytes = expect.maxProofBytes ?? DPOP_DEFAULT_MAX_PROOF_BYTES;
  if (typeof proof !== 'string' || proof.length === 0) throw bad('missing');
  if (proof.length > maxBytes) throw bad('too_large');
  const dot1 = proof.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : proof.indexOf('.', dot1 + 1);
  if (dot2 < 0 || proof.indexOf('.', dot2 + 1) >= 0) throw bad('malformed');
  const header = parseSegment(proof.slice(0, dot1));
  if (header['typ'] !== 'dpop+jwt') throw bad('typ');
  const alg = header['alg'];
  if (typeof alg !== 'string' || !DPOP_ALGORITHMS.includes(alg)) throw bad('alg');
  if ('crit' in header || 'b64' in header) throw bad('crit');
  const { key, x, y } = importProofKey(header['jwk']);

  const sig = decodeStrict(proof.slice(dot2 + 1));
  if (sig === undefined || !es256ScalarsInRange(sig)) throw bad('signature');
  let ok: boolean;
  try {
    ok = cryptoVerify(
      'sha256',
      Buffer.from(proof.slice(0, dot2), 'latin1'),
      { key, dsaEncoding: 'ieee-p1363' },
      sig,
    );
  } catch {
    ok = false;
  }
  if (!ok) throw bad('signature');

  const claims = parseSegment(proof.slice(dot1 + 1, dot2));
  if (typeof claims['htm'] !== 'string' || claims['htm'] !== expect.method) throw bad('htm');
  const htu = typeof claims['htu'] === 'string' ? normalizeHtu(claims['htu']) : undefined;
  const want = normalizeHtu(expect.url);
  if (htu === undefined || want === undefined || htu !== want) throw bad('htu');
  const iat = claims['iat'];
  const nowS = expect.nowMs / 1000;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw bad('iat');
  if (iat > nowS + (expect.maxSkewSeconds ?? DPOP_DEFAULT_MAX_SKEW_SECONDS)) throw bad('iat');
  if (iat < nowS - (expect.maxAgeSeconds ?? DPOP_DEFAULT_MAX_AGE_SECONDS)) throw bad('iat');
  const jti = claims['jti'];
  if (typeof jti !== 'string' || jti.length < MIN_JTI || jti.length > MAX_JTI) throw bad('jti');
  if (accessToken !== undefined) {
    const ath = claims['ath'];
    if (typeof ath !== 'string' || !safeEqual(ath, accessTokenHash(accessToken))) throw bad('ath');
  }
  return { jkt: jwkThumbprint({ x, y }), jti, iat };
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** The `cnf.jkt` of verified claims, when the token is DPoP-bound. */
export function boundJkt(claims: AccessTokenClaims): string | undefined {
  const jkt = claims.cnf?.['jkt'];
  return typeof jkt === 'string' ? jkt : undefined;
}

/**
 * A `confirmation` policy for `createVerifier` when the middleware checks DPoP: lets through
 * tokens whose `cnf` is exactly `{ jkt }` with a well-formed thumbprint (the middleware then
 * requires the DPoP scheme and a matching proof for them); any other `cnf` stays refused.
 */
export const dpopConfirmation: Exclude<ConfirmationPolicy, string> = (cnf) => {
  const keys = Object.keys(cnf);
  const jkt = cnf['jkt'];
  if (keys.length !== 1 || typeof jkt !== 'string' || !JKT.test(jkt)) {
    throw new VerifyError('unsupported_confirmation');
  }
};

/**
 * Remembers proof ids for the replay window. Share one (e.g. in Redis: `SET key 1 NX PXAT exp`)
 * between the instances of an API that sit behind one load balancer.
 */
export interface DpopReplayStore {
  /**
   * Atomically: false when `id` is already recorded and not expired; otherwise records it until
   * `expiresAtMs` and returns true. Throw (or reject) when the store cannot answer: the request is
   * then refused with 503 `dpop_replay_unavailable` (fail closed).
   */
  remember(id: string, expiresAtMs: number, nowMs: number): boolean | Promise<boolean>;
}

/** How long a proof's id is remembered: as long as a proof checked now could still pass the iat check. */
export interface DpopReplayWindow {
  maxAgeSeconds?: number;
  maxSkewSeconds?: number;
}

/**
 * Records a checked proof's id (per key thumbprint) in `replay`. Throws `dpop_replayed` when it
 * was seen before in the window, `dpop_replay_unavailable` (with the store's error as `cause`)
 * when the store cannot answer.
 */
export async function rememberProof(
  replay: DpopReplayStore,
  proof: DpopProof,
  nowMs: number,
  window: DpopReplayWindow = {},
): Promise<void> {
  const lifetimeS =
    (window.maxAgeSeconds ?? DPOP_DEFAULT_MAX_AGE_SECONDS) +
    (window.maxSkewSeconds ?? DPOP_DEFAULT_MAX_SKEW_SECONDS) +
    1;
  let fresh: boolean;
  try {
    fresh = await replay.remember(`${proof.jkt}:${proof.jti}`, nowMs + lifetimeS * 1000, nowMs);
  } catch (cause) {
    throw new VerifyError('dpop_replay_unavailable', { cause });
  }
  if (fresh !== true) throw new VerifyError('dpop_replayed');
}

/**
 * In-memory replay store, bounded. Entries are recorded with one fixed lifetime, so insertion
 * order is expiry order and expired ids are dropped from the front. When it is full of live ids
 * it refuses to answer (503) rather than forget an id early, which would let that proof replay.
 */
export class MemoryReplayStore implements DpopReplayStore {
  readonly max: number;
  private readonly entries = new Map<string, number>();

  constructor(options: { max?: number } = {}) {
    const max = options.max ?? 100_000;
    if (!Number.isInteger(max) || max < 1) throw new TypeError('max must be a positive integer');
    this.max = max;
  }

  get size(): number {
    return this.entries.size;
  }

  remember(id: string, expiresAtMs: number, nowMs: number): boolean {
    for (const [k, exp] of this.entries) {
      if (exp > nowMs) break;
      this.entries.delete(k);
    }
    const seen = this.entries.get(id);
    if (seen !== undefined && seen > nowMs) return false;
    if (seen === undefined && this.entries.size >= this.max) {
      throw new Error('DPoP replay store is full');
    }
    this.entries.delete(id);
    this.entries.set(id, expiresAtMs);
    return true;
  }

  clear(): void {
    this.entries.clear();
  }
}

export interface DpopCheckerOptions {
  /**
   * The API's external base URL, as clients address it (`https://api.example.com`, optionally with
   * a path prefix that a proxy strips). Required: the expected `htu` never comes from the request's
   * `Host` header, or a proof sent to one API could be replayed to another by naming its host.
   */
  publicUrl: string;
  /** How old a proof's `iat` may be, seconds. Default 300. */
  maxAgeSeconds?: number;
  /** How far in the future a proof's `iat` may be, seconds. Default 60. */
  maxSkewSeconds?: number;
  /** `DPoP` header values longer than this are refused before decoding. Default 4096. */
  maxProofBytes?: number;
  /** Where seen proof ids are kept. Default: a MemoryReplayStore of 100 000 entries. */
  replay?: DpopReplayStore;
  /** Milliseconds since the epoch; for tests. */
  clock?: () => number;
}

/** The parts of an HTTP request a DPoP check needs. */
export interface DpopRequest {
  method: string;
  /** Request target as received (`/path?query`), or an absolute URL (only its path is used). */
  url: string;
  /** The `DPoP` header: a string, or every value when the header is repeated. */
  proof: string | readonly string[] | undefined | null;
  /** The token of `Authorization: DPoP <token>`. */
  accessToken: string;
}

export interface DpopChecker {
  /** Stateless checks of the proof against the request. Throws `dpop_proof_invalid`. */
  checkProof(request: DpopRequest): DpopProof;
  /**
   * After the access token has been verified: the token must be bound (`cnf.jkt`) to the proof's
   * key, and the proof must be new. Throws `dpop_token_unbound`, `dpop_binding_mismatch`,
   * `dpop_replayed` or `dpop_replay_unavailable`.
   */
  confirm(proof: DpopProof, claims: AccessTokenClaims): Promise<void>;
  readonly publicUrl: string;
}

export function createDpopChecker(options: DpopCheckerOptions): DpopChecker {
  const publicUrl = options?.publicUrl;
  if (typeof publicUrl !== 'string' || normalizeHtu(publicUrl) === undefined)
    throw new TypeError("publicUrl (the API's external base URL) must be an absolute http(s) URL");
  const maxAge = options.maxAgeSeconds ?? DPOP_DEFAULT_MAX_AGE_SECONDS;
  const maxSkew = options.maxSkewSeconds ?? DPOP_DEFAULT_MAX_SKEW_SECONDS;
  const maxProofBytes = options.maxProofBytes ?? DPOP_DEFAULT_MAX_PROOF_BYTES;
  if (!(Number.isFinite(maxAge) && maxAge > 0 && maxAge <= 3600))
    throw new TypeError('maxAgeSeconds must be in (0, 3600]');
  if (!(Number.isFinite(maxSkew) && maxSkew >= 0 && maxSkew <= 300))
    throw new TypeError('maxSkewSeconds must be 0..300');
  if (!(Number.isInteger(maxProofBytes) && maxProofBytes >= 512 && maxProofBytes <= 65536))
    throw new TypeError('maxProofBytes must be 512..65536');
  const clock = options.clock ?? Date.now;
  const replay = options.replay ?? new MemoryReplayStore();
  return {
    publicUrl,
    checkProof(request) {
      const proof = singleProof(request.proof, maxProofBytes);
      const url = requestHtu(publicUrl, request.url);
      if (url === undefined) throw bad('htu');
      return verifyDpopProof(proof, {
        method: request.method,
        url,
        accessToken: request.accessToken,
        nowMs: clock(),
        maxAgeSeconds: maxAge,
        maxSkewSeconds: maxSkew,
        maxProofBytes,
      });
    },
    async confirm(proof, claims) {
      const jkt = boundJkt(claims);
      if (jkt === undefined) throw new VerifyError('dpop_token_unbound');
      if (!safeEqual(jkt, proof.jkt)) throw new VerifyError('dpop_binding_mismatch');
      await rememberProof(replay, proof, clock(), { maxAgeSeconds: maxAge, maxSkewSeconds: maxSkew });
    },
  };
}
