import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { TesseraError } from '../../errors.js';
import type { AuthGuard } from '../../http/guard.js';
import { formFields, type Schema, type Security, string } from '../../openapi/schemas.js';
import { type Params, paramsFrom, single } from '../authorize.js';
import { type ClientCredentials, parseBasic } from '../clients.js';
import { OAuthError } from '../errors.js';
import type { OAuthService } from '../service.js';

/**
 * How a client proves itself at the token, introspection and revocation endpoints: HTTP Basic
 * (client_secret_basic), or `client_id` and `client_secret` in the form (client_secret_post), or
 * for a public client `client_id` alone. Exactly the method the client registered.
 */
export const CLIENT_AUTH: Security = [{ clientSecretBasic: [] }, {}];

/** The form fields of client_secret_post and public clients. */
export const CLIENT_FIELDS = {
  client_id: string('The client (client_secret_post, public clients); with Basic it must match, if sent.'),
  client_secret: string('client_secret_post only.'),
};

/** A form with the client fields and these. */
export function clientForm(fields: Record<string, Schema>, required: readonly string[]): Schema {
  return formFields({ ...fields, ...CLIENT_FIELDS }, required);
}

/** The optional `DPoP` proof header (RFC 9449). */
export const DPOP_HEADER = {
  type: 'object',
  properties: {
    dpop: { type: 'string', description: 'A DPoP proof JWT for this request (RFC 9449).' },
  },
} as const;

/** What every OAuth route plugin is given. */
export interface OAuthRouteOptions {
  config: Config;
  service: OAuthService;
  guard: AuthGuard;
  /** Bearer token for the client admin API; unset: no admin API. */
  adminToken: string | undefined;
  now: () => number;
}

export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
}

/**
 * The OAuth endpoints' conventions, for the plugin context they are registered in: form bodies
 * only (parsed into `Params`), errors in the RFC 6749 shape with their WWW-Authenticate headers.
 */
export function useOAuthConventions(app: FastifyInstance, config: Config): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: config.bodyLimitBytes },
    (_request, body, done) => done(null, paramsFrom(new URLSearchParams(String(body)))),
  );
  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    let e: OAuthError;
    if (error instanceof OAuthError) e = error;
    else if (error instanceof TesseraError) {
      e =
        error.status >= 500
          ? new OAuthError('temporarily_unavailable', 'The service is temporarily unavailable.')
          : new OAuthError('invalid_request', 'The request is malformed.');
    } else {
      const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
      if (status >= 400 && status < 500) e = new OAuthError('invalid_request', 'The request is malformed.');
      else {
        request.log.error({ err: error }, 'unhandled error');
        e = new OAuthError('server_error', 'Something went wrong.');
      }
    }
    if (e.detail) request.log.warn({ code: e.code, detail: e.detail }, 'oauth request failed');
    if (e.code === 'invalid_client') reply.header('WWW-Authenticate', 'Basic realm="tessera"');
    if (e.code === 'invalid_token' || e.code === 'insufficient_scope') {
      reply.header(
        'WWW-Authenticate',
        `Bearer realm="tessera", error="${e.code}", DPoP realm="tessera", algs="ES256", error="${e.code}"`,
      );
    }
    return noStore(reply).code(e.status).send({ error: e.code, error_description: e.message });
  });
}

function isParams(body: unknown): body is Params {
  return typeof body === 'object' && body !== null;
}

/** The form the content-type parser made of the body; throws `invalid_request` without one. */
export function formParams(request: FastifyRequest): Params {
  if (!isParams(request.body))
    throw new OAuthError('invalid_request', 'Send the parameters as application/x-www-form-urlencoded.');
  return request.body;
}

export function clientCredentials(request: FastifyRequest, params: Params): ClientCredentials {
  return {
    basic: parseBasic(request.headers.authorization),
    bodyClientId: single(params, 'client_id'),
    bodySecret: single(params, 'client_secret'),
  };
}

export function dpopHeader(request: FastifyRequest): string | undefined {
  const value = request.headers.dpop;
  return Array.isArray(value) ? value.join(',') : value;
}
