import type { FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { array, oauthErrors, object, PUBLIC, type Schema, string } from '../../openapi/schemas.js';
import { type OAuthRouteOptions, useOAuthConventions } from './protocol.js';

const URI = string(undefined, { format: 'uri' });
const LIST = array(string());

/** RFC 8414 / OpenID Connect Discovery 1.0 fields, in the order the service lists them. */
const METADATA: Schema = object(
  {
    issuer: URI,
    authorization_endpoint: URI,
    token_endpoint: URI,
    jwks_uri: URI,
    userinfo_endpoint: URI,
    introspection_endpoint: URI,
    revocation_endpoint: URI,
    response_types_supported: LIST,
    response_modes_supported: LIST,
    grant_types_supported: LIST,
    token_endpoint_auth_methods_supported: LIST,
    introspection_endpoint_auth_methods_supported: LIST,
    revocation_endpoint_auth_methods_supported: LIST,
    code_challenge_methods_supported: LIST,
    scopes_supported: LIST,
    subject_types_supported: LIST,
    id_token_signing_alg_values_supported: LIST,
    claims_supported: LIST,
    prompt_values_supported: LIST,
    authorization_response_iss_parameter_supported: { type: 'boolean' },
    dpop_signing_alg_values_supported: LIST,
    request_parameter_supported: { type: 'boolean' },
    request_uri_parameter_supported: { type: 'boolean' },
  },
  { description: 'The metadata.' },
);

function metadataSchema(summary: string, description: string): FastifySchema {
  return {
    summary,
    description: `${description} Cacheable for five minutes.`,
    tags: ['discovery'],
    security: PUBLIC,
    response: { 200: METADATA, ...oauthErrors() },
  };
}

/** Authorization server metadata, under both the OpenID and the RFC 8414 name. */
export const discoveryRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (app, { config, service }) => {
  useOAuthConventions(app, config);
  const metadata = async (_request: FastifyRequest, reply: FastifyReply) => {
    reply.header('Cache-Control', 'public, max-age=300');
    return service.metadata();
  };
  app.get(
    '/.well-known/openid-configuration',
    { schema: metadataSchema('OpenID Connect discovery', 'The OpenID Provider metadata.') },
    metadata,
  );
  app.get(
    '/.well-known/oauth-authorization-server',
    {
      schema: metadataSchema(
        'Authorization server metadata (RFC 8414)',
        'The same metadata, under the RFC 8414 name.',
      ),
    },
    metadata,
  );
};
