import type { FastifyPluginAsync } from 'fastify';
import { integer, oauthErrors, object, string } from '../../openapi/schemas.js';
import {
  CLIENT_AUTH,
  clientCredentials,
  clientForm,
  DPOP_HEADER,
  dpopHeader,
  formParams,
  noStore,
  type OAuthRouteOptions,
  useOAuthConventions,
} from './protocol.js';

const TOKEN_FORM = clientForm(
  {
    grant_type: string(undefined, { enum: ['authorization_code', 'refresh_token', 'client_credentials'] }),
    code: string('authorization_code: the code from the redirect.'),
    redirect_uri: string('authorization_code: the one the authorization request named, if it named one.'),
    code_verifier: string('authorization_code: the PKCE verifier (S256).'),
    refresh_token: string('refresh_token: the refresh token; it rotates.'),
    scope: string('refresh_token, client_credentials: fewer scopes than granted, space-separated.'),
    resource: string('RFC 8707: the API the access token is for, one registered for the client.'),
  },
  ['grant_type'],
);

const TOKEN_ANSWER = object(
  {
    access_token: string('An ES256 JWT (RFC 9068, `typ: at+jwt`).'),
    token_type: string('`DPoP` when bound to the DPoP key of the request.', { enum: ['Bearer', 'DPoP'] }),
    expires_in: integer('Seconds the access token lives.'),
    scope: string('The granted scopes, space-separated.'),
    refresh_token: string('With `offline_access` (authorization code) and on refresh.'),
    id_token: string('With `openid` (authorization code).'),
  },
  { optional: ['refresh_token', 'id_token'], description: 'The tokens.' },
);

/** The token endpoint: authorization code, refresh token and client credentials grants. */
export const tokenRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (app, { config, service }) => {
  useOAuthConventions(app, config);
  app.post(
    '/oauth/token',
    {
      schema: {
        form: TOKEN_FORM,
        headers: DPOP_HEADER,
        summary: 'Token endpoint',
        description:
          'Authorization code (PKCE S256 only), refresh token (rotated; a reuse outside the grace ' +
          'window, or once the successor is used, revokes the grant) and client credentials ' +
          '(confidential clients). A `DPoP` proof binds the ' +
          'access token to its key; clients registered with `require_dpop` must send one.',
        tags: ['oauth'],
        security: CLIENT_AUTH,
        response: {
          200: TOKEN_ANSWER,
          ...oauthErrors(
            'invalid_request',
            'invalid_client',
            'invalid_grant',
            'unauthorized_client',
            'unsupported_grant_type',
            'invalid_scope',
            'invalid_target',
            'invalid_dpop_proof',
            'temporarily_unavailable',
          ),
        },
      },
    },
    async (request, reply) => {
      const params = formParams(request);
      const result = await service.token(params, {
        credentials: clientCredentials(request, params),
        dpopProof: dpopHeader(request),
      });
      return noStore(reply).send(result);
    },
  );
};
