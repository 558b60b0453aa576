import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { KeyRing } from '../../domain/keys.js';
import { StoreUnavailableError } from '../../errors.js';
import type { MailQueue } from '../../mail/queue.js';
import { array, errors, integer, media, object, PUBLIC, string } from '../../openapi/schemas.js';
import { pingStores, storeLabel } from '../../store/open.js';
import type { Stores } from '../../store/ports.js';
import type { Metrics } from '../metrics.js';

const JWK = object(
  {
    kty: string('Always `EC`.', { enum: ['EC'] }),
    crv: string('Always `P-256`.', { enum: ['P-256'] }),
    x: string(),
    y: string(),
    kid: string('Matches the `kid` in the token header.'),
    alg: string('Always `ES256`.', { enum: ['ES256'] }),
    use: string('Always `sig`.', { enum: ['sig'] }),
  },
  { description: 'A public signing key (RFC 7517).' },
);

export interface MetaRouteOptions {
  keys: KeyRing;
  /** Readiness pings the backends behind every role. */
  stores: Pick<Stores, 'backends'>;
  metrics: Metrics;
  /** Readiness reports the mail queue (mail trouble does not make the instance unready). */
  mail: Pick<MailQueue, 'state'>;
  /** Throws unless the reader may see /metrics. */
  authorizeMetrics: (request: FastifyRequest) => void;
}

/** The signing keys, liveness, readiness and Prometheus metrics. */
export const metaRoutes: FastifyPluginAsync<MetaRouteOptions> = async (
  app,
  { keys, stores, metrics, mail, authorizeMetrics },
) => {
  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        summary: 'The public signing keys',
        description:
          'Every key a valid token can be signed with: current first, then the next one (published ' +
          'before it signs) and retired ones (kept while their tokens live). Cacheable for five minutes.',
        tags: ['discovery'],
        security: PUBLIC,
        response: {
          200: object({ keys: array(JWK) }, { description: 'The JWK set.' }),
          ...errors('unavailable'),
        },
      },
    },
    async (_request, reply) => {
      await keys.refresh();
      reply.header('Cache-Control', 'public, max-age=300, stale-while-revalidate=60');
      return keys.jwks();
    },
  );
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness',
        description: 'The process answers; says nothing about the stores.',
        tags: ['operations'],
        security: PUBLIC,
        response: {
          200: object({ status: string(undefined, { enum: ['ok'] }) }, { description: 'Alive.' }),
          ...errors(),
        },
      },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness',
        description:
          'Every store behind the server answers; take the instance out of rotation otherwise. Also says ' +
          'how the mail queue is doing: mails wait and are retried while the mail server is down, so that ' +
          'alone does not make the instance unready.',
        tags: ['operations'],
        security: PUBLIC,
        response: {
          200: object(
            {
              status: string(undefined, { enum: ['ready'] }),
              store: string('The backends, e.g. `sqlite` or `postgres+redis`.'),
              mail: object(
                {
                  transport: string('`smtp`, or `outbox` (the development folder).', {
                    enum: ['smtp', 'outbox'],
                  }),
                  queued: integer('Mails waiting to be sent, by every instance of the deployment.'),
                  retrying: {
                    type: 'boolean',
                    description: 'A waiting mail has failed to send; it is retried later.',
                  },
                },
                { description: 'The mail queue.' },
              ),
            },
            { description: 'Ready to serve.' },
          ),
          ...errors('unavailable'),
        },
      },
    },
    async () => {
      try {
        await pingStores(stores);
        const { transport, queued, retrying } = await mail.state();
        return { status: 'ready', store: storeLabel(stores), mail: { transport, queued, retrying } };
      } catch (err) {
        throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err);
      }
    },
  );
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        description:
          'Counters and gauges in the Prometheus text format, for operators (see the `metricsToken` scheme).',
        tags: ['operations'],
        security: [{ metricsToken: [] }, {}],
        response: {
          200: media('The metrics (text format 0.0.4).', 'text/plain'),
          ...errors('unauthorized', 'forbidden'),
        },
      },
    },
    async (request, reply) => {
      authorizeMetrics(request);
      reply.header('Content-Type', 'text/plain; version=0.0.4');
      return await metrics.render();
    },
  );
};
