import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { KeyRing } from '../../domain/keys.js';
import { StoreUnavailableError } from '../../errors.js';
import type { Store } from '../../store/types.js';
import type { Metrics } from '../metrics.js';

export interface MetaRouteOptions {
  keys: KeyRing;
  store: Store;
  metrics: Metrics;
  /** The OAuth provider's own storage, when it runs: readiness needs it too. */
  oauth?: { ping(): Promise<void> };
  /** Throws unless the reader may see /metrics. */
  authorizeMetrics: (request: FastifyRequest) => void;
}

/** The signing keys, liveness, readiness and Prometheus metrics. */
export const metaRoutes: FastifyPluginAsync<MetaRouteOptions> = async (
  app,
  { keys, store, metrics, oauth, authorizeMetrics },
) => {
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    await keys.refresh();
    reply.header('Cache-Control', 'public, max-age=300, stale-while-revalidate=60');
    return keys.jwks();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => {
    try {
      await Promise.all([store.ping(), oauth?.ping()]);
      return { status: 'ready', store: store.kind };
    } catch (err) {
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err);
    }
  });
  app.get('/metrics', async (request, reply) => {
    authorizeMetrics(request);
    reply.header('Content-Type', 'text/plain; version=0.0.4');
    return metrics.render();
  });
};
