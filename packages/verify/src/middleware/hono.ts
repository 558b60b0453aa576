import type { MiddlewareHandler } from 'hono';
import type { AccessTokenClaims } from '../claims.js';
import type { Verifier } from '../verifier.js';
import { type AuthFailure, type AuthOptions, authenticateRequest, checkRoles, checkScopes } from './core.js';

/** Context variables set by `honoAuth`: read the claims with `c.get('auth')`. */
export type TesseraHonoEnv = { Variables: { auth: AccessTokenClaims } };

function respond(f: AuthFailure): Response {
  return new Response(JSON.stringify(f.body), {
    status: f.status,
    headers: { 'content-type': 'application/json', ...f.headers },
  });
}

/**
 * Hono middleware: verifies the Bearer token (or, with `options.dpop`, a DPoP-bound token and its
 * proof) and sets `c.get('auth')`, or answers 401/503. The expected DPoP `htu` is the checker's
 * `publicUrl` plus the request path.
 */
export function honoAuth(verifier: Verifier, options: AuthOptions = {}): MiddlewareHandler<TesseraHonoEnv> {
  return async (c, next) => {
    const out = await authenticateRequest(
      verifier,
      {
        method: c.req.method,
        url: c.req.url,
        authorization: c.req.header('authorization'),
        dpop: c.req.header('dpop'),
      },
      options,
    );
    if (!out.ok) return respond(out.failure);
    c.set('auth', out.claims);
    await next();
  };
}

/** Answers 403 `insufficient_scope` unless the claims carry every scope. */
export function honoRequireScopes(
  scopes: readonly string[],
  options: AuthOptions = {},
): MiddlewareHandler<TesseraHonoEnv> {
  return async (c, next) => {
    const f = checkScopes(c.get('auth'), scopes, options);
    if (f) return respond(f);
    await next();
  };
}

/** Answers 403 `insufficient_scope` unless the claims have one of the roles. */
export function honoRequireRoles(
  anyOf: readonly string[],
  options: AuthOptions = {},
): MiddlewareHandler<TesseraHonoEnv> {
  return async (c, next) => {
    const f = checkRoles(c.get('auth'), anyOf, options);
    if (f) return respond(f);
    await next();
  };
}
