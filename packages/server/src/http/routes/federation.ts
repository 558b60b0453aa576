import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, TesseraError } from '../../errors.js';
import type { FederationService } from '../../federation/service.js';
import { array, errors, media, noBody, object, PUBLIC, string } from '../../openapi/schemas.js';
import { federationDonePage, federationErrorPage } from '../../pages/html.js';
import { PAGE_CSP } from '../../pages/index.js';
import { NEXT_MAX_LENGTH } from '../../util/next-path.js';
import { readCookie, setAuthCookie } from '../cookies.js';
import { signedIn } from '../guard.js';
import {
  type AuthRouteOptions,
  clientOf,
  GUARD_ERRORS,
  ID_PARAMS,
  SIGNED_IN,
  SIGNED_IN_WRITE,
  TIMESTAMP,
} from './shared.js';

const PROVIDER_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' } },
} as const;

/** The codes a failure page names (in the page, as `data-code` and as text). */
const PAGE_CODES = ERROR_CODES.filter(
  (c) =>
    c.startsWith('provider_') ||
    [
      'invalid_request',
      'unauthorized',
      'csrf_failed',
      'forbidden',
      'not_found',
      'identity_taken',
      'unavailable',
    ].includes(c),
);

const ERROR_PAGE = {
  description: 'The sign-in failed: a page naming what happened and its error code (`data-code`).',
  content: { 'text/html': { schema: { type: 'string' }, 'x-error-codes': [...PAGE_CODES] } },
};

/**
 * Signing in through upstream providers (OpenID Connect or plain OAuth 2), and the identities
 * linked to an account. The browser's flow state lives in a short-lived signed HttpOnly cookie,
 * so a callback is accepted only in the browser that started it.
 */
export const federationRoutes: FastifyPluginAsyncJsonSchemaToTs<{
  Options: AuthRouteOptions & { federation: FederationService };
}> = async (app, { config, auth, cookies, guard, federation }) => {
  const flowCookie = `${config.secureCookies ? '__Host-' : ''}tessera_federation`;

  /** Who is signed in in this browser: the session cookie, or token mode's refresh cookie. */
  async function browserUser(request: FastifyRequest): Promise<{ userId: string; sessionId: string } | null> {
    const viaSession = await guard.cookieSession(request);
    if (viaSession) {
      await guard.touch(request, viaSession);
      return { userId: viaSession.user.id, sessionId: viaSession.session.id };
    }
    const refresh = readCookie(request, cookies.refresh);
    const family = refresh ? await auth.sessionOfRefreshToken(refresh) : null;
    return family ? { userId: family.userId, sessionId: family.id } : null;
  }

  function clearFlow(reply: FastifyReply): void {
    reply.clearCookie(flowCookie, {
      httpOnly: true,
      secure: config.secureCookies,
      sameSite: 'lax',
      path: '/',
    });
  }

  function failurePage(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
    if (!(err instanceof TesseraError)) throw err;
    request.log.warn(
      { event: 'federation_failed', code: err.code, detail: err.detail },
      'provider sign-in failed',
    );
    return reply
      .code(err.status)
      .header('Content-Security-Policy', PAGE_CSP)
      .header('Cache-Control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(federationErrorPage(err.code, err.message));
  }

  app.get(
    '/auth/providers',
    {
      schema: {
        summary: 'Sign-in providers',
        description: 'The upstream providers this server signs in with: id and display name only.',
        tags: ['federation'],
        security: PUBLIC,
        response: {
          200: object(
            {
              providers: array(
                object({ id: string('In `/auth/providers/{id}/start`.'), name: string('For the button.') }),
              ),
            },
            { description: 'The providers.' },
          ),
          ...errors(),
        },
      },
    },
    async () => ({ providers: federation.list() }),
  );

  app.get(
    '/auth/providers/:id/start',
    {
      schema: {
        params: PROVIDER_PARAMS,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            mode: {
              type: 'string',
              enum: ['session', 'token'],
              description: 'The Tessera session to start.',
            },
            next: {
              type: 'string',
              maxLength: NEXT_MAX_LENGTH,
              description: 'A path on this server to go to afterwards.',
            },
            link: {
              type: 'string',
              enum: ['1'],
              description:
                'Link the provider to the account signed in in this browser, instead of signing in.',
            },
          },
        },
        summary: 'Start a provider sign-in',
        description:
          'Redirects the browser to the provider with `state`, `nonce` and a PKCE S256 challenge, kept in ' +
          'a signed HttpOnly cookie for ten minutes. With `link=1` the browser must be signed in ' +
          '(session or refresh cookie) and the provider is linked to that account; a link started by ' +
          'another origin (`Origin`, or `Sec-Fetch-Site: cross-site` or `same-site`) is refused with ' +
          '`csrf_failed`.',
        tags: ['federation'],
        security: PUBLIC,
        response: {
          302: noBody('To the provider.'),
          400: ERROR_PAGE,
          401: ERROR_PAGE,
          403: ERROR_PAGE,
          404: ERROR_PAGE,
          502: ERROR_PAGE,
          ...errors('unavailable'),
        },
      },
    },
    async (request, reply) => {
      try {
        const { mode, next, link } = request.query;
        let linkTo: { userId: string; sessionId: string } | undefined;
        if (link === '1') {
          // Linking acts for the signed-in browser: a page of another site may not start it.
          guard.refuseForeignNavigation(request);
          const who = await browserUser(request);
          if (!who) throw new TesseraError('unauthorized', 'Sign in first, then link the provider.');
          linkTo = who;
        }
        const { url, flow } = await federation.start(request.params.id, {
          mode: mode ?? config.defaultMode,
          next,
          link: linkTo,
        });
        reply.setCookie(flowCookie, federation.sealFlow(flow), {
          httpOnly: true,
          secure: config.secureCookies,
          // The provider's redirect back is a cross-site top-level GET: Lax is sent with it.
          sameSite: 'lax',
          path: '/',
          maxAge: 600,
        });
        return reply.header('Cache-Control', 'no-store').redirect(url, 302);
      } catch (err) {
        return failurePage(request, reply, err);
      }
    },
  );

  app.get(
    '/auth/providers/:id/callback',
    {
      schema: {
        params: PROVIDER_PARAMS,
        summary: 'Provider sign-in callback',
        description:
          'Register it at the provider as `{issuer}/auth/providers/{id}/callback`. Checks the flow cookie, ' +
          '`state`, `iss` (RFC 9207), the code exchange with PKCE, and for OpenID Connect the ID token and ' +
          'its `nonce`. Then signs in (a new account for an identity never seen before, never an existing ' +
          'one by email) or links, sets the cookies of a cookie-delivery login and redirects to `next` or ' +
          '`/account`. With `SameSite=Strict` cookies it answers a page of this site that moves on there ' +
          'itself instead (a redirect would go on with the provider’s cross-site chain, which Strict ' +
          'cookies are not sent on). A failure answers a page with the error code, and nothing is created.',
        tags: ['federation'],
        security: PUBLIC,
        response: {
          200: media(
            'Signed in (or linked), with `SameSite=Strict` cookies: a page that moves on to `next` or ' +
              '`/account` (`<meta http-equiv="refresh">`, no script).',
            'text/html',
          ),
          302: noBody('Signed in (or linked): on to `next` or `/account`.'),
          400: ERROR_PAGE,
          401: ERROR_PAGE,
          403: ERROR_PAGE,
          404: ERROR_PAGE,
          409: ERROR_PAGE,
          502: ERROR_PAGE,
          ...errors('unavailable'),
        },
      },
    },
    async (request, reply) => {
      const cookie = request.cookies[flowCookie];
      clearFlow(reply);
      reply.header('Cache-Control', 'no-store');
      try {
        const flow = federation.openFlow(cookie, request.params.id);
        const current = new URL(request.url, config.issuer);
        const result = await federation.callback(request.params.id, current, flow, clientOf(request));
        if (result.kind === 'signed_in') {
          const issued = result.issued;
          if (issued.mode === 'token')
            setAuthCookie(reply, config, cookies.refresh, issued.refreshToken!, issued.refreshExpiresIn!);
          else setAuthCookie(reply, config, cookies.session, issued.sessionToken!, config.sessionAbsoluteTtl);
          request.log.info(
            {
              event: 'login',
              user: issued.user.id,
              sid: issued.session.id,
              mode: issued.mode,
              via: flow.provider,
            },
            'federated login',
          );
        }
        const to = result.next ?? '/account';
        // SameSite=Strict cookies set here are not sent on a redirect that goes on with the
        // provider's cross-site chain: a page of this site moves on instead, in a new navigation.
        if (config.sameSite === 'strict')
          return reply
            .header('Content-Security-Policy', PAGE_CSP)
            .type('text/html; charset=utf-8')
            .send(federationDonePage(result.kind, to));
        return reply.redirect(to, 302);
      } catch (err) {
        return failurePage(request, reply, err);
      }
    },
  );

  await app.register(async (signedInRoutes) => {
    signedInRoutes.addHook('preHandler', guard.requireAuth);

    signedInRoutes.get(
      '/auth/identities',
      {
        schema: {
          summary: 'My linked providers',
          description: 'The upstream identities linked to the signed-in account, oldest first.',
          tags: ['federation'],
          security: SIGNED_IN,
          response: {
            200: object(
              {
                identities: array(
                  object({
                    id: string('For `DELETE /auth/identities/{id}`.'),
                    provider: string('The provider id.'),
                    provider_name: string('Its display name.'),
                    email: { type: ['string', 'null'], description: 'As the provider said; never a key.' },
                    name: { type: ['string', 'null'], description: 'As the provider said.' },
                    created_at: TIMESTAMP,
                  }),
                ),
              },
              { description: 'The identities.' },
            ),
            ...errors(...GUARD_ERRORS),
          },
        },
      },
      async (request, reply) => {
        const who = signedIn(request);
        const names = new Map(federation.list().map((p) => [p.id, p.name]));
        reply.header('Cache-Control', 'no-store');
        return {
          identities: (await federation.listIdentities(who.user.id)).map((i) => ({
            id: i.id,
            provider: i.providerId,
            provider_name: names.get(i.providerId) ?? i.providerId,
            email: i.email,
            name: i.name,
            created_at: new Date(i.createdAt).toISOString(),
          })),
        };
      },
    );

    signedInRoutes.delete(
      '/auth/identities/:id',
      {
        schema: {
          params: ID_PARAMS,
          summary: 'Unlink a provider',
          description:
            'Removes one linked identity. Refused with `last_sign_in_method` when it is the only way into ' +
            'the account (no password and no other linked provider).',
          tags: ['federation'],
          security: SIGNED_IN_WRITE,
          response: {
            204: noBody('Unlinked.'),
            ...errors(...GUARD_ERRORS, 'not_found', 'last_sign_in_method'),
          },
        },
      },
      async (request, reply) => {
        const who = signedIn(request);
        const { id } = request.params as { id: string };
        await federation.unlink(who.user.id, id, who.session.id, clientOf(request));
        return reply.code(204).send();
      },
    );
  });
};
