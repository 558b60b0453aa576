import type { FastifyPluginAsync } from 'fastify';
import {
  clientCredentials,
  formParams,
  noStore,
  type OAuthRouteOptions,
  useOAuthConventions,
} from './protocol.js';

/** Token introspection (RFC 7662) and revocation (RFC 7009), both for authenticated clients. */
export const introspectionRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (
  app,
  { config, service },
) => {
  useOAuthConventions(app, config);
  app.post('/oauth/introspect', async (request, reply) => {
    const params = formParams(request);
    return noStore(reply).send(await service.introspect(params, clientCredentials(request, params)));
  });
  app.post('/oauth/revoke', async (request, reply) => {
    const params = formParams(request);
    await service.revoke(params, clientCredentials(request, params));
    return noStore(reply).code(200).send();
  });
};
