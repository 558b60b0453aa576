import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import type { AuthService } from '../../domain/auth.js';
import type { Revocations } from '../../domain/revocations.js';
import type { Secrets } from '../../domain/secrets.js';
import type { Store } from '../../store/types.js';
import { connectOAuthStore } from '../open.js';
import { OAuthService } from '../service.js';
import type { OAuthStore } from '../types.js';

declare module 'fastify' {
  interface FastifyInstance {
    oauth: OAuthService;
  }
}

export interface OAuthProviderDeps {
  config: Config;
  store: Store;
  auth: AuthService;
  revocations: Revocations;
  secrets: Secrets;
  now?: () => number;
  /** Default: what the config names (connectOAuthStore: PostgreSQL or `oauth.sqlite`), closed with the app. */
  oauthStore?: OAuthStore;
}

export interface OAuthProvider {
  service: OAuthService;
  adminToken: string | undefined;
}

/**
 * The OAuth 2 / OpenID Connect provider behind the OAuth route plugins: its store (pruned
 * hourly, closed with the app) and service, which also answers the account server's grant lookups.
 */
export async function startOAuthProvider(
  app: FastifyInstance,
  deps: OAuthProviderDeps,
): Promise<OAuthProvider> {
  const adminToken = deps.config.adminToken;
  const oauthStore = deps.oauthStore ?? (await connectOAuthStore(deps.config));
  const service = new OAuthService({
    config: deps.config,
    store: deps.store,
    oauth: oauthStore,
    tokens: deps.auth.tokens,
    revocations: deps.revocations,
    secrets: deps.secrets,
    now: deps.now,
  });
  deps.auth.grants = service;
  app.decorate('oauth', service);
  const prune = setInterval(() => void oauthStore.prune(Date.now()).catch(() => undefined), 3_600_000);
  prune.unref();
  app.addHook('onClose', async () => {
    clearInterval(prune);
    if (!deps.oauthStore) await oauthStore.close();
  });
  return { service, adminToken };
}
