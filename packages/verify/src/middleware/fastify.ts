import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AccessTokenClaims } from '../claims.js';
import type { Verifier } from '../verifier.js';
import { type AuthFailure, type AuthOptions, authenticateRequest, checkRoles, checkScopes } from './core.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Claims of the verified access token, set by `fastifyAuth`. */
    auth?: AccessTokenClaims;
  }
}

/** The claims `fastifyAuth` put on the request, if any. */
export function fastifyClaims(request: FastifyRequest): AccessTokenClaims | undefined {
  return request.auth;
}

function send(reply: FastifyReply, f: AuthFailure): FastifyReply {
  return reply.code(f.status).headers(f.headers).send(f.body);
}

/**
 * Fastify preHandler: verifies the Bearer token (or, with `options.dpop`, a DPoP-bound token and
 * its proof) and sets `request.auth`, or answers 401/503. The expected DPoP `htu` is the checker's
 * `publicUrl` plus the request path.
 */
export function fastifyAuth(verifier: Verifier, options: AuthOptions = {}): preHandlerAsyncHookHandler {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const out = await authenticateRequest(
      verifier,
      {
        method: request.method,
        url: request.url,
        authorization: request.headers.authorization,
        dpop: request.headers.dpop,
      },
      options,
    );
    if (!out.ok) return send(reply, out.failure);
    request.auth = out.claims;
  };
}

/** preHandler answering 403 `insufficient_scope` unless `request.auth` carries every scope. */
export function fastifyRequireScopes(
  scopes: readonly string[],
  options: AuthOptions = {},
): preHandlerAsyncHookHandler {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const f = checkScopes(fastifyClaims(request), scopes, options);
    if (f) return send(reply, f);
  };
}

/** preHandler answering 403 `insufficient_scope` unless `request.auth` has one of the roles. */
export function fastifyRequireRoles(
  anyOf: readonly string[],
  options: AuthOptions = {},
): preHandlerAsyncHookHandler {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const f = checkRoles(fastifyClaims(request), anyOf, options);
    if (f) return send(reply, f);
  };
}
