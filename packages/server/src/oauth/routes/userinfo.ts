import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.js';
import { dpopHeader, noStore, type OAuthRouteOptions, useOAuthConventions } from './protocol.js';

/** The OpenID Connect userinfo endpoint, for Bearer and DPoP-bound access tokens. */
export const userinfoRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (app, { config, service }) => {
  useOAuthConventions(app, config);
  const userinfo = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers.authorization;
    const m = header ? /^(Bearer|DPoP) ([A-Za-z0-9._~+/=-]{1,8192})$/i.exec(header) : null;
    if (!m) throw new OAuthError('invalid_token', 'Send an access token in the Authorization header.');
    const scheme = m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const claims = await service.userinfo({
      scheme,
      token: m[2]!,
      dpopProof: dpopHeader(request),
      method: request.method,
      url: `${config.issuer}/oauth/userinfo`,
    });
    return noStore(reply).send(claims);
  };
  app.get('/oauth/userinfo', userinfo);
  app.post('/oauth/userinfo', userinfo);
};
