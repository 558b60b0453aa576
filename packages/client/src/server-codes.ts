// Generated from the account server’s ERROR_CODES by `npm run codes:client`; do not edit.

/** Every error code the account server can send, as `{"error": "<code>", "message": "…"}`. */
export const SERVER_ERROR_CODES = [
  'invalid_request',
  'weak_password',
  'username_taken',
  'invalid_credentials',
  'too_many_attempts',
  'too_many_streams',
  'invalid_refresh_token',
  'refresh_token_reused',
  'unauthorized',
  'invalid_token',
  'csrf_failed',
  'forbidden',
  'not_found',
  'unsupported_media_type',
  'payload_too_large',
  'headers_too_large',
  'request_timeout',
  'unavailable',
  'internal_error',
  'provider_state_invalid',
  'provider_issuer_mismatch',
  'provider_rejected',
  'provider_response_invalid',
  'provider_unavailable',
  'identity_taken',
  'last_sign_in_method',
  'password_not_set',
  'email_taken',
  'invalid_email_token',
  'email_not_verified',
] as const;

export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];
