import { VerifyError } from './errors.js';

/** The claims of a Tessera access token (RFC 9068 profile), as returned by a successful verify. */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly exp: number;
  readonly iat: number;
  readonly nbf?: number;
  readonly jti?: string;
  readonly sid?: string;
  /** Space-separated scopes. */
  readonly scope?: string;
  readonly roles?: readonly string[];
  /** Confirmation (RFC 7800), e.g. `{ jkt }` for DPoP-bound tokens. */
  readonly cnf?: Readonly<Record<string, unknown>>;
  readonly [claim: string]: unknown;
}

export interface ClaimRules {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly skew: number;
}

function optionalString(v: unknown): boolean {
  return v === undefined || typeof v === 'string';
}

/**
 * Checks registered and Tessera claims. `now` is in seconds. Throws VerifyError; returns the
 * same object typed once everything has been checked.
 */
export function checkClaims(
  payload: Record<string, unknown>,
  rules: ClaimRules,
  now: number,
): AccessTokenClaims {
  const { iss, aud, exp, iat, nbf, sub } = payload;
  // Number.isFinite: JSON.parse turns 1e400 into Infinity, which would never expire.
  if (!Number.isFinite(exp) || !Number.isFinite(iat) || (nbf !== undefined && !Number.isFinite(nbf))) {
    throw new VerifyError('invalid_claims');
  }
  if ((exp as number) <= now - rules.skew) throw new VerifyError('token_expired');
  if ((iat as number) > now + rules.skew || (nbf !== undefined && (nbf as number) > now + rules.skew)) {
    throw new VerifyError('token_not_yet_valid');
  }
  if (iss !== rules.issuer) throw new VerifyError('invalid_issuer');
  if (!audienceMatches(aud, rules.audiences)) throw new VerifyError('invalid_audience');
  if (typeof sub !== 'string' || sub.length === 0) throw new VerifyError('invalid_claims');
  if (
    !optionalString(payload['sid']) ||
    !optionalString(payload['jti']) ||
    !optionalString(payload['scope'])
  ) {
    throw new VerifyError('invalid_claims');
  }
  const roles = payload['roles'];
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) {
    throw new VerifyError('invalid_claims');
  }
  const cnf = payload['cnf'];
  if (cnf !== undefined && (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf))) {
    throw new VerifyError('invalid_claims');
  }
  return payload as AccessTokenClaims;
}

function audienceMatches(aud: unknown, expected: readonly string[]): boolean {
  if (typeof aud === 'string') return expected.includes(aud);
  if (!Array.isArray(aud) || aud.length === 0) return false;
  let hit = false;
  for (const a of aud) {
    if (typeof a !== 'string') return false;
    if (expected.includes(a)) hit = true;
  }
  return hit;
}

/** The scopes of a token as a list. */
export function scopesOf(claims: { readonly scope?: unknown }): string[] {
  return typeof claims.scope === 'string' ? claims.scope.split(' ').filter((s) => s.length > 0) : [];
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
