import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Authenticated, AuthService, IssuedTokens } from '../domain/auth.js';
import { TesseraError } from '../errors.js';
import type { SessionMode, SessionRecord } from '../store/types.js';
import { type CookieNames, clearAuthCookies, readCookie, setAuthCookie } from './cookies.js';
import type { Metrics } from './metrics.js';
import { originAllowedForWrite } from './security.js';

declare module 'fastify' {
  interface FastifyRequest {
    auth?: Authenticated;
  }
}

const USERNAME = { type: 'string', minLength: 1, maxLength: 256 } as const;
const PASSWORD = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const EMPTY_BODY = { type: ['object', 'null'], additionalProperties: false, properties: {} } as const;

export interface AuthRouteDeps {
  config: Config;
  auth: AuthService;
  cookies: CookieNames;
  metrics: Metrics;
  isAllowedOrigin: (origin: string | undefined) => boolean;
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,8192})$/i.exec(header);
  if (!m) throw new TesseraError('invalid_token', 'The Authorization header must be "Bearer <token>".');
  return m[1];
}

function isWrite(request: FastifyRequest): boolean {
  return request.method !== 'GET' && request.method !== 'HEAD' && request.method !== 'OPTIONS';
}

function sessionView(s: SessionRecord) {
  return {
    id: s.id,
    mode: s.mode,
    created_at: new Date(s.createdAt).toISOString(),
    expires_at: new Date(Math.min(s.expiresAt, s.idleExpiresAt)).toISOString(),
  };
}

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRouteDeps): void {
  const { config, auth, cookies, metrics } = deps;

  /** A CSRF failure: the Origin is not allowed or the session-bound token is missing or wrong. */
  function requireCsrf(request: FastifyRequest, sessionId: string): void {
    if (
      !originAllowedForWrite(request, deps.isAllowedOrigin) ||
      !auth.checkCsrf(sessionId, request.headers['x-csrf-token'])
    ) {
      throw new TesseraError(
        'csrf_failed',
        'Cross-site request refused: missing or wrong Origin or X-CSRF-Token.',
      );
    }
  }

  /** Bearer (access or session token) or the session cookie; cookie writes need CSRF. */
  async function authenticate(request: FastifyRequest): Promise<Authenticated> {
    const token = bearer(request);
    let result: Authenticated | null = null;
    if (token !== undefined) {
      result = await auth.authenticate(token, 'bearer');
      if (!result) throw new TesseraError('invalid_token', 'The access or session token is not valid.');
    } else {
      const cookie = readCookie(request, cookies.session);
      if (cookie !== undefined) result = await auth.authenticate(cookie, 'cookie');
      if (!result) throw new TesseraError('unauthorized', 'Sign in first.');
      if (isWrite(request)) requireCsrf(request, result.session.id);
    }
    request.auth = result;
    return result;
  }

  function sendIssued(
    reply: FastifyReply,
    issued: IssuedTokens,
    delivery: 'header' | 'cookie',
    status = 200,
  ) {
    reply.header('Cache-Control', 'no-store');
    reply.header('Pragma', 'no-cache');
    if (issued.mode === 'token') {
      if (delivery === 'cookie') {
        setAuthCookie(reply, config, cookies.refresh, issued.refreshToken!, issued.refreshExpiresIn!);
        return reply.code(status).send({
          token_type: 'Bearer',
          access_token: issued.accessToken,
          expires_in: issued.accessExpiresIn,
          session_id: issued.session.id,
          csrf_token: issued.csrfToken,
        });
      }
      return reply.code(status).send({
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
      return reply.code(status).send({
        session_id: issued.session.id,
        expires_in: issued.sessionExpiresIn,
        csrf_token: issued.csrfToken,
      });
    }
    return reply.code(status).send({
      token_type: 'Bearer',
      session_token: issued.sessionToken,
      expires_in: issued.sessionExpiresIn,
      session_id: issued.session.id,
    });
  }

  function client(request: FastifyRequest) {
    const ua = request.headers['user-agent'];
    return { ip: request.ip ?? null, userAgent: typeof ua === 'string' ? ua : null };
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
      const body = request.body as { username: string; password: string };
      await auth.throttle.limit(`register:ip:${request.ip}`, config.registerPerIpPerHour, 60 * 60_000);
      const user = await auth.register(body.username, body.password, client(request));
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
      const body = request.body as {
        username: string;
        password: string;
        mode?: SessionMode;
        delivery?: 'header' | 'cookie';
      };
      const origin = request.headers.origin;
      const delivery = body.delivery ?? (origin !== undefined ? 'cookie' : 'header');
      // A disallowed site may not plant a session cookie in the browser (login CSRF).
      if (delivery === 'cookie' && origin !== undefined && !deps.isAllowedOrigin(origin)) {
        throw new TesseraError('csrf_failed', 'This origin may not sign in with cookies.');
      }
      try {
        const issued = await auth.login(
          { username: body.username, password: body.password, mode: body.mode ?? config.defaultMode },
          client(request),
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
      const body = (request.body ?? {}) as { refresh_token?: string };
      let token = body.refresh_token;
      let delivery: 'header' | 'cookie' = 'header';
      if (token === undefined) {
        token = readCookie(request, cookies.refresh);
        if (token === undefined)
          throw new TesseraError('invalid_refresh_token', 'No refresh token was sent.');
        delivery = 'cookie';
        const session = await auth.sessionOfRefreshToken(token);
        // A cookie-borne refresh is a cookie-authenticated write: Origin and CSRF token, bound to the family.
        if (session) requireCsrf(request, session.id);
      }
      try {
        const issued = await auth.refresh(token, client(request));
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
    const sessionCookie = readCookie(request, cookies.session);
    const viaSession = sessionCookie ? await auth.authenticate(sessionCookie, 'cookie') : null;
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
      requireCsrf(request, session.id);
    } else {
      session = (await authenticate(request)).session;
    }
    await auth.logout(session, client(request));
    clearAuthCookies(reply, config, cookies);
    return reply.code(204).send();
  });

  app.post('/auth/logout-all', { schema: { body: EMPTY_BODY } }, async (request, reply) => {
    const who = await authenticate(request);
    const ids = await auth.logoutAll(who.user, client(request));
    clearAuthCookies(reply, config, cookies);
    return reply.code(204).send();
  });

  app.get('/auth/me', async (request, reply) => {
    const who = await authenticate(request);
    reply.header('Cache-Control', 'no-store');
    return {
      user: { id: who.user.id, username: who.user.username, roles: who.user.roles },
      session: sessionView(who.session),
    };
  });

  app.get('/auth/sessions', async (request, reply) => {
    const who = await authenticate(request);
    const sessions = await auth.listSessions(who.user);
    reply.header('Cache-Control', 'no-store');
    return {
      sessions: sessions.map((s) => ({
        id: s.id,
        mode: s.mode,
        created_at: new Date(s.createdAt).toISOString(),
        last_seen_at: new Date(s.lastSeenAt).toISOString(),
        expires_at: new Date(Math.min(s.expiresAt, s.idleExpiresAt)).toISOString(),
        user_agent: s.userAgent,
        current: s.id === who.session.id,
      })),
    };
  });

  app.delete(
    '/auth/sessions/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } } },
      },
    },
    async (request, reply) => {
      const who = await authenticate(request);
      const { id } = request.params as { id: string };
      await auth.endSession(who.user, id, client(request));
      if (id === who.session.id) clearAuthCookies(reply, config, cookies);
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/password',
    {
      schema: {
        body: {
          type: 'object',
          required: ['current_password', 'new_password'],
          additionalProperties: false,
          properties: { current_password: PASSWORD, new_password: PASSWORD },
        },
      },
    },
    async (request, reply) => {
      const who = await authenticate(request);
      const body = request.body as { current_password: string; new_password: string };
      await auth.changePassword(who, body.current_password, body.new_password, client(request));
      metrics.inc('tessera_password_changes_total');
      return reply.code(204).send();
    },
  );
}
