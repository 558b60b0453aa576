import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import { TesseraError } from '../../errors.js';
import { signedIn } from '../../http/guard.js';
import { ID_PARAMS } from '../../http/routes/shared.js';
import { noStore, type OAuthRouteOptions } from './protocol.js';

/** The signed-in user's grants to OAuth clients: list them, revoke one. */
export const grantRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: OAuthRouteOptions }> = async (
  app,
  { service, guard },
) => {
  app.addHook('preHandler', guard.requireAuth);

  app.get('/auth/grants', async (request, reply) => {
    return noStore(reply).send({ grants: await service.listUserGrants(signedIn(request).user.id) });
  });

  app.delete('/auth/grants/:id', { schema: { params: ID_PARAMS } }, async (request, reply) => {
    if (!(await service.revokeUserGrant(signedIn(request).user.id, request.params.id)))
      throw new TesseraError('not_found', 'No such grant.');
    return reply.code(204).send();
  });
};
