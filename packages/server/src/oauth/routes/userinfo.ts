import type { FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { oauthErrors, object, string } from '../../openapi/schemas.js';
import { OAuthError } from '../errors.js';
import { DPOP_HEADER, dpopHeader, noStore, type OAuthRouteOptions, useOAuthConventions } from './protocol.js';

const USERINFO: FastifySchema = {
  headers: DPOP_HEADER,
  summary: 'OpenID Connect userinfo',
  description:
    'For an OAuth access token with the `openid` scope, for this server: `Authorization: Bearer …`, or ' +
    '`Authorization: DPoP …` with a `DPoP` proof for DPoP-bound tokens.',
  tags: ['oauth'],
  security: [{ oauthBearer: [] }, { dpop: [] }],
  response: {
    200: object(
      {
        sub: string('The user id.'),
        preferred_username: string('With the `profile` scope.'),
      },
      { optional: ['preferred_username'], description: 'The claims about the user.' },
    ),
    ...oauthErrors(
      'invalid_request',
      'invalid_dpop_proof',
      'invalid_token',
      'insufficient_scope',
      'temporarily_unavailable',
    ),
  },
};

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
  app.get('/oauth/userinfo', { schema: USERINFO }, userinfo);
  app.post('/oauth/userinfo', { schema: USERINFO }, userinfo);
};
