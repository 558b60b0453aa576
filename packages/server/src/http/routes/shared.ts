import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import type { AuthService } from '../../domain/auth.js';
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

export const USERNAME = { type: 'string', minLength: 1, maxLength: 256 } as const;
export const PASSWORD = { type: 'string', minLength: 1, maxLength: 4096 } as const;
export const EMPTY_BODY = { type: ['object', 'null'], additionalProperties: false, properties: {} } as const;
export const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
} as const;

/** Where a request came from, for the audit log and the session list. */
export function clientOf(request: FastifyRequest) {
  const ua = request.headers['user-agent'];
  return { ip: request.ip ?? null, userAgent: typeof ua === 'string' ? ua : null };
}
