import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
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

  app.get('/oauth/authorize', async (request, reply) =>
    authorize(request, reply, paramsFrom(new URL(request.url, 'http://localhost').searchParams), false),
  );
  app.post('/oauth/authorize', async (request, reply) => {
    let params: Params;
    try {
      params = formParams(request);
    } catch {
      return htmlError(reply, 400, 'invalid_request', 'The consent form was not sent as a form.');
    }
    return authorize(request, reply, params, true);
  });
};
