import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { formFields, media, noBody, oauthErrorBody, oauthErrors, string } from '../../openapi/schemas.js';
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
} from '../authorize.js';
import { OAuthError } from '../errors.js';
import { consentCsp, consentPage, errorPage } from '../pages.js';
import { formParams, noStore, type OAuthRouteOptions, useOAuthConventions } from './protocol.js';

const AUTHORIZE_FIELDS = {
  response_type: string('Only `code`.', { enum: ['code'] }),
  client_id: string(),
  redirect_uri: string('Exactly one of the registered ones; may be left out when only one is registered.'),
  scope: string('Space-separated, among the client’s scopes.'),
  state: string('Returned unchanged with the answer.'),
  code_challenge: string('PKCE: base64url SHA-256 of the code verifier (required).'),
  code_challenge_method: string('Only `S256`.', { enum: ['S256'] }),
  nonce: string('OpenID Connect: copied into the ID token.'),
  prompt: string('`none`, or any of `login` and `consent`, space-separated.'),
  max_age: string('Seconds since sign-in after which the user must sign in again.'),
  response_mode: string('Only `query`.', { enum: ['query'] }),
  dpop_jkt: string('RFC 9449: bind the code to this DPoP key thumbprint.'),
};
const AUTHORIZE_REQUIRED = ['response_type', 'client_id', 'code_challenge'];

/** Refusals sent to the client's redirect URI as `error` (RFC 6749 §4.1.2.1). */
const REDIRECTED_ERRORS =
  '`invalid_request`, `invalid_scope`, `invalid_target`, `unauthorized_client`, ' +
  '`unsupported_response_type`, `request_not_supported`, `request_uri_not_supported`, ' +
  '`access_denied`, `login_required`, `consent_required`';

const ERROR_PAGE =
  'An error page, never a redirect, when the client or its redirect URI cannot be trusted ' +
  '(`invalid_request`, `invalid_client`).';

/** Where a sign-in must send the browser back to: only ever this server's own authorize path. */
function authorizePath(params: Params): string {
  const search = new URLSearchParams();
  for (const [k, values] of Object.entries(params)) {
    if (k === 'csrf_token' || k === 'decision') continue;
    for (const v of values) search.append(k, v);
  }
  return `/oauth/authorize?${search.toString()}`;
}

function htmlError(reply: FastifyReply, status: number, code: string, description: string): FastifyReply {
  return noStore(reply)
    .code(status)
    .header('Content-Security-Policy', consentCsp(undefined))
    .type('text/html; charset=utf-8')
    .send(errorPage(code, description));
}

/**
 * The authorization endpoint: GET shows consent (or answers at once); POST is the consent form
 * coming back, with its own request-bound token and a same-origin check.
 */
export const authorizeRoutes: FastifyPluginAsync<OAuthRouteOptions> = async (
  app,
  { config, service, guard, now },
) => {
  useOAuthConventions(app, config);
  const issuerOrigin = new URL(config.issuer).origin;

  async function authorize(request: FastifyRequest, reply: FastifyReply, params: Params, post: boolean) {
    const status = post ? 303 : 302;
    let base: ClientAndRedirect;
    try {
      base = await resolveClient(service.store, params);
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
    const who = await guard.cookieSession(request);
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
      await guard.touch(request, who);
      const decision = single(params, 'decision');
      if (decision === 'deny') return fail(new OAuthError('access_denied', 'The user denied access.'));
      if (decision !== 'allow') return fail(new OAuthError('invalid_request', 'No decision was made.'));
      return answer({ code: await service.issueCode(who.user, who.session, req) });
    }
    await guard.touch(request, who);
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

  app.get(
    '/oauth/authorize',
    {
      schema: {
        form: formFields(AUTHORIZE_FIELDS, AUTHORIZE_REQUIRED),
        summary: 'Authorization endpoint',
        description:
          'Authorization code with PKCE. A browser that is not signed in (or must sign in again) goes ' +
          'to `/signin` first; a grant the user already made answers at once; otherwise the consent page.',
        tags: ['oauth'],
        security: [{ sessionCookie: [] }, {}],
        response: {
          200: media('The consent page.', 'text/html'),
          302: noBody(
            'To the redirect URI with `code`, `state` and `iss` (RFC 9207), or with `error` and ' +
              `\`error_description\` (${REDIRECTED_ERRORS}); or to \`/signin\` first.`,
          ),
          400: media(ERROR_PAGE, 'text/html'),
          ...oauthErrors('temporarily_unavailable'),
        },
      },
    },
    async (request, reply) =>
      authorize(request, reply, paramsFrom(new URL(request.url, 'http://localhost').searchParams), false),
  );
  app.post(
    '/oauth/authorize',
    {
      schema: {
        form: formFields(
          {
            ...AUTHORIZE_FIELDS,
            csrf_token: string('From the consent page: bound to the session and this request.'),
            decision: string(undefined, { enum: ['allow', 'deny'] }),
          },
          [...AUTHORIZE_REQUIRED, 'csrf_token', 'decision'],
        ),
        summary: 'Consent decision',
        description:
          'The consent form coming back: same-origin only (`Origin`, or `Sec-Fetch-Site: same-origin`), ' +
          'with the form’s own CSRF token.',
        tags: ['oauth'],
        security: [{ sessionCookie: [] }],
        response: {
          303: noBody(
            'To the redirect URI with `code`, `state` and `iss`, or with `error` ' +
              `(${REDIRECTED_ERRORS}); or to \`/signin\` first.`,
          ),
          400: {
            description: `${ERROR_PAGE} A body that is not a form: \`invalid_request\`.`,
            content: {
              'text/html': { schema: { type: 'string' } },
              'application/json': { schema: oauthErrorBody(['invalid_request']) },
            },
          },
          403: media(
            'An error page (`csrf_failed`): the form expired or came from another site.',
            'text/html',
          ),
          ...oauthErrors('temporarily_unavailable'),
        },
      },
    },
    async (request, reply) => {
      let params: Params;
      try {
        params = formParams(request);
      } catch {
        return htmlError(reply, 400, 'invalid_request', 'The consent form was not sent as a form.');
      }
      return authorize(request, reply, params, true);
    },
  );
};
