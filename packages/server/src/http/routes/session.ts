import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyReply } from 'fastify';
import type { IssuedTokens } from '../../domain/auth.js';
import { TesseraError } from '../../errors.js';
import type { SessionRecord } from '../../store/types.js';
import { clearAuthCookies, readCookie, setAuthCookie } from '../cookies.js';
import { type AuthRouteOptions, clientOf, EMPTY_BODY, PASSWORD, USERNAME } from './shared.js';

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
          csrf_token: issued.csrfToken,
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
        csrf_token: issued.csrfToken,
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
          properties: { username: USERNAME, password: PASSWORD },
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      await auth.throttle.limit(`register:ip:${request.ip}`, config.registerPerIpPerHour, 60 * 60_000);
      const user = await auth.register(username, password, clientOf(request));
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
            mode: { type: 'string', enum: ['session', 'token'] },
            delivery: { type: 'string', enum: ['header', 'cookie'] },
          },
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
          properties: { refresh_token: { type: 'string', maxLength: 512 } },
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
        const session = await auth.sessionOfRefreshToken(token);
        // A cookie-borne refresh is a cookie-authenticated write: Origin and CSRF token, bound to the family.
        if (session) guard.requireCsrf(request, session.id);
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
          if (delivery === 'cookie') clearAuthCookies(reply, config, cookies);
        }
        throw err;
      }
    },
  );

  app.get('/auth/csrf', async (request, reply) => {
    // Readable only by allow-listed origins (CORS), so it adds nothing a foreign site can use.
    reply.header('Cache-Control', 'no-store');
    const viaSession = await guard.cookieSession(request);
    if (viaSession)
      return { csrf_token: auth.csrfToken(viaSession.session.id), session_id: viaSession.session.id };
    const refreshCookie = readCookie(request, cookies.refresh);
    const family = refreshCookie ? await auth.sessionOfRefreshToken(refreshCookie) : null;
    if (family) return { csrf_token: auth.csrfToken(family.id), session_id: family.id, mode: 'token' };
    throw new TesseraError('unauthorized', 'Sign in first.');
  });

  app.post('/auth/logout', { schema: { body: EMPTY_BODY } }, async (request, reply) => {
    let session: SessionRecord | null = null;
    const hasBearer = request.headers.authorization !== undefined;
    const refreshCookie = readCookie(request, cookies.refresh);
    if (!hasBearer && readCookie(request, cookies.session) === undefined && refreshCookie !== undefined) {
      // Token mode in a browser that lost its access token: the refresh cookie plus CSRF ends the family.
      session = await auth.sessionOfRefreshToken(refreshCookie);
      if (!session) throw new TesseraError('unauthorized', 'Sign in first.');
      guard.requireCsrf(request, session.id);
    } else {
      session = (await guard.authenticate(request)).session;
    }
    await auth.logout(session, clientOf(request));
    clearAuthCookies(reply, config, cookies);
    return reply.code(204).send();
  });
};
