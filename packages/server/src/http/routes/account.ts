import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import type { SessionRecord } from '../../store/types.js';
import { clearAuthCookies } from '../cookies.js';
import { signedIn } from '../guard.js';
import { type AuthRouteOptions, clientOf, EMPTY_BODY, ID_PARAMS, PASSWORD } from './shared.js';

function sessionView(s: SessionRecord) {
  return {
    id: s.id,
    mode: s.mode,
    created_at: new Date(s.createdAt).toISOString(),
    expires_at: new Date(Math.min(s.expiresAt, s.idleExpiresAt)).toISOString(),
  };
}

/** The signed-in user's own account: who am I, my sessions, my password, sign out everywhere. */
export const accountRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: AuthRouteOptions }> = async (
  app,
  { config, auth, cookies, metrics, guard },
) => {
  app.addHook('preHandler', guard.requireAuth);

  app.get('/auth/me', async (request, reply) => {
    const who = signedIn(request);
    reply.header('Cache-Control', 'no-store');
    return {
      user: { id: who.user.id, username: who.user.username, roles: who.user.roles },
      session: sessionView(who.session),
    };
  });

  app.get('/auth/sessions', async (request, reply) => {
    const who = signedIn(request);
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

  app.delete('/auth/sessions/:id', { schema: { params: ID_PARAMS } }, async (request, reply) => {
    const who = signedIn(request);
    const { id } = request.params;
    await auth.endSession(who.user, id, clientOf(request));
    if (id === who.session.id) clearAuthCookies(reply, config, cookies);
    return reply.code(204).send();
  });

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
      const who = signedIn(request);
      const { current_password, new_password } = request.body;
      await auth.changePassword(who, current_password, new_password, clientOf(request));
      metrics.inc('tessera_password_changes_total');
      return reply.code(204).send();
    },
  );

  app.post('/auth/logout-all', { schema: { body: EMPTY_BODY } }, async (request, reply) => {
    await auth.logoutAll(signedIn(request).user, clientOf(request));
    clearAuthCookies(reply, config, cookies);
    return reply.code(204).send();
  });
};
