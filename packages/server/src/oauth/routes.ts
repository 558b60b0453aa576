import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Authenticated, AuthService } from '../domain/auth.js';
import type { KeyRing } from '../domain/keys.js';
import type { Revocations } from '../domain/revocations.js';
import type { Secrets } from '../domain/secrets.js';
import { TesseraError } from '../errors.js';
import { cookieNames, readCookie } from '../http/cookies.js';
import { originAllowedForWrite } from '../http/security.js';
import type { Store } from '../store/types.js';
import { safeEqual, sha256 } from '../util/crypto.js';
import {
  type AuthorizationRequest,
  type ClientAndRedirect,
  type Params,
  paramsFrom,
  redirectTo,
  resolveClient,
  single,
  UnsafeRedirectError,
  validateAuthorization,
} from './authorize.js';
import { type ClientCredentials, ClientRegistrationError, parseBasic } from './clients.js';
import { OAuthError } from './errors.js';
import { connectOAuthStore } from './open.js';
import { consentCsp, consentPage, errorPage } from './pages.js';
import { OAuthService } from './service.js';
import type { ClientRecord, GrantType, OAuthStore } from './types.js';

declare module 'fastify' {
  interface FastifyInstance {
    oauth: OAuthService;
  }
}

export interface OAuthRouteDeps {
  config: Config;
  store: Store;
  auth: AuthService;
  keys: KeyRing;
  revocations: Revocations;
  secrets: Secrets;
  isAllowedOrigin: (origin: string | undefined) => boolean;
  now?: () => number;
  /** Default: what the config names (connectOAuthStore: PostgreSQL or `oauth.sqlite`), closed with the app. */
  oauthStore?: OAuthStore;
  /** Bearer token for the client admin API; default TESSERA_ADMIN_TOKEN; unset: no admin API. */
  adminToken?: string;
}

/** Where a sign-in must send the browser back to: only ever this server's own authorize path. */
function authorizePath(params: Params): string {
  const search = new URLSearchParams();
  for (const [k, values] of Object.entries(params)) {
    if (k === 'csrf_token' || k === 'decision') continue;
    for (const v of values) search.append(k, v);
  }
  return `/oauth/authorize?${search.toString()}`;
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
}

function formParams(request: FastifyRequest): Params {
  const body = request.body;
  if (typeof body !== 'object' || body === null)
    throw new OAuthError('invalid_request', 'Send the parameters as application/x-www-form-urlencoded.');
  return body as Params;
}

function clientCredentials(request: FastifyRequest, params: Params): ClientCredentials {
  return {
    basic: parseBasic(request.headers.authorization),
    bodyClientId: single(params, 'client_id'),
    bodySecret: single(params, 'client_secret'),
  };
}

function dpopHeader(request: FastifyRequest): string | undefined {
  const value = request.headers.dpop;
  return Array.isArray(value) ? value.join(',') : value;
}

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

/**
 * The OAuth 2 / OpenID Connect endpoints, the user's grant list, and the client admin API.
 * OAuth endpoints live in their own Fastify context: form bodies only, RFC 6749 error shape.
 */
export async function registerOAuthRoutes(app: FastifyInstance, deps: OAuthRouteDeps): Promise<OAuthService> {
  const { config, auth } = deps;
  const now = deps.now ?? Date.now;
  const adminToken = deps.adminToken ?? process.env.TESSERA_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken !== '' && adminToken.length < 32) {
    throw new TypeError('TESSERA_ADMIN_TOKEN must be at least 32 characters');
  }
  // Opened after the checks that can throw, so a refused config leaves no pool behind.
  const oauthStore = deps.oauthStore ?? (await connectOAuthStore(config));
  const service = new OAuthService({
    config,
    store: deps.store,
    oauth: oauthStore,
    tokens: auth.tokens,
    revocations: deps.revocations,
    secrets: deps.secrets,
    now: deps.now,
  });
  auth.grants = service;
  const cookies = cookieNames(config);
  const issuerOrigin = new URL(config.issuer).origin;
  app.decorate('oauth', service);
  const prune = setInterval(() => void oauthStore.prune(Date.now()).catch(() => undefined), 3_600_000);
  prune.unref();
  app.addHook('onClose', async () => {
    clearInterval(prune);
    if (!deps.oauthStore) await oauthStore.close();
  });

  async function signedIn(request: FastifyRequest): Promise<Authenticated | null> {
    const cookie = readCookie(request, cookies.session);
    return cookie ? auth.authenticate(cookie, 'cookie') : null;
  }

  function htmlError(reply: FastifyReply, status: number, code: string, description: string): FastifyReply {
    return noStore(reply)
      .code(status)
      .header('Content-Security-Policy', consentCsp(undefined))
      .type('text/html; charset=utf-8')
      .send(errorPage(code, description));
  }

  /** GET shows consent (or answers at once); POST is the consent form coming back. */
  async function authorize(request: FastifyRequest, reply: FastifyReply, params: Params, post: boolean) {
    const status = post ? 303 : 302;
    let base: ClientAndRedirect;
    try {
      base = await resolveClient(oauthStore, params);
    } catch (err) {
      if (err instanceof UnsafeRedirectError) return htmlError(reply, 400, err.code, err.message);
      throw err;
    }
    const answer = (fields: Record<string, string | undefined>) =>
      noStore(reply).redirect(
        redirectTo(base.redirectUri, { ...fields, state: base.state, iss: config.issuer }),
        status,
      );
    const fail = (err: OAuthError) => answer({ error: err.code, error_description: err.message });
    let req: AuthorizationRequest;
    try {
      req = validateAuthorization(params, base);
    } catch (err) {
      if (err instanceof OAuthError) return fail(err);
      throw err;
    }
    const who = await signedIn(request);
    const t = now();
    const tooOld =
      who !== null &&
      ((req.maxAge !== undefined && t - who.session.createdAt > req.maxAge * 1000) ||
        (req.prompt.has('login') && t - who.session.createdAt > 60_000));
    if (!who || tooOld) {
      if (req.prompt.has('none')) return fail(new OAuthError('login_required', 'The user must sign in.'));
      return noStore(reply).redirect(`/signin?next=${encodeURIComponent(authorizePath(params))}`, status);
    }
    if (post) {
      const origin = request.headers.origin;
      const sameOrigin =
        origin === issuerOrigin ||
        ((origin === undefined || origin === 'null') && request.headers['sec-fetch-site'] === 'same-origin');
      if (!sameOrigin || !service.checkConsentToken(who.session.id, req, single(params, 'csrf_token'))) {
        return htmlError(
          reply,
          403,
          'csrf_failed',
          'The consent form expired or did not come from this site.',
        );
      }
      const decision = single(params, 'decision');
      if (decision === 'deny') return fail(new OAuthError('access_denied', 'The user denied access.'));
      if (decision !== 'allow') return fail(new OAuthError('invalid_request', 'No decision was made.'));
      return answer({ code: await service.issueCode(who.user, who.session, req) });
    }
    const missing = await service.missingConsent(who.user.id, req);
    if (missing.length === 0 && !req.prompt.has('consent')) {
      return answer({ code: await service.issueCode(who.user, who.session, req) });
    }
    if (req.prompt.has('none')) return fail(new OAuthError('consent_required', 'The user must consent.'));
    return noStore(reply)
      .header('Content-Security-Policy', consentCsp(req.redirectUri))
      .type('text/html; charset=utf-8')
      .send(
        consentPage({
          request: req,
          username: who.user.username,
          csrfToken: service.consentToken(who.session.id, req),
          missing,
        }),
      );
  }

  void app.register(async (oauth) => {
    oauth.removeAllContentTypeParsers();
    oauth.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: config.bodyLimitBytes },
      (_request, body, done) => done(null, paramsFrom(new URLSearchParams(body as string))),
    );
    oauth.setErrorHandler((error: FastifyError | Error, request, reply) => {
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

    const metadata = async (_request: FastifyRequest, reply: FastifyReply) => {
      reply.header('Cache-Control', 'public, max-age=300');
      return service.metadata();
    };
    oauth.get('/.well-known/openid-configuration', metadata);
    oauth.get('/.well-known/oauth-authorization-server', metadata);

    oauth.get('/oauth/authorize', async (request, reply) =>
      authorize(request, reply, paramsFrom(new URL(request.url, 'http://localhost').searchParams), false),
    );
    oauth.post('/oauth/authorize', async (request, reply) => {
      let params: Params;
      try {
        params = formParams(request);
      } catch {
        return htmlError(reply, 400, 'invalid_request', 'The consent form was not sent as a form.');
      }
      return authorize(request, reply, params, true);
    });

    oauth.post('/oauth/token', async (request, reply) => {
      const params = formParams(request);
      const result = await service.token(params, {
        credentials: clientCredentials(request, params),
        dpopProof: dpopHeader(request),
      });
      return noStore(reply).send(result);
    });

    oauth.post('/oauth/introspect', async (request, reply) => {
      const params = formParams(request);
      return noStore(reply).send(await service.introspect(params, clientCredentials(request, params)));
    });

    oauth.post('/oauth/revoke', async (request, reply) => {
      const params = formParams(request);
      await service.revoke(params, clientCredentials(request, params));
      return noStore(reply).code(200).send();
    });

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
    oauth.get('/oauth/userinfo', userinfo);
    oauth.post('/oauth/userinfo', userinfo);
  });

  // The user's grants: authenticated like the other /auth routes, CSRF on cookie writes.
  async function authenticate(request: FastifyRequest): Promise<Authenticated> {
    const header = request.headers.authorization;
    let result: Authenticated | null = null;
    if (header !== undefined) {
      const m = /^Bearer ([\x21-\x7e]{1,8192})$/i.exec(header);
      if (!m) throw new TesseraError('invalid_token', 'The Authorization header must be "Bearer <token>".');
      result = await auth.authenticate(m[1]!, 'bearer');
      if (!result) throw new TesseraError('invalid_token', 'The access or session token is not valid.');
    } else {
      const cookie = readCookie(request, cookies.session);
      if (cookie !== undefined) result = await auth.authenticate(cookie, 'cookie');
      if (!result) throw new TesseraError('unauthorized', 'Sign in first.');
      if (
        request.method !== 'GET' &&
        (!originAllowedForWrite(request, deps.isAllowedOrigin) ||
          !auth.checkCsrf(result.session.id, request.headers['x-csrf-token']))
      ) {
        throw new TesseraError(
          'csrf_failed',
          'Cross-site request refused: missing or wrong Origin or X-CSRF-Token.',
        );
      }
    }
    return result;
  }

  app.get('/auth/grants', async (request, reply) => {
    const who = await authenticate(request);
    return noStore(reply).send({ grants: await service.listUserGrants(who.user.id) });
  });

  app.delete(
    '/auth/grants/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } } },
      },
    },
    async (request, reply) => {
      const who = await authenticate(request);
      const { id } = request.params as { id: string };
      if (!(await service.revokeUserGrant(who.user.id, id)))
        throw new TesseraError('not_found', 'No such grant.');
      return reply.code(204).send();
    },
  );

  // The client admin API, only when an admin token is configured.
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
        body: {
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
        },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      const b = request.body as {
        client_id?: string;
        client_name: string;
        client_type: 'public' | 'confidential';
        redirect_uris?: string[];
        grant_types?: GrantType[];
        scope?: string;
        token_endpoint_auth_method?: ClientRecord['authMethod'];
        require_dpop?: boolean;
        resources?: string[];
      };
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

  app.get('/oauth/clients', async (request, reply) => {
    requireAdmin(request);
    return noStore(reply).send({ clients: (await oauthStore.listClients()).map(clientView) });
  });

  app.delete(
    '/oauth/clients/:id',
    {
      schema: {
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[A-Za-z0-9._~-]{1,64}$' } },
        },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      const { id } = request.params as { id: string };
      if (!(await service.removeClient(id))) throw new TesseraError('not_found', 'No such client.');
      return reply.code(204).send();
    },
  );

  return service;
}
