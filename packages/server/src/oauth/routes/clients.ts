import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyRequest } from 'fastify';
import { TesseraError } from '../../errors.js';
import { safeEqual, sha256 } from '../../util/crypto.js';
import { ClientRegistrationError } from '../clients.js';
import { OAuthError } from '../errors.js';
import type { ClientRecord } from '../types.js';
import { noStore, type OAuthRouteOptions } from './protocol.js';

function clientView(c: ClientRecord) {
  return {
    client_id: c.id,
    client_name: c.name,
    client_type: c.type,
    token_endpoint_auth_method: c.authMethod,
    redirect_uris: c.redirectUris,
    grant_types: c.grantTypes,
    scope: c.scopes.join(' '),
    require_dpop: c.requireDpop,
    resources: c.resources,
    created_at: new Date(c.createdAt).toISOString(),
  };
}

const NEW_CLIENT = {
  type: 'object',
  required: ['client_name', 'client_type'],
  additionalProperties: false,
  properties: {
    client_id: { type: 'string', maxLength: 64 },
    client_name: { type: 'string', maxLength: 100 },
    client_type: { type: 'string', enum: ['public', 'confidential'] },
    redirect_uris: { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 2000 } },
    grant_types: {
      type: 'array',
      maxItems: 3,
      items: { type: 'string', enum: ['authorization_code', 'refresh_token', 'client_credentials'] },
    },
    scope: { type: 'string', maxLength: 2000 },
    token_endpoint_auth_method: {
      type: 'string',
      enum: ['none', 'client_secret_basic', 'client_secret_post'],
    },
    require_dpop: { type: 'boolean' },
    resources: { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 2000 } },
  },
} as const;

const CLIENT_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9._~-]{1,64}$' } },
} as const;

/** The client admin API, behind TESSERA_ADMIN_TOKEN; without one it answers 404. */
export const clientRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: OAuthRouteOptions }> = async (
  app,
  { service, adminToken },
) => {
  function requireAdmin(request: FastifyRequest): void {
    if (!adminToken) throw new TesseraError('not_found', 'No such resource.');
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(request.headers.authorization ?? '');
    if (!m || !safeEqual(sha256(m[1]!), sha256(adminToken)))
      throw new TesseraError('unauthorized', 'The admin token is missing or wrong.');
  }

  app.post('/oauth/clients', { schema: { body: NEW_CLIENT } }, async (request, reply) => {
    requireAdmin(request);
    const b = request.body;
    try {
      const { client, secret } = await service.addClient({
        id: b.client_id,
        name: b.client_name,
        type: b.client_type,
        redirectUris: b.redirect_uris ?? [],
        grantTypes: b.grant_types,
        scopes: (b.scope ?? '').split(' ').filter(Boolean),
        authMethod: b.token_endpoint_auth_method,
        requireDpop: b.require_dpop,
        resources: b.resources,
      });
      return noStore(reply)
        .code(201)
        .send({ ...clientView(client), ...(secret !== null ? { client_secret: secret } : {}) });
    } catch (err) {
      if (err instanceof ClientRegistrationError || err instanceof OAuthError)
        throw new TesseraError('invalid_request', err.message);
      throw err;
    }
  });

  app.get('/oauth/clients', async (request, reply) => {
    requireAdmin(request);
    return noStore(reply).send({ clients: (await service.store.listClients()).map(clientView) });
  });

  app.delete('/oauth/clients/:id', { schema: { params: CLIENT_PARAMS } }, async (request, reply) => {
    requireAdmin(request);
    if (!(await service.removeClient(request.params.id)))
      throw new TesseraError('not_found', 'No such client.');
    return reply.code(204).send();
  });
};
