import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import type { OAuthService } from '../service.js';

declare module 'fastify' {
  interface FastifyInstance {
    oauth: OAuthService;
  }
}

export interface OAuthProvider {
  service: OAuthService;
  adminToken: string | undefined;
}

/**
 * The OAuth 2 / OpenID Connect provider behind the OAuth route plugins: the service createTessera
 * built (with its store, pruning and closing), decorated onto the app as `app.oauth`.
 */
export function startOAuthProvider(
  app: FastifyInstance,
  config: Config,
  service: OAuthService,
): OAuthProvider {
  app.decorate('oauth', service);
  return { service, adminToken: config.adminToken };
}
