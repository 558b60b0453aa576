export type { Algorithm, AsymmetricAlgorithm, HmacAlgorithm } from './algorithms.js';
export { isStrictBase64url } from './base64url.js';
export type { AccessTokenClaims } from './claims.js';
export { scopesOf } from './claims.js';
export {
  accessTokenHash,
  boundJkt,
  createDpopChecker,
  DPOP_ALGORITHMS,
  type DpopChecker,
  type DpopCheckerOptions,
  type DpopExpectation,
  type DpopProof,
  type DpopReplayStore,
  type DpopReplayWindow,
  type DpopRequest,
  type DpopTokenRequestExpectation,
  dpopConfirmation,
  jwkThumbprint,
  MemoryReplayStore,
  normalizeHtu,
  rememberProof,
  requestHtu,
  singleProof,
  verifyDpopProof,
  verifyTokenRequestProof,
} from './dpop.js';
export {
  type DpopFailureReason,
  isVerifyError,
  UNAVAILABLE_CODES,
  VerifyError,
  type VerifyErrorCode,
} from './errors.js';
export { RevocationFeedClient, type RevocationFeedClientOptions } from './feed.js';
export { JwksClient, type JwksClientOptions } from './jwks.js';
export type { PublicJwk } from './keys.js';
export {
  type AuthFailure,
  type AuthOptions,
  type AuthOutcome,
  type AuthRequest,
  authenticate,
  authenticateRequest,
  bearerToken,
  checkRoles,
  checkScopes,
  failureFor,
} from './middleware/core.js';
export {
  parseRevocationEntries,
  parseRevocationEntry,
  type RevocableClaims,
  type RevocationChecker,
  type RevocationEntry,
  RevocationSet,
  type RevocationSetOptions,
} from './revocation.js';
export { type SseEvent, SseParser } from './sse.js';
export {
  type ConfirmationPolicy,
  createVerifier,
  type JwksSource,
  type Verifier,
  type VerifierOptions,
} from './verifier.js';
