import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import { TesseraError } from '../../errors.js';
import { signedIn } from '../../http/guard.js';
import { GUARD_ERRORS, ID_PARAMS, SIGNED_IN, SIGNED_IN_WRITE, TIMESTAMP } from '../../http/routes/shared.js';
import { array, errors, JSON_BODY_ERRORS, noBody, object, string } from '../../openapi/schemas.js';
import { noStore, type OAuthRouteOptions } from './protocol.js';

const GRANT = object({
  id: string('The grant id (`sid` of its tokens).'),
  client_id: string(),
  client_name: string('The client’s registered name.'),
  scope: string('The granted scopes, space-separated.'),
  created_at: TIMESTAMP,
  updated_at: TIMESTAMP,
});

/** The signed-in user's grants to OAuth clients: list them, revoke one. */
export const grantRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: OAuthRouteOptions }> = async (
  app,
  { service, guard },
) => {
  app.addHook('preHandler', guard.requireAuth);

  app.get(
    '/auth/grants',
    {
      schema: {
        summary: 'My OAuth grants',
        description: 'The apps the signed-in user allowed to use their account, with the scopes.',
        tags: ['account'],
        security: SIGNED_IN,
        response: {
          200: object({ grants: array(GRANT) }, { description: 'The live grants.' }),
          ...errors(...GUARD_ERRORS),
        },
      },
    },
    async (request, reply) => {
      return noStore(reply).send({ grants: await service.listUserGrants(signedIn(request).user.id) });
    },
  );

  app.delete(
    '/auth/grants/:id',
    {
      schema: {
        params: ID_PARAMS,
        summary: 'Revoke one of my grants',
        description: 'Ends the grant and every token issued under it (through the revocation feed).',
        tags: ['account'],
        security: SIGNED_IN_WRITE,
        response: {
          204: noBody('The grant is revoked.'),
          ...errors(...JSON_BODY_ERRORS, ...GUARD_ERRORS, 'not_found'),
        },
      },
    },
    async (request, reply) => {
      if (!(await service.revokeUserGrant(signedIn(request).user.id, request.params.id)))
        throw new TesseraError('not_found', 'No such grant.');
      return reply.code(204).send();
    },
  );
};
