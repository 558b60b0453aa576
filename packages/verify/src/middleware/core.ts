// Framework-free request authentication: the adapters for Express, Fastify and Hono only move
// headers and status codes between this and their own request/response objects.
import { type AccessTokenClaims, scopesOf } from '../claims.js';
import { UNAVAILABLE_CODES, VerifyError } from '../errors.js';
import type { Verifier } from '../verifier.js';

export interface AuthOptions {
  /** `realm` of the `WWW-Authenticate` challenge. Default `tessera`. */
  realm?: string;
}

/** A refusal ready to send: status, headers, JSON body `{error, message}`. */
export interface AuthFailure {
  status: 401 | 403 | 500 | 503;
  headers: Record<string, string>;
  body: { error: string; message: string };
}

export type AuthOutcome = { ok: true; claims: AccessTokenClaims } | { ok: false; failure: AuthFailure };

const MAX_HEADER = 70_000;

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '')}"`;
}

function challenge(realm: string, params: Record<string, string> = {}): string {
  const parts = [`realm=${quote(realm)}`, ...Object.entries(params).map(([k, v]) => `${k}=${quote(v)}`)];
  return `Bearer ${parts.join(', ')}`;
}

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750, 2.1).
 * `undefined`: no Bearer credentials at all; `null`: a Bearer header that is malformed.
 */
export function bearerToken(
  authorization: string | readonly string[] | undefined | null,
): string | undefined | null {
  if (authorization === undefined || authorization === null || authorization === '') return undefined;
  if (typeof authorization !== 'string') return authorization.length === 0 ? undefined : null;
  if (authorization.length > MAX_HEADER) return null;
  const space = authorization.indexOf(' ');
  const scheme = space < 0 ? authorization : authorization.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') return undefined;
  const token = authorization.slice(space + 1).trim();
  if (space < 0 || token.length === 0 || /\s/.test(token)) return null;
  return token;
}

/** 401 for a missing/invalid token, 503 when validity cannot be decided (fail closed). */
export function failureFor(err: unknown, options: AuthOptions = {}): AuthFailure {
  const realm = options.realm ?? 'tessera';
  if (!(err instanceof VerifyError)) {
    return { status: 500, headers: {}, body: { error: 'internal_error', message: 'token check failed' } };
  }
  if (UNAVAILABLE_CODES.has(err.code)) {
    return { status: 503, headers: { 'retry-after': '5' }, body: { error: err.code, message: err.message } };
  }
  const headers =
    err.code === 'token_missing'
      ? { 'www-authenticate': challenge(realm) }
      : {
          'www-authenticate': challenge(realm, { error: 'invalid_token', error_description: err.code }),
        };
  return { status: 401, headers, body: { error: err.code, message: err.message } };
}

/** Verifies the request's Bearer token. Never throws. */
export async function authenticate(
  verifier: Verifier,
  authorization: string | readonly string[] | undefined | null,
  options: AuthOptions = {},
): Promise<AuthOutcome> {
  const token = bearerToken(authorization);
  try {
    if (token === undefined) throw new VerifyError('token_missing');
    if (token === null) throw new VerifyError('token_malformed');
    return { ok: true, claims: await verifier.verify(token) };
  } catch (err) {
    return { ok: false, failure: failureFor(err, options) };
  }
}

function insufficient(realm: string, scope: string): AuthFailure {
  return {
    status: 403,
    headers: { 'www-authenticate': challenge(realm, { error: 'insufficient_scope', scope }) },
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
