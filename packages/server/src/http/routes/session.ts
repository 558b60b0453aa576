import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyReply } from 'fastify';
import type { IssuedTokens } from '../../domain/auth.js';
import { addressKey } from '../../domain/throttle.js';
import { TesseraError } from '../../errors.js';
import {
  errors,
  integer,
  JSON_BODY_ERRORS,
  noBody,
  object,
  PUBLIC,
  type Schema,
  type Security,
  string,
} from '../../openapi/schemas.js';
import type { SessionRecord } from '../../store/types.js';
import { clearAuthCookies, readCookie, setAuthCookie } from '../cookies.js';
import {
  type AuthRouteOptions,
  clientOf,
  EMAIL,
  EMPTY_BODY,
  GUARD_ERRORS,
  PASSWORD,
  SIGNED_IN_WRITE,
  USER,
  USERNAME,
} from './shared.js';

const BEARER = string('Always `Bearer`.', { enum: ['Bearer'] });
const ACCESS_TOKEN = string('An ES256 JWT (`typ: at+jwt`); send it as `Authorization: Bearer …`.');
const ACCESS_EXPIRES_IN = integer('Seconds the access token lives.');
const SESSION_ID = string('The session (token mode: the refresh token family), as `sid` in tokens.');
const CSRF_TOKEN = string('Send it back as `X-CSRF-Token` on cookie-authenticated writes.');

/** Login and refresh answers: one shape per mode and delivery. */
const ISSUED = {
  tokenHeader: object(
    {
      token_type: BEARER,
      access_token: ACCESS_TOKEN,
      expires_in: ACCESS_EXPIRES_IN,
      refresh_token: string('Rotates on every use; send it to `POST /auth/refresh`.'),
      refresh_expires_in: integer('Seconds the refresh token lives unless used (idle expiry).'),
      session_id: SESSION_ID,
    },
    { description: 'Token mode, header delivery.' },
  ),
  tokenCookie: object(
    {
      token_type: BEARER,
      access_token: ACCESS_TOKEN,
      expires_in: ACCESS_EXPIRES_IN,
      session_id: SESSION_ID,
      csrf_token: CSRF_TOKEN,
    },
    { description: 'Token mode, cookie delivery: the refresh token is in the HttpOnly refresh cookie.' },
  ),
  sessionHeader: object(
    {
      token_type: BEARER,
      session_token: string('An opaque `id.secret`; send it as `Authorization: Bearer …`.'),
      expires_in: integer('Seconds the session lives unless used (idle expiry).'),
      session_id: SESSION_ID,
    },
    { description: 'Session mode, header delivery.' },
  ),
  sessionCookie: object(
    {
      session_id: SESSION_ID,
      expires_in: integer('Seconds the session lives unless used (idle expiry).'),
      csrf_token: CSRF_TOKEN,
    },
    { description: 'Session mode, cookie delivery: the session token is in the HttpOnly session cookie.' },
  ),
} satisfies Record<string, Schema>;

/** The refresh cookie, with the CSRF token of its session for a write. */
const REFRESH_COOKIE_WRITE: Security = [{ refreshCookie: [], csrfToken: [] }];

/**
 * Signing in and out: register, login, refresh, the CSRF token for a browser that reloaded,
 * and logout. Login and refresh deliver tokens in the body or as HttpOnly cookies.
 */
export const sessionRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: AuthRouteOptions }> = async (
  app,
  { config, auth, cookies, metrics, guard },
) => {
  function sendIssued(reply: FastifyReply, issued: IssuedTokens, delivery: 'header' | 'cookie') {
    reply.header('Cache-Control', 'no-store');
    reply.header('Pragma', 'no-cache');
    if (issued.mode === 'token') {
      if (delivery === 'cookie') {
        setAuthCookie(reply, config, cookies.refresh, issued.refreshToken!, issued.refreshExpiresIn!);
        return reply.send({
          token_type: 'Bearer',
          access_token: issued.accessToken,
          expires_in: issued.accessExpiresIn,
          session_id: issued.session.id,
          csrf_token: auth.csrfToken(issued.session.id),
        });
      }
      return reply.send({
        token_type: 'Bearer',
        access_token: issued.accessToken,
        expires_in: issued.accessExpiresIn,
        refresh_token: issued.refreshToken,
        refresh_expires_in: issued.refreshExpiresIn,
        session_id: issued.session.id,
      });
    }
    if (delivery === 'cookie') {
      setAuthCookie(reply, config, cookies.session, issued.sessionToken!, config.sessionAbsoluteTtl);
      return reply.send({
        session_id: issued.session.id,
        expires_in: issued.sessionExpiresIn,
        csrf_token: auth.csrfToken(issued.session.id),
      });
    }
    return reply.send({
      token_type: 'Bearer',
      session_token: issued.sessionToken,
      expires_in: issued.sessionExpiresIn,
      session_id: issued.session.id,
    });
  }

  app.post(
    '/auth/register',
    {
      schema: {
        body: {
          type: 'object',
          required: ['username', 'password'],
          additionalProperties: false,
          properties: {
            username: USERNAME,
            password: { ...PASSWORD, description: 'At least 8 characters, not a common password.' },
            email: {
              ...EMAIL,
              description:
                'An email address (required when the operator says so); a link and a code to verify it are mailed.',
            },
          },
        },
        summary: 'Create an account',
        description:
          'Registers a user with a password (at least 8 characters, not a common one, not the username). ' +
          'Limited per client address and hour.',
        tags: ['session'],
        security: PUBLIC,
        response: {
          201: object({ user: USER }, { description: 'The account was created; sign in next.' }),
          ...errors(
            ...JSON_BODY_ERRORS,
            'weak_password',
            'username_taken',
            'too_many_attempts',
            'unavailable',
          ),
        },
      },
    },
    async (request, reply) => {
      const { username, password, email } = request.body;
      await auth.throttle.limit(
        `register:ip:${addressKey(request.ip)}`,
        config.registerPerIpPerHour,
        60 * 60_000,
      );
      const user = await auth.register(username, password, clientOf(request), email);
      metrics.inc('tessera_registrations_total');
      return reply.code(201).send({ user: { id: user.id, username: user.username } });
    },
  );

  app.post(
    '/auth/login',
    {
      schema: {
        body: {
          type: 'object',
          required: ['username', 'password'],
          additionalProperties: false,
          properties: {
            username: USERNAME,
            password: PASSWORD,
            mode: {
              type: 'string',
              enum: ['session', 'token'],
              description: 'An opaque session token, or JWT access and refresh tokens.',
            },
            delivery: {
              type: 'string',
              enum: ['header', 'cookie'],
              description: 'In the body, or in an HttpOnly cookie with a CSRF token.',
            },
          },
        },
        summary: 'Sign in',
        description:
          '`mode` is `session` or `token` (default from the configuration); `delivery` is `header` ' +
          '(tokens in the body) or `cookie` (HttpOnly cookie plus a CSRF token), by default `cookie` ' +
          'when the request carries an `Origin`. Cookie delivery is refused to origins not on the ' +
          'allow-list. Unknown users, wrong passwords and disabled accounts get the same answer; ' +
          'repeated failures lock the account and the client address for a while (`Retry-After`). ' +
          '`username` may be the account’s verified email address instead. When the operator requires a ' +
          'verified address, the right password of an account without one answers `email_not_verified`.',
        tags: ['session'],
        security: PUBLIC,
        response: {
          200: {
            description: 'Signed in; a new session.',
            anyOf: [ISSUED.tokenHeader, ISSUED.tokenCookie, ISSUED.sessionHeader, ISSUED.sessionCookie],
          },
          ...errors(
            ...JSON_BODY_ERRORS,
            'invalid_credentials',
            'email_not_verified',
            'too_many_attempts',
            'csrf_failed',
            'unavailable',
          ),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const origin = request.headers.origin;
      const delivery = body.delivery ?? (origin !== undefined ? 'cookie' : 'header');
      // A disallowed site may not plant a session cookie in the browser (login CSRF).
      if (delivery === 'cookie' && origin !== undefined && !guard.isAllowedOrigin(origin)) {
        throw new TesseraError('csrf_failed', 'This origin may not sign in with cookies.');
      }
      try {
        const issued = await auth.login(
          { username: body.username, password: body.password, mode: body.mode ?? config.defaultMode },
          clientOf(request),
        );
        metrics.inc('tessera_logins_total', { result: 'ok', mode: issued.mode });
        request.log.info(
          { event: 'login', user: issued.user.id, sid: issued.session.id, mode: issued.mode },
          'login',
        );
        return sendIssued(reply, issued, delivery);
      } catch (err) {
        if (err instanceof TesseraError) metrics.inc('tessera_logins_total', { result: err.code });
        throw err;
      }
    },
  );

  app.post(
    '/auth/refresh',
    {
      schema: {
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            refresh_token: {
              type: 'string',
              maxLength: 512,
              description: 'Header delivery; cookie delivery sends no body.',
            },
          },
        },
        summary: 'Rotate a refresh token',
        description:
          'Header delivery sends `{refresh_token}`; cookie delivery sends no token, the refresh ' +
          'cookie and `X-CSRF-Token`. Answers a new access token and the successor refresh token; a ' +
          'repeat within the grace window gets the same successor while that one is unused; any ' +
          'other reuse ends the session (`refresh_token_reused`). A failed cookie refresh clears ' +
          'the cookies.',
        tags: ['session'],
        security: [...REFRESH_COOKIE_WRITE, {}],
        response: {
          200: { description: 'The new tokens.', anyOf: [ISSUED.tokenHeader, ISSUED.tokenCookie] },
          ...errors(
            ...JSON_BODY_ERRORS,
            'invalid_refresh_token',
            'refresh_token_reused',
            'too_many_attempts',
            'csrf_failed',
            'unavailable',
          ),
        },
      },
    },
    async (request, reply) => {
      let token = request.body?.refresh_token;
      let delivery: 'header' | 'cookie' = 'header';
      if (token === undefined) {
        token = readCookie(request, cookies.refresh);
        if (token === undefined)
          throw new TesseraError('invalid_refresh_token', 'No refresh token was sent.');
        delivery = 'cookie';
        const session = await auth.sessionOfRefreshToken(token, 'family');
        // A cookie-borne refresh is a cookie-authenticated write: Origin and CSRF token, bound to
        // the family, or to the session cookie's session beside it (a browser holding both, a
        // provider sign-in beside a token-mode app, gets that one from /auth/csrf; a foreign page
        // can read neither). A token no family is found for has no CSRF token to check, but the
        // request must still come from an allowed origin before it may end a family or clear cookies.
        const beside = session ? await guard.cookieSession(request) : null;
        guard.requireCsrf(
          request,
          [session?.id, beside?.session.id].filter((id) => id !== undefined),
        );
        if (beside) await guard.touch(request, beside);
      }
      try {
        const issued = await auth.refresh(token, clientOf(request));
        metrics.inc('tessera_refreshes_total', { result: 'ok' });
        return sendIssued(reply, issued, delivery);
      } catch (err) {
        if (err instanceof TesseraError) {
          metrics.inc('tessera_refreshes_total', { result: err.code });
          if (err.code === 'refresh_token_reused') {
            metrics.inc('tessera_refresh_reuse_total');
            request.log.warn({ event: 'refresh_reuse' }, 'refresh token reuse: family revoked');
          }
          // Only a refresh token that is no good is cleared: a store that cannot answer right
          // now (unavailable) or a limit (too_many_attempts) must not sign the browser out.
          if (
            delivery === 'cookie' &&
            (err.code === 'invalid_refresh_token' || err.code === 'refresh_token_reused')
          )
            clearAuthCookies(reply, config, cookies);
        }
        throw err;
      }
    },
  );

  app.get(
    '/auth/csrf',
    {
      schema: {
        summary: 'The CSRF token of a browser login',
        description:
          'For a page that reloaded: the CSRF token bound to the session cookie or the refresh cookie. ' +
          'Only allow-listed origins can read the answer (CORS).',
        tags: ['session'],
        security: [{ sessionCookie: [] }, { refreshCookie: [] }],
        response: {
          200: object(
            {
              csrf_token: CSRF_TOKEN,
              session_id: SESSION_ID,
              mode: string('`token` when the refresh cookie answered.', { enum: ['token'] }),
            },
            { optional: ['mode'], description: 'The CSRF token.' },
          ),
          ...errors('unauthorized', 'unavailable'),
        },
      },
    },
    async (request, reply) => {
      // Readable only by allow-listed origins (CORS), so it adds nothing a foreign site can use.
      reply.header('Cache-Control', 'no-store');
      const viaSession = await guard.cookieSession(request);
      if (viaSession) {
        await guard.touch(request, viaSession);
        return { csrf_token: auth.csrfToken(viaSession.session.id), session_id: viaSession.session.id };
      }
      const refreshCookie = readCookie(request, cookies.refresh);
      const family = refreshCookie ? await auth.sessionOfRefreshToken(refreshCookie, 'family') : null;
      if (family) return { csrf_token: auth.csrfToken(family.id), session_id: family.id, mode: 'token' };
      throw new TesseraError('unauthorized', 'Sign in first.');
    },
  );

  app.post(
    '/auth/logout',
    {
      schema: {
        body: EMPTY_BODY,
        summary: 'Sign out',
        description:
          'Ends the current session (token mode: its refresh token family) and clears the cookies. ' +
          'A browser that lost its access token signs out with the refresh cookie and `X-CSRF-Token`.',
        tags: ['session'],
        security: [...SIGNED_IN_WRITE, ...REFRESH_COOKIE_WRITE],
        response: {
          204: noBody('Signed out.'),
          ...errors(...JSON_BODY_ERRORS, ...GUARD_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const ending: SessionRecord[] = [];
      if (request.headers.authorization !== undefined)
        ending.push((await guard.authenticate(request)).session);
      else {
        // A browser: whatever its cookies still name, the session cookie's session and the
        // refresh cookie's family (token mode in a browser that lost its access token), so a
        // stale cookie of one never keeps the other signed in. The CSRF token is bound to one.
        const viaSession = await guard.cookieSession(request);
        if (viaSession) ending.push(viaSession.session);
        const refreshCookie = readCookie(request, cookies.refresh);
        const family = refreshCookie ? await auth.sessionOfRefreshToken(refreshCookie, 'family') : null;
        if (family && family.id !== viaSession?.session.id) ending.push(family);
        if (ending.length === 0) throw new TesseraError('unauthorized', 'Sign in first.');
        guard.requireCsrf(
          request,
          ending.map((s) => s.id),
        );
      }
      for (const session of ending) await auth.logout(session, clientOf(request));
      clearAuthCookies(reply, config, cookies);
      return reply.code(204).send();
    },
  );
};
