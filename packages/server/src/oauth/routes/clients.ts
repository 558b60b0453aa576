import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyRequest } from 'fastify';
import { TesseraError } from '../../errors.js';
import {
  array,
  errors,
  JSON_BODY_ERRORS,
  noBody,
  object,
  type Security,
  string,
} from '../../openapi/schemas.js';
import { safeEqual, sha256 } from '../../util/crypto.js';
import { ClientRegistrationError } from '../clients.js';
import { OAuthError } from '../errors.js';
import type { ClientRecord } from '../types.js';
import { noStore, type OAuthRouteOptions } from './protocol.js';

const ADMIN: Security = [{ adminToken: [] }];
/** Without TESSERA_ADMIN_TOKEN the admin API answers `not_found`; a wrong token `unauthorized`. */
const ADMIN_ERRORS = ['not_found', 'unauthorized', 'unavailable'] as const;

const CLIENT_FIELDS = {
  client_id: string(),
  client_name: string(),
  client_type: string(undefined, { enum: ['public', 'confidential'] }),
  token_endpoint_auth_method: string(undefined, {
    enum: ['none', 'client_secret_basic', 'client_secret_post'],
  }),
  redirect_uris: array(string()),
  grant_types: array(
    string(undefined, { enum: ['authorization_code', 'refresh_token', 'client_credentials'] }),
  ),
  scope: string('The scopes it may ask for, space-separated.'),
  require_dpop: { type: 'boolean', description: 'Its tokens must be DPoP-bound.' },
  resources: array(string(), 'The APIs (RFC 8707 resources) it may ask tokens for.'),
  created_at: string(undefined, { format: 'date-time' }),
};

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
    client_id: { type: 'string', maxLength: 64, description: 'Default: generated.' },
    client_name: { type: 'string', maxLength: 100, description: 'Shown to users on the consent page.' },
    client_type: { type: 'string', enum: ['public', 'confidential'] },
    redirect_uris: {
      type: 'array',
      maxItems: 20,
      items: { type: 'string', maxLength: 2000 },
      description: 'Compared as exact strings.',
    },
    grant_types: {
      type: 'array',
      maxItems: 3,
      items: { type: 'string', enum: ['authorization_code', 'refresh_token', 'client_credentials'] },
    },
    scope: { type: 'string', maxLength: 2000, description: 'The scopes it may ask for, space-separated.' },
    token_endpoint_auth_method: {
      type: 'string',
      enum: ['none', 'client_secret_basic', 'client_secret_post'],
    },
    require_dpop: { type: 'boolean', description: 'Its tokens must be DPoP-bound.' },
    resources: {
      type: 'array',
      maxItems: 20,
      items: { type: 'string', maxLength: 2000 },
      description: 'The APIs (RFC 8707 resources) it may ask tokens for.',
    },
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

  app.post(
    '/oauth/clients',
    {
      schema: {
        body: NEW_CLIENT,
        summary: 'Register an OAuth client',
        description:
          'The admin API (behind TESSERA_ADMIN_TOKEN). A confidential client’s secret is in this answer ' +
          'only; store it now.',
        tags: ['admin'],
        security: ADMIN,
        response: {
          201: object(
            { ...CLIENT_FIELDS, client_secret: string('Confidential clients only, shown once.') },
            { optional: ['client_secret'], description: 'The client.' },
          ),
          ...errors(...JSON_BODY_ERRORS, ...ADMIN_ERRORS),
        },
      },
    },
    async (request, reply) => {
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
    },
  );

  app.get(
    '/oauth/clients',
    {
      schema: {
        summary: 'List OAuth clients',
        description: 'The admin API (behind TESSERA_ADMIN_TOKEN).',
        tags: ['admin'],
        security: ADMIN,
        response: {
          200: object({ clients: array(object(CLIENT_FIELDS)) }, { description: 'Every client.' }),
          ...errors(...ADMIN_ERRORS),
        },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      return noStore(reply).send({ clients: (await service.store.listClients()).map(clientView) });
    },
  );

  app.delete(
    '/oauth/clients/:id',
    {
      schema: {
        params: CLIENT_PARAMS,
        summary: 'Remove an OAuth client',
        description: 'The admin API (behind TESSERA_ADMIN_TOKEN). Its grants and tokens end with it.',
        tags: ['admin'],
        security: ADMIN,
        response: {
          204: noBody('The client is gone.'),
          ...errors(...JSON_BODY_ERRORS, ...ADMIN_ERRORS),
        },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      if (!(await service.removeClient(request.params.id)))
        throw new TesseraError('not_found', 'No such client.');
      return reply.code(204).send();
    },
  );
};
