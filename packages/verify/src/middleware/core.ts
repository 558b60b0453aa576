// Framework-free request authentication: the adapters for Express, Fastify and Hono only move
// headers and status codes between this and their own request/response objects.
import { type AccessTokenClaims, scopesOf } from '../claims.js';
import { DPOP_ALGORITHMS, type DpopChecker } from '../dpop.js';
import { UNAVAILABLE_CODES, VerifyError, type VerifyErrorCode } from '../errors.js';
import type { Verifier } from '../verifier.js';

export interface AuthOptions {
  /** `realm` of the `WWW-Authenticate` challenge. Default `tessera`. */
  realm?: string;
  /**
   * Accept DPoP-bound tokens (RFC 9449): `Authorization: DPoP <token>` plus a `DPoP` proof header,
   * checked by this checker (`createDpopChecker`; share one between routes, it holds the replay
   * cache). The verifier must let `cnf.jkt` through (`confirmation: dpopConfirmation`).
   * Without it the DPoP scheme is not recognised. Either way a token bound with `cnf.jkt` is never
   * accepted as a Bearer token.
   */
  dpop?: DpopChecker;
}

/** What the adapters read from a request. */
export interface AuthRequest {
  /** HTTP method, as received. */
  method: string;
  /** Request target as received (`/path?query`) or the absolute request URL. */
  url: string;
  authorization: string | readonly string[] | undefined | null;
  /** The `DPoP` header (repeated headers: all values, or one string joined with commas). */
  dpop?: string | readonly string[] | undefined | null;
}

/** A refusal ready to send: status, headers, JSON body `{error, message}`. */
export interface AuthFailure {
  status: 401 | 403 | 500 | 503;
  headers: Record<string, string>;
  body: { error: string; message: string };
}

export type AuthOutcome = { ok: true; claims: AccessTokenClaims } | { ok: false; failure: AuthFailure };

type Scheme = 'Bearer' | 'DPoP';

const MAX_HEADER = 70_000;
// Refusals about the proof (RFC 9449 7.1: `invalid_dpop_proof`); every other code is about the token.
const PROOF_CODES: ReadonlySet<VerifyErrorCode> = new Set([
  'dpop_proof_invalid',
  'dpop_replayed',
  'dpop_binding_mismatch',
]);

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '')}"`;
}

function challenge(scheme: Scheme, realm: string, params: Record<string, string> = {}): string {
  const all = scheme === 'DPoP' ? { algs: DPOP_ALGORITHMS.join(' '), ...params } : params;
  const parts = [`realm=${quote(realm)}`, ...Object.entries(all).map(([k, v]) => `${k}=${quote(v)}`)];
  return `${scheme} ${parts.join(', ')}`;
}

/**
 * The scheme and token of an `Authorization` header whose scheme is one of `schemes` (lower-case).
 * `undefined`: no credentials of those schemes; token `null`: such a header, malformed.
 */
function credentials(
  authorization: string | readonly string[] | undefined | null,
  schemes: readonly string[],
): { scheme: Scheme; token: string | null } | undefined {
  if (authorization === undefined || authorization === null || authorization === '') return undefined;
  if (typeof authorization !== 'string')
    return authorization.length === 0 ? undefined : { scheme: 'Bearer', token: null };
  if (authorization.length > MAX_HEADER) return { scheme: 'Bearer', token: null };
  const space = authorization.indexOf(' ');
  const name = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
  if (!schemes.includes(name)) return undefined;
  const scheme: Scheme = name === 'dpop' ? 'DPoP' : 'Bearer';
  const token = authorization.slice(space + 1).trim();
  if (space < 0 || token.length === 0 || /\s/.test(token)) return { scheme, token: null };
  return { scheme, token };
}

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750, 2.1).
 * `undefined`: no Bearer credentials at all; `null`: a Bearer header that is malformed.
 */
export function bearerToken(
  authorization: string | readonly string[] | undefined | null,
): string | undefined | null {
  return credentials(authorization, ['bearer'])?.token;
}

/**
 * 401 for a missing/invalid token or DPoP proof, 503 when validity cannot be decided (fail closed).
 * `scheme` is the one the request used: a refusal of `DPoP` credentials gets a DPoP challenge.
 */
export function failureFor(err: unknown, options: AuthOptions = {}, scheme: Scheme = 'Bearer'): AuthFailure {
  const realm = options.realm ?? 'tessera';
  if (!(err instanceof VerifyError)) {
    return { status: 500, headers: {}, body: { error: 'internal_error', message: 'token check failed' } };
  }
  if (UNAVAILABLE_CODES.has(err.code)) {
    return { status: 503, headers: { 'retry-after': '5' }, body: { error: err.code, message: err.message } };
  }
  if (err.code === 'insufficient_scope') return insufficient(realm, err.scope ?? '');
  let header: string;
  if (err.code === 'token_missing') {
    header = challenge('Bearer', realm);
    if (options.dpop) header += `, ${challenge('DPoP', realm)}`;
  } else if (scheme === 'DPoP') {
    const error = PROOF_CODES.has(err.code) ? 'invalid_dpop_proof' : 'invalid_token';
    header = challenge('DPoP', realm, { error, error_description: err.code });
  } else {
    header = challenge('Bearer', realm, { error: 'invalid_token', error_description: err.code });
    if (options.dpop) header += `, ${challenge('DPoP', realm)}`;
  }
  return {
    status: 401,
    headers: { 'www-authenticate': header },
    body: { error: err.code, message: err.message },
  };
}

/**
 * Authenticates a request: `Authorization: Bearer <token>`, or with `options.dpop` also
 * `Authorization: DPoP <token>` with a `DPoP` proof. Never throws.
 */
export async function authenticateRequest(
  verifier: Verifier,
  request: AuthRequest,
  options: AuthOptions = {},
): Promise<AuthOutcome> {
  const dpop = options.dpop;
  const cred = credentials(request.authorization, dpop ? ['bearer', 'dpop'] : ['bearer']);
  const scheme = cred?.scheme ?? 'Bearer';
  try {
    if (cred === undefined) throw new VerifyError('token_missing');
    if (cred.token === null) throw new VerifyError('token_malformed');
    if (cred.scheme === 'Bearer' || dpop === undefined) {
      const claims = await verifier.verify(cred.token);
      // RFC 9449 7.2: a DPoP-bound token is never good as a bearer token, whatever the verifier's
      // confirmation policy lets through.
      if (claims.cnf !== undefined && 'jkt' in claims.cnf) throw new VerifyError('dpop_required');
      return { ok: true, claims };
    }
    // The proof first: no I/O, and a request without a good proof never reaches the key fetch.
    const proof = dpop.checkProof({
      method: request.method,
      url: request.url,
      proof: request.dpop,
      accessToken: cred.token,
    });
    const claims = await verifier.verify(cred.token);
    await dpop.confirm(proof, claims);
    return { ok: true, claims };
  } catch (err) {
    return { ok: false, failure: failureFor(err, options, scheme) };
  }
}

/** Verifies a request's Bearer token from its `Authorization` header alone. Never throws. */
export async function authenticate(
  verifier: Verifier,
  authorization: string | readonly string[] | undefined | null,
  options: AuthOptions = {},
): Promise<AuthOutcome> {
  const { dpop: _dpop, ...bearerOnly } = options;
  return authenticateRequest(verifier, { method: '', url: '', authorization }, bearerOnly);
}

function insufficient(realm: string, scope: string): AuthFailure {
  return {
    status: 403,
    headers: { 'www-authenticate': challenge('Bearer', realm, { error: 'insufficient_scope', scope }) },
    body: { error: 'insufficient_scope', message: 'the token lacks a required scope or role' },
  };
}

/** undefined when the claims carry every scope; otherwise a 403 (or 401 with no claims). */
export function checkScopes(
  claims: AccessTokenClaims | undefined,
  required: readonly string[],
  options: AuthOptions = {},
): AuthFailure | undefined {
  if (!claims) return failureFor(new VerifyError('token_missing'), options);
  const have = new Set(scopesOf(claims));
  return required.every((s) => have.has(s))
    ? undefined
    : insufficient(options.realm ?? 'tessera', required.join(' '));
}

/** undefined when the claims carry at least one of the roles; otherwise a 403 (or 401 with no claims). */
export function checkRoles(
  claims: AccessTokenClaims | undefined,
  anyOf: readonly string[],
  options: AuthOptions = {},
): AuthFailure | undefined {
  if (!claims) return failureFor(new VerifyError('token_missing'), options);
  const roles = claims.roles ?? [];
  return anyOf.some((r) => roles.includes(r)) ? undefined : insufficient(options.realm ?? 'tessera', '');
}
