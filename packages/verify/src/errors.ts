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
  | 'insufficient_scope'
  | 'token_revoked'
  | 'feed_stale'
  | 'jwks_unavailable'
  // DPoP (RFC 9449), from the middleware when it checks proofs (see dpop.ts).
  | 'dpop_required'
  | 'dpop_token_unbound'
  | 'dpop_proof_invalid'
  | 'dpop_replayed'
  | 'dpop_binding_mismatch'
  | 'dpop_replay_unavailable';

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
  insufficient_scope: 'token lacks a scope this API requires',
  token_revoked: 'token has been revoked',
  feed_stale: 'revocation feed is silent; cannot confirm the token is not revoked',
  jwks_unavailable: 'trusted keys could not be loaded',
  dpop_required: 'token is bound to a key (cnf.jkt): send it with the DPoP scheme and a DPoP proof',
  dpop_token_unbound: 'token is not bound to a key, so it cannot be used with the DPoP scheme',
  dpop_proof_invalid: 'DPoP proof is missing or invalid',
  dpop_replayed: 'DPoP proof has been used before',
  dpop_binding_mismatch: 'DPoP proof is signed by a key other than the one the token is bound to',
  dpop_replay_unavailable: 'DPoP replay cache cannot answer; cannot confirm the proof is fresh',
};

/** Codes that mean "we could not decide" rather than "this token is bad" (HTTP 503, not 401). */
export const UNAVAILABLE_CODES: ReadonlySet<VerifyErrorCode> = new Set([
  'feed_stale',
  'jwks_unavailable',
  'dpop_replay_unavailable',
]);

/** Which check refused a DPoP proof (`dpop_proof_invalid`); fixed strings, for logs and tests. */
export type DpopFailureReason =
  | 'missing'
  | 'multiple'
  | 'too_large'
  | 'malformed'
  | 'typ'
  | 'alg'
  | 'crit'
  | 'jwk'
  | 'signature'
  | 'htm'
  | 'htu'
  | 'iat'
  | 'jti'
  | 'ath';

export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  readonly code: VerifyErrorCode;
  /** For `dpop_proof_invalid`: which check failed. Undefined for every other code. */
  readonly reason: DpopFailureReason | undefined;
  /** For `insufficient_scope`: the scopes required (for the `scope` challenge parameter). */
  readonly scope: string | undefined;

  constructor(
    code: VerifyErrorCode,
    options?: { cause?: unknown; reason?: DpopFailureReason; scope?: string },
  ) {
    super(MESSAGES[code], options !== undefined && 'cause' in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.reason = options?.reason;
    this.scope = options?.scope;
  }
}

export function isVerifyError(err: unknown): err is VerifyError {
  return err instanceof VerifyError;
}
