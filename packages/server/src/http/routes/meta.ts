import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { KeyRing } from '../../domain/keys.js';
import { StoreUnavailableError } from '../../errors.js';
import { pingStores, storeLabel } from '../../store/open.js';
import type { Stores } from '../../store/ports.js';
import type { Metrics } from '../metrics.js';

export interface MetaRouteOptions {
  keys: KeyRing;
  /** Readiness pings the backends behind every role. */
  stores: Pick<Stores, 'backends'>;
  metrics: Metrics;
  /** Throws unless the reader may see /metrics. */
  authorizeMetrics: (request: FastifyRequest) => void;
}

/** The signing keys, liveness, readiness and Prometheus metrics. */
export const metaRoutes: FastifyPluginAsync<MetaRouteOptions> = async (
  app,
  { keys, stores, metrics, authorizeMetrics },
) => {
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    await keys.refresh();
    reply.header('Cache-Control', 'public, max-age=300, stale-while-revalidate=60');
    return keys.jwks();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => {
    try {
      await pingStores(stores);
      return { status: 'ready', store: storeLabel(stores) };
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
