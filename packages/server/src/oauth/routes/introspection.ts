import type { FastifyPluginAsync } from 'fastify';
import { array, integer, noBody, oauthErrors, object, string } from '../../openapi/schemas.js';
import {
  CLIENT_AUTH,
  clientCredentials,
  clientForm,
  formParams,
  noStore,
  type OAuthRouteOptions,
  useOAuthConventions,
} from './protocol.js';

const TOKEN_FORM = clientForm(
  {
    token: string('An access token or refresh token issued to the calling client.'),
    token_type_hint: string('`access_token` or `refresh_token`; accepted, not needed.'),
  },
  ['token'],
);

const ACTIVE = { type: 'boolean', enum: [true] };
const INTROSPECTION = {
  description: 'What the token is, or `{"active": false}` for anything not live or not the client’s.',
  anyOf: [
    object(
      { active: { type: 'boolean', enum: [false] } },
      { description: 'Not live, or not this client’s.' },
    ),
    {
      // The claims are the token's own, as the verifier accepted them: typed no stricter than it checks.
      description: 'A live access token: its claims.',
      type: 'object',
      additionalProperties: true,
      required: ['active', 'token_type', 'iss', 'sub', 'aud', 'exp', 'iat', 'client_id'],
      properties: {
        active: ACTIVE,
        token_type: string('`DPoP` when the token is DPoP-bound.', { enum: ['Bearer', 'DPoP'] }),
        iss: string(),
        sub: string('The user, or `client:<client_id>` for client credentials.'),
        aud: {
          description: 'The resource the token is for, else the issuer.',
          anyOf: [string(), array(string())],
        },
        sid: string('The grant.'),
        scope: string(),
        client_id: string(),
        cnf: {
          type: 'object',
          additionalProperties: true,
          properties: { jkt: { description: 'The DPoP key thumbprint.' } },
        },
        exp: { type: 'number' },
        iat: { type: 'number' },
        jti: string(),
        username: string('For tokens of a user.'),
      },
    },
    object(
      {
        active: ACTIVE,
        token_type: string(undefined, { enum: ['refresh_token'] }),
        client_id: string(),
        sub: string(),
        username: string(),
        scope: string(),
        iat: integer(),
        exp: integer(),
        iss: string(),
      },
      { description: 'A live refresh token.' },
    ),
  ],
};

/** Token introspection (RFC 7662) and revocation (RFC 7009), both for authenticated clients. */
export const introspectionRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (
  app,
  { config, service },
) => {
  useOAuthConventions(app, config);
  app.post(
    '/oauth/introspect',
    {
      schema: {
        form: TOKEN_FORM,
        summary: 'Token introspection (RFC 7662)',
        description:
          'For confidential clients, about tokens issued to them; honours every revocation (session, ' +
          'grant, user-wide).',
        tags: ['oauth'],
        security: CLIENT_AUTH,
        response: {
          200: INTROSPECTION,
          ...oauthErrors('invalid_request', 'invalid_client', 'temporarily_unavailable'),
        },
      },
    },
    async (request, reply) => {
      const params = formParams(request);
      return noStore(reply).send(await service.introspect(params, clientCredentials(request, params)));
    },
  );
  app.post(
    '/oauth/revoke',
    {
      schema: {
        form: TOKEN_FORM,
        summary: 'Token revocation (RFC 7009)',
        description:
          'Revokes the grant behind an access or refresh token of the calling client. Answers 200 whether ' +
          'or not there was anything to revoke.',
        tags: ['oauth'],
        security: CLIENT_AUTH,
        response: {
          200: noBody('Done.'),
          ...oauthErrors('invalid_request', 'invalid_client', 'temporarily_unavailable'),
        },
      },
    },
    async (request, reply) => {
      const params = formParams(request);
      await service.revoke(params, clientCredentials(request, params));
      return noStore(reply).code(200).send();
    },
  );
};
