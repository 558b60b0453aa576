import type { ServerErrorCode } from './server-codes.js';

/** The SDK's own codes: no answer, an answer it cannot read, or a code it does not know. */
export type SdkErrorCode = 'not_signed_in' | 'network_error' | 'bad_response' | 'http_error';

/**
 * Every way an SDK call can fail, as a stable code. Server answers keep the server's own code
 * (`invalid_credentials`, `csrf_failed`, ...: the generated server list); the rest are the SDK's.
 */
export type ClientErrorCode = ServerErrorCode | SdkErrorCode;

/** A coded failure; `message` is the server's (safe to show) or the SDK's, never a token. */
export class TesseraClientError extends Error {
  override readonly name = 'TesseraClientError';
  readonly code: ClientErrorCode;
  /** HTTP status, 0 when no answer arrived. */
  readonly status: number;
  /** Seconds from `Retry-After`, when the server sent one. */
  readonly retryAfter: number | undefined;

  constructor(
    code: ClientErrorCode,
    message: string,
    options: { status?: number; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = options.status ?? 0;
    this.retryAfter = options.retryAfter;
  }
}

export function isClientError(err: unknown): err is TesseraClientError {
  return err instanceof TesseraClientError;
}

/** The codes after which the stored login is gone and the user must sign in again. */
export const SIGNED_OUT_CODES: ReadonlySet<ClientErrorCode> = new Set([
  'invalid_refresh_token',
  'refresh_token_reused',
  'unauthorized',
  'invalid_token',
  'not_signed_in',
]);

const HUMAN: Record<ClientErrorCode, string> = {
  invalid_request: 'Something in the form is not valid. Check the fields and try again.',
  weak_password: 'That password is too weak.',
  username_taken: 'That username is already taken. Pick another one or sign in.',
  provider_state_invalid: 'That sign-in did not start in this browser, or took too long. Start it again.',
  provider_issuer_mismatch: 'The answer came from another provider than the one you picked. Start again.',
  provider_rejected: 'The provider refused the sign-in. Start it again.',
  provider_response_invalid: 'The provider sent an answer that could not be checked.',
  provider_unavailable: 'The sign-in provider cannot be reached right now. Try again later.',
  identity_taken: 'That provider account is linked to another Tessera account.',
  last_sign_in_method: 'This is your only way to sign in; set a password or link another provider first.',
  password_not_set: 'This account has no password; it signs in through a provider.',
  invalid_credentials: 'Wrong username or password.',
  too_many_attempts: 'Too many attempts. Wait a little and try again.',
  invalid_refresh_token: 'Your sign-in has expired. Please sign in again.',
  refresh_token_reused: 'For your safety this sign-in was ended. Please sign in again.',
  unauthorized: 'Please sign in.',
  invalid_token: 'Your sign-in has expired. Please sign in again.',
  csrf_failed:
    'The request was refused because it did not come from this site. Reload the page and try again.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'That item no longer exists.',
  too_many_streams: 'Too many open connections. Close a tab and try again.',
  unsupported_media_type: 'The request was sent in a form the server does not accept.',
  payload_too_large: 'What you sent is too large.',
  headers_too_large: 'The request was too large. Clearing this site’s cookies may help.',
  request_timeout: 'The request took too long. Check your connection and try again.',
  unavailable: 'The service is temporarily unavailable. Try again in a moment.',
  internal_error: 'Something went wrong on our side. Try again in a moment.',
  email_taken: 'Another account already uses that email address.',
  invalid_email_token: 'This link or code is no longer valid: it was used, or it expired. Ask for a new one.',
  email_not_verified: 'Confirm your email address first: follow the link we mailed you.',
  not_signed_in: 'Please sign in.',
  network_error: 'Could not reach the server. Check your connection and try again.',
  bad_response: 'The server sent an unexpected answer. Try again in a moment.',
  http_error: 'The request failed. Try again in a moment.',
};

/**
 * Text for people. `weak_password` keeps the server's message, which says what to change;
 * `too_many_attempts` names the wait when known.
 */
export function describeError(err: unknown): string {
  if (!isClientError(err)) return HUMAN.http_error;
  if (err.code === 'weak_password' && err.message) return err.message;
  if (err.code === 'too_many_attempts' && err.retryAfter !== undefined) {
    const minutes = Math.ceil(err.retryAfter / 60);
    return `Too many attempts. Try again in ${err.retryAfter < 90 ? `${err.retryAfter} seconds` : `${minutes} minutes`}.`;
  }
  return HUMAN[err.code];
}
