import type { FastifyPluginAsync } from 'fastify';
import {
  clientCredentials,
  dpopHeader,
  formParams,
  noStore,
  type OAuthRouteOptions,
  useOAuthConventions,
} from './protocol.js';

/** The token endpoint: authorization code, refresh token and client credentials grants. */
export const tokenRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (app, { config, service }) => {
  useOAuthConventions(app, config);
  app.post('/oauth/token', async (request, reply) => {
    const params = formParams(request);
    const result = await service.token(params, {
      credentials: clientCredentials(request, params),
      dpopProof: dpopHeader(request),
    });
    return noStore(reply).send(result);
  });
};
