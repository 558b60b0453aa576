import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { type OAuthRouteOptions, useOAuthConventions } from './protocol.js';

/** Authorization server metadata, under both the OpenID and the RFC 8414 name. */
export const discoveryRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (app, { config, service }) => {
  useOAuthConventions(app, config);
  const metadata = async (_request: FastifyRequest, reply: FastifyReply) => {
    reply.header('Cache-Control', 'public, max-age=300');
    return service.metadata();
  };
  app.get('/.well-known/openid-configuration', metadata);
  app.get('/.well-known/oauth-authorization-server', metadata);
};
