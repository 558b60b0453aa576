/**
 * Every way a token can be refused, as a stable code. Callers `switch` on `err.code`;
 * messages are for humans and never contain token or key material.
 */
export type VerifyErrorCode =
  | 'token_missing'
  | 'token_too_large'
  | 'token_malformed'
  | 'unsupported_alg'
  | 'unsupported_header'
  | 'invalid_type'
  | 'unknown_kid'
  | 'invalid_signature'
  | 'invalid_claims'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'unsupported_confirmation'
  | 'token_revoked'
  | 'feed_stale'
  | 'jwks_unavailable';

const MESSAGES: Record<VerifyErrorCode, string> = {
  token_missing: 'no access token',
  token_too_large: 'token exceeds the size limit',
  token_malformed: 'token is not a well-formed compact JWS',
  unsupported_alg: 'token algorithm is not allowed',
  unsupported_header: 'token header carries a parameter this verifier refuses',
  invalid_type: 'token is not an access token (typ must be at+jwt)',
  unknown_kid: 'token key id names no trusted key',
  invalid_signature: 'token signature is invalid',
  invalid_claims: 'token claims are missing or have the wrong type',
  invalid_issuer: 'token issuer is not trusted',
  invalid_audience: 'token audience does not match',
  token_expired: 'token has expired',
  token_not_yet_valid: 'token is not valid yet',
  unsupported_confirmation: 'token is bound to a key (cnf) and proof of possession is not supported',
  token_revoked: 'token has been revoked',
  feed_stale: 'revocation feed is silent; cannot confirm the token is not revoked',
  jwks_unavailable: 'trusted keys could not be loaded',
};

/** Codes that mean "we could not decide" rather than "this token is bad" (HTTP 503, not 401). */
export const UNAVAILABLE_CODES: ReadonlySet<VerifyErrorCode> = new Set(['feed_stale', 'jwks_unavailable']);

export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  readonly code: VerifyErrorCode;

  constructor(code: VerifyErrorCode, options?: { cause?: unknown }) {
    super(MESSAGES[code], options);
    this.code = code;
  }
}

export function isVerifyError(err: unknown): err is VerifyError {
  return err instanceof VerifyError;
}
