import type { FastifyRequest } from 'fastify';
import type { Authenticated, AuthService } from '../domain/auth.js';
import { TesseraError } from '../errors.js';
import { type CookieNames, readCookie } from './cookies.js';
import { originAllowedForWrite, requestSource } from './security.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Set by the guard's `requireAuth` preHandler. Not `auth`: that is where
     * `@tessera/verify/fastify` puts access-token claims, with another type.
     */
    principal?: Authenticated;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * How a request proves it acts for a Tessera user: a Bearer access or session token, or the
 * session cookie. The one CSRF rule: safe methods (GET, HEAD, OPTIONS) skip it; every other
 * cookie-authenticated request needs an allowed Origin (or Sec-Fetch-Site: same-origin) and the
 * session-bound X-CSRF-Token. A session cookie slides its session's idle end only on a request
 * that passed that rule and that no other origin sent.
 */
export interface AuthGuard {
  /** preHandler: authenticates the request and sets `request.principal`, or throws 401/403. */
  requireAuth(request: FastifyRequest): Promise<void>;
  /** Bearer or session cookie; throws `invalid_token`, `unauthorized` or `csrf_failed`. */
  authenticate(request: FastifyRequest): Promise<Authenticated>;
  /**
   * The CSRF rule for a request authenticated by cookies that name the sessions `sessionIds`: the
   * X-CSRF-Token must be bound to one of them (a browser may hold a session cookie and a refresh
   * cookie; a foreign page can read the token of neither). With none (a cookie no live session
   * answers for, so no CSRF token to check) the Origin rule alone.
   */
  requireCsrf(request: FastifyRequest, sessionIds: readonly string[]): void;
  /**
   * For a navigation (a GET) that acts for the signed-in browser: refused with `csrf_failed`
   * when the browser says another origin sent it; a typed or bookmarked address passes.
   */
  refuseForeignNavigation(request: FastifyRequest): void;
  /** The session the session cookie names, if any; no CSRF check and no touch. */
  cookieSession(request: FastifyRequest): Promise<Authenticated | null>;
  /**
   * Marks the session `who` in use (slides its idle end), except for a session cookie on a request
   * another origin sent in the background (a fetch, an image, a frame, a form): a top-level
   * navigation from another site, such as an OAuth client sending the browser to /oauth/authorize,
   * is the user's own and counts. A cookie-authenticated write calls it only once its CSRF check
   * passed.
   */
  touch(request: FastifyRequest, who: Authenticated): Promise<void>;
  /** The exact-match allow-list of browser origins. */
  isAllowedOrigin(origin: string | undefined): boolean;
}

export interface AuthGuardOptions {
  auth: AuthService;
  cookies: CookieNames;
  isAllowedOrigin: (origin: string | undefined) => boolean;
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,8192})$/i.exec(header);
  if (!m) throw new TesseraError('invalid_token', 'The Authorization header must be "Bearer <token>".');
  return m[1];
}

export function authGuard({ auth, cookies, isAllowedOrigin }: AuthGuardOptions): AuthGuard {
  function requireCsrf(request: FastifyRequest, sessionIds: readonly string[]): void {
    if (SAFE_METHODS.has(request.method)) return;
    const presented = request.headers['x-csrf-token'];
    if (
      !originAllowedForWrite(request, isAllowedOrigin) ||
      (sessionIds.length > 0 && !sessionIds.some((id) => auth.checkCsrf(id, presented)))
    ) {
      throw new TesseraError(
        'csrf_failed',
        'Cross-site request refused: missing or wrong Origin or X-CSRF-Token.',
      );
    }
  }

  function refuseForeignNavigation(request: FastifyRequest): void {
    if (requestSource(request, isAllowedOrigin) === 'foreign')
      throw new TesseraError(
        'csrf_failed',
        'Cross-site request refused: start this from a page of this site.',
      );
  }

  async function cookieSession(request: FastifyRequest): Promise<Authenticated | null> {
    const cookie = readCookie(request, cookies.session);
    return cookie === undefined ? null : auth.authenticate(cookie, 'cookie');
  }

  async function touch(request: FastifyRequest, who: Authenticated): Promise<void> {
    if (
      who.via === 'session_cookie' &&
      requestSource(request, isAllowedOrigin) === 'foreign' &&
      !topLevelNavigation(request)
    )
      return;
    await auth.touch(who);
  }

  async function authenticate(request: FastifyRequest): Promise<Authenticated> {
    const token = bearer(request);
    let result: Authenticated | null;
    if (token !== undefined) {
      result = await auth.authenticate(token, 'bearer');
      if (!result) throw new TesseraError('invalid_token', 'The access or session token is not valid.');
    } else {
      result = await cookieSession(request);
      if (!result) throw new TesseraError('unauthorized', 'Sign in first.');
      requireCsrf(request, [result.session.id]);
    }
    await touch(request, result);
    return result;
  }

  return {
    isAllowedOrigin,
    authenticate,
    requireCsrf,
    refuseForeignNavigation,
    cookieSession,
    touch,
    async requireAuth(request) {
      request.principal = await authenticate(request);
    },
  };
}

/** The user `requireAuth` authenticated; a route without that preHandler is a programming error. */
export function signedIn(request: FastifyRequest): Authenticated {
  if (!request.principal)
    throw new Error(`${request.routeOptions.url} reads request.principal without requireAuth`);
  return request.principal;
}

/** A GET the browser says loads a page in its own window or tab (Fetch Metadata). */
function topLevelNavigation(request: FastifyRequest): boolean {
  return (
    request.method === 'GET' &&
    request.headers['sec-fetch-mode'] === 'navigate' &&
    request.headers['sec-fetch-dest'] === 'document'
  );
}
