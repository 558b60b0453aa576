import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import { array, errors, JSON_BODY_ERRORS, noBody, object, string } from '../../openapi/schemas.js';
import type { SessionRecord } from '../../store/types.js';
import { clearAuthCookies } from '../cookies.js';
import { signedIn } from '../guard.js';
import {
  type AuthRouteOptions,
  clientOf,
  EMPTY_BODY,
  GUARD_ERRORS,
  ID_PARAMS,
  PASSWORD,
  SESSION_MODE,
  SIGNED_IN,
  SIGNED_IN_WRITE,
  TIMESTAMP,
  USER_FIELDS,
} from './shared.js';

const SESSION_EXPIRES_AT = string(
  'When the session ends unless used: the earlier of its idle and absolute end.',
  {
    format: 'date-time',
  },
);

/**
 * An instant (epoch ms) as RFC 3339 text. A busy session asks for the same few instants on every
 * request (its start and its end, which moves only when it is touched), and formatting a date
 * costs more than the rest of `/auth/me`'s answer, so recent ones are kept.
 */
const recentTimestamps = new Map<number, string>();
function timestamp(ms: number): string {
  let text = recentTimestamps.get(ms);
  if (text === undefined) {
    if (recentTimestamps.size >= 4096) recentTimestamps.clear();
    text = new Date(ms).toISOString();
    recentTimestamps.set(ms, text);
  }
  return text;
}

function sessionView(s: SessionRecord) {
  return {
    id: s.id,
    mode: s.mode,
    created_at: timestamp(s.createdAt),
    expires_at: timestamp(Math.min(s.expiresAt, s.idleExpiresAt)),
  };
}

/** The signed-in user's own account: who am I, my sessions, my password, sign out everywhere. */
export const accountRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: AuthRouteOptions }> = async (
  app,
  { config, auth, cookies, metrics, guard },
) => {
  app.addHook('preHandler', guard.requireAuth);

  app.get(
    '/auth/me',
    {
      schema: {
        summary: 'Who am I',
        description: 'The signed-in user and the session the request belongs to.',
        tags: ['account'],
        security: SIGNED_IN,
        response: {
          200: object(
            {
              user: object({ ...USER_FIELDS, roles: array(string()) }),
              session: object({
                id: string('The session id (`sid`).'),
                mode: SESSION_MODE,
                created_at: TIMESTAMP,
                expires_at: SESSION_EXPIRES_AT,
              }),
            },
            { description: 'The user and the session.' },
          ),
          ...errors(...GUARD_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const who = signedIn(request);
      reply.header('Cache-Control', 'no-store');
      return {
        user: { id: who.user.id, username: who.user.username, roles: who.user.roles },
        session: sessionView(who.session),
      };
    },
  );

  app.get(
    '/auth/sessions',
    {
      schema: {
        summary: 'My sessions',
        description: 'Every live session of the signed-in user, with its device and when it was last used.',
        tags: ['account'],
        security: SIGNED_IN,
        response: {
          200: object(
            {
              sessions: array(
                object({
                  id: string('The session id (`sid`).'),
                  mode: SESSION_MODE,
                  created_at: TIMESTAMP,
                  last_seen_at: TIMESTAMP,
                  expires_at: SESSION_EXPIRES_AT,
                  user_agent: { type: ['string', 'null'], description: 'The User-Agent it signed in with.' },
                  current: { type: 'boolean', description: 'The session this request belongs to.' },
                }),
              ),
            },
            { description: 'The sessions.' },
          ),
          ...errors(...GUARD_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const who = signedIn(request);
      const sessions = await auth.listSessions(who.user);
      reply.header('Cache-Control', 'no-store');
      return {
        sessions: sessions.map((s) => ({
          ...sessionView(s),
          last_seen_at: timestamp(s.lastSeenAt),
          user_agent: s.userAgent,
          current: s.id === who.session.id,
        })),
      };
    },
  );

  app.delete(
    '/auth/sessions/:id',
    {
      schema: {
        params: ID_PARAMS,
        summary: 'End one of my sessions',
        description:
          'Ends the session at once (its tokens enter the revocation feed); the current one also clears ' +
          'the cookies. Another user’s session answers `not_found`, like an unknown one.',
        tags: ['account'],
        security: SIGNED_IN_WRITE,
        response: {
          204: noBody('The session is over.'),
          ...errors(...JSON_BODY_ERRORS, ...GUARD_ERRORS, 'not_found'),
        },
      },
    },
    async (request, reply) => {
      const who = signedIn(request);
      const { id } = request.params;
      await auth.endSession(who.user, id, clientOf(request));
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
          properties: {
            current_password: PASSWORD,
            new_password: {
              ...PASSWORD,
              description: 'At least 8 characters, not a common password, not the username.',
            },
          },
        },
        summary: 'Change my password',
        description:
          'Needs the current password (throttled like a login). Ends every other session of the user ' +
          'and, unless the operator keeps them, the OAuth grants.',
        tags: ['account'],
        security: SIGNED_IN_WRITE,
        response: {
          204: noBody('The password is changed.'),
          ...errors(
            ...JSON_BODY_ERRORS,
            ...GUARD_ERRORS,
            'invalid_credentials',
            'weak_password',
            'password_not_set',
            'too_many_attempts',
          ),
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

  app.post(
    '/auth/logout-all',
    {
      schema: {
        body: EMPTY_BODY,
        summary: 'Sign out everywhere',
        description:
          'Ends every session of the user, revokes their tokens everywhere through the feed and, unless ' +
          'the operator keeps them, the OAuth grants; clears the cookies.',
        tags: ['account'],
        security: SIGNED_IN_WRITE,
        response: { 204: noBody('Every session is over.'), ...errors(...JSON_BODY_ERRORS, ...GUARD_ERRORS) },
      },
    },
    async (request, reply) => {
      await auth.logoutAll(signedIn(request).user, clientOf(request));
      clearAuthCookies(reply, config, cookies);
      return reply.code(204).send();
    },
  );
};
