/**
 * Building requests to the account server: pure functions from inputs to `{url, init}`, no I/O.
 * The client feeds them to whatever `fetch` it was given; tests can inspect them directly.
 */

export type Mode = 'session' | 'token';
export type Delivery = 'cookie' | 'header';

export interface HttpRequest {
  url: string;
  init: RequestInit;
}

/** How a request proves who is asking. */
export interface Credentials {
  /** `Authorization: Bearer` value: an access token or a header-delivered session token. */
  bearer?: string | undefined;
  /** Send and accept cookies (`credentials: 'include'`), for cookie delivery. */
  cookies?: boolean;
  /** `X-CSRF-Token`, needed on cookie-authenticated writes. */
  csrfToken?: string | undefined;
}

const NONE: Credentials = {};

function build(base: string, method: string, path: string, creds: Credentials, body?: unknown): HttpRequest {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (creds.bearer !== undefined) headers.authorization = `Bearer ${creds.bearer}`;
  if (creds.csrfToken !== undefined && method !== 'GET') headers['x-csrf-token'] = creds.csrfToken;
  const init: RequestInit = {
    method,
    headers,
    credentials: creds.cookies ? 'include' : 'omit',
    cache: 'no-store',
    // Account answers never need a Referer, and tokens never go in URLs anyway.
    referrerPolicy: 'no-referrer',
  };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return { url: `${base.replace(/\/+$/, '')}${path}`, init };
}

export function registerRequest(
  base: string,
  input: { username: string; password: string; email?: string | undefined },
): HttpRequest {
  const body: Record<string, string> = { username: input.username, password: input.password };
  if (input.email !== undefined) body.email = input.email;
  return build(base, 'POST', '/auth/register', NONE, body);
}

export function loginRequest(
  base: string,
  input: { username: string; password: string; mode: Mode; delivery: Delivery },
): HttpRequest {
  const { username, password, mode, delivery } = input;
  return build(
    base,
    'POST',
    '/auth/login',
    { cookies: delivery === 'cookie' },
    { username, password, mode, delivery },
  );
}

/** Header delivery sends the refresh token in the body; cookie delivery sends the cookie and the CSRF token. */
export function refreshRequest(
  base: string,
  from: { refreshToken: string } | { csrfToken: string },
): HttpRequest {
  if ('refreshToken' in from)
    return build(base, 'POST', '/auth/refresh', NONE, { refresh_token: from.refreshToken });
  return build(base, 'POST', '/auth/refresh', { cookies: true, csrfToken: from.csrfToken });
}

/** The CSRF token of the session or refresh cookie this browser holds (after a reload). */
export function csrfRequest(base: string): HttpRequest {
  return build(base, 'GET', '/auth/csrf', { cookies: true });
}

export function logoutRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'POST', '/auth/logout', creds);
}

export function logoutAllRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'POST', '/auth/logout-all', creds);
}

export function meRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'GET', '/auth/me', creds);
}

export function sessionsRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'GET', '/auth/sessions', creds);
}

export function endSessionRequest(base: string, creds: Credentials, id: string): HttpRequest {
  return build(base, 'DELETE', `/auth/sessions/${encodeURIComponent(id)}`, creds);
}

/** The OAuth grants the user gave to apps. */
export function grantsRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'GET', '/auth/grants', creds);
}

/** Takes back one app's access: the grant and every token issued under it. */
export function revokeGrantRequest(base: string, creds: Credentials, id: string): HttpRequest {
  return build(base, 'DELETE', `/auth/grants/${encodeURIComponent(id)}`, creds);
}

/** The upstream identities linked to the account. */
export function identitiesRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'GET', '/auth/identities', creds);
}

/** Unlinks one upstream identity; refused (`last_sign_in_method`) when it is the only way in. */
export function unlinkIdentityRequest(base: string, creds: Credentials, id: string): HttpRequest {
  return build(base, 'DELETE', `/auth/identities/${encodeURIComponent(id)}`, creds);
}

/**
 * Where a browser starts signing in through a provider (`GET /auth/providers/{id}/start`):
 * `link` links it to the account signed in in this browser instead.
 */
export function providerStartUrl(
  base: string,
  provider: string,
  options: { mode?: 'session' | 'token'; next?: string; link?: boolean } = {},
): string {
  const url = new URL(`/auth/providers/${encodeURIComponent(provider)}/start`, base);
  if (options.mode) url.searchParams.set('mode', options.mode);
  if (options.next) url.searchParams.set('next', options.next);
  if (options.link) url.searchParams.set('link', '1');
  return url.href;
}

export function changePasswordRequest(
  base: string,
  creds: Credentials,
  input: { currentPassword: string; newPassword: string },
): HttpRequest {
  return build(base, 'POST', '/auth/password', creds, {
    current_password: input.currentPassword,
    new_password: input.newPassword,
  });
}

/** Asks for a password reset mail; answers the same whether or not the address has an account. */
export function forgotPasswordRequest(base: string, email: string): HttpRequest {
  return build(base, 'POST', '/auth/password/forgot', NONE, { email });
}

/** Sets a new password with the token of a reset link (`/reset-password?token=…`). */
export function resetPasswordRequest(base: string, input: { token: string; password: string }): HttpRequest {
  return build(base, 'POST', '/auth/password/reset', NONE, { token: input.token, password: input.password });
}

/** Redeems the token of a mailed link: a verification, a new address's confirmation, or an undo. */
export function verifyEmailRequest(base: string, token: string): HttpRequest {
  return build(base, 'POST', '/auth/email/verify', NONE, { token });
}

/** The signed-in user's address and whether it is verified. */
export function emailRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'GET', '/auth/email', creds);
}

/** Asks for a new verification mail for the signed-in user's address. */
export function requestVerificationRequest(base: string, creds: Credentials): HttpRequest {
  return build(base, 'POST', '/auth/email/verify/request', creds, {});
}

/** Verifies the signed-in user's address with the six-digit code of the mail. */
export function verifyEmailCodeRequest(base: string, creds: Credentials, code: string): HttpRequest {
  return build(base, 'POST', '/auth/email/verify/code', creds, { code });
}

/** Asks to move the signed-in user's account to a new address (confirmed from there). */
export function changeEmailRequest(base: string, creds: Credentials, email: string): HttpRequest {
  return build(base, 'POST', '/auth/email/change', creds, { email });
}
