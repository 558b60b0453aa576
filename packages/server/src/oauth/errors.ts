/** RFC 6749 §5.2 / §4.1.2.1, RFC 6750, RFC 9449 and OIDC error codes: every one the OAuth endpoints send. */
export const OAUTH_ERROR_CODES = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'unsupported_response_type',
  'invalid_scope',
  'invalid_target',
  'access_denied',
  'login_required',
  'consent_required',
  'request_not_supported',
  'request_uri_not_supported',
  'invalid_token',
  'insufficient_scope',
  'invalid_dpop_proof',
  'temporarily_unavailable',
  'server_error',
] as const;

export type OAuthErrorCode = (typeof OAUTH_ERROR_CODES)[number];

const STATUS: Partial<Record<OAuthErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  temporarily_unavailable: 503,
  server_error: 500,
};

/** The status an OAuth error is sent with; 400 unless RFC 6749 / 6750 say otherwise. */
export function oauthStatusOf(code: OAuthErrorCode): number {
  return STATUS[code] ?? 400;
}

/**
 * An OAuth error safe to show to clients. `description` goes into `error_description` and never
 * names a secret or a token; `detail` is for logs only.
 */
export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  readonly status: number;
  readonly detail: string | undefined;

  constructor(code: OAuthErrorCode, description: string, options: { detail?: string } = {}) {
    super(description);
    this.name = 'OAuthError';
    this.code = code;
    this.status = oauthStatusOf(code);
    this.detail = options.detail;
  }
}
