import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import type { AuthService } from '../../domain/auth.js';
import type { ErrorCode } from '../../errors.js';
import { object, type Security, string } from '../../openapi/schemas.js';
import type { CookieNames } from '../cookies.js';
import type { AuthGuard } from '../guard.js';
import type { Metrics } from '../metrics.js';

/** What the /auth/* route plugins are given. */
export interface AuthRouteOptions {
  config: Config;
  auth: AuthService;
  cookies: CookieNames;
  metrics: Metrics;
  guard: AuthGuard;
}

export const USERNAME = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  description: '3 to 64 letters, digits 0-9, dots, dashes or underscores; compared case-insensitively.',
} as const;
export const EMAIL = {
  type: 'string',
  minLength: 3,
  maxLength: 254,
  description: 'An email address; compared case-insensitively.',
} as const;
export const PASSWORD = { type: 'string', minLength: 1, maxLength: 4096 } as const;
export const EMPTY_BODY = {
  description: 'Nothing, or an empty JSON object.',
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {},
} as const;
export const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
} as const;

/** A signed-in user: a Bearer access or session token, or the session cookie. */
export const SIGNED_IN: Security = [{ bearer: [] }, { sessionCookie: [] }];
/** The same for a write: with the session cookie it also needs an allowed Origin and the CSRF token. */
export const SIGNED_IN_WRITE: Security = [{ bearer: [] }, { sessionCookie: [], csrfToken: [] }];
/** How the guard refuses a request that is not signed in, or a cookie write without its CSRF token. */
export const GUARD_ERRORS: ErrorCode[] = ['unauthorized', 'invalid_token', 'csrf_failed', 'unavailable'];

export const SESSION_MODE = string(
  'How the session proves itself: `session` (opaque session token) or `token` (JWTs).',
  {
    enum: ['session', 'token'],
  },
);
export const TIMESTAMP = string('An ISO 8601 time, UTC.', { format: 'date-time' });
export const USER_FIELDS = { id: string('The user id (`sub` of the access tokens).'), username: string() };
export const USER = object(USER_FIELDS);

/** Where a request came from, for the audit log and the session list. */
export function clientOf(request: FastifyRequest) {
  const ua = request.headers['user-agent'];
  return { ip: request.ip ?? null, userAgent: typeof ua === 'string' ? ua : null };
}
