/**
 * Stable error codes of the account server: the one list. The OpenAPI document, the HTTP
 * reference and the client's code list are generated from it. Tests assert these, never the message.
 */
export const ERROR_CODES = [
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

export type ErrorCode = (typeof ERROR_CODES)[number];

const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  weak_password: 400,
  username_taken: 409,
  invalid_credentials: 401,
  too_many_attempts: 429,
  too_many_streams: 429,
  invalid_refresh_token: 401,
  refresh_token_reused: 401,
  unauthorized: 401,
  invalid_token: 401,
  csrf_failed: 403,
  forbidden: 403,
  not_found: 404,
  unsupported_media_type: 415,
  payload_too_large: 413,
  headers_too_large: 431,
  request_timeout: 408,
  unavailable: 503,
  internal_error: 500,
  provider_state_invalid: 400,
  provider_issuer_mismatch: 400,
  provider_rejected: 400,
  provider_response_invalid: 502,
  provider_unavailable: 502,
  identity_taken: 409,
  last_sign_in_method: 409,
  password_not_set: 409,
  email_taken: 409,
  invalid_email_token: 400,
  email_not_verified: 403,
};

/**
 * A coded error safe to show to clients: the message never carries a secret, a token or a password.
 * `detail` is for logs only.
 */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;
  readonly detail: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retryAfterSeconds?: number; detail?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'TesseraError';
    this.code = code;
    this.status = STATUS[code];
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.detail = options.detail;
  }
}

/** Raised by a store that cannot be reached; the HTTP layer turns it into 503 and fails closed. */
export class StoreUnavailableError extends TesseraError {
  constructor(cause?: unknown) {
    super('unavailable', 'The service is temporarily unavailable.', { cause, detail: String(cause) });
    this.name = 'StoreUnavailableError';
  }
}

export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}
