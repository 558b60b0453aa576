// Compiled by the typecheck only (never run): a Fastify app that uses `fastifyAuth` sees the
// claims on `request.auth` with their type. The install test compiles a copy of this check
// against the packed package.
import type { AccessTokenClaims, Verifier } from '@tessera/verify';
import { fastifyAuth } from '@tessera/verify/fastify';
import type { FastifyInstance } from 'fastify';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export function protect(app: FastifyInstance, verifier: Verifier): void {
  app.get('/me', { preHandler: fastifyAuth(verifier) }, async (request) => {
    const typed: Equal<typeof request.auth, AccessTokenClaims | undefined> = true;
    return { sub: request.auth?.sub, typed };
  });
}
