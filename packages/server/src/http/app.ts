import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { AuthService } from '../domain/auth.js';
import type { EmailAccounts } from '../domain/email.js';
import type { KeyRing } from '../domain/keys.js';
import { hashesWaiting } from '../domain/passwords.js';
import type { Revocations } from '../domain/revocations.js';
import type { TokenIssuer } from '../domain/tokens.js';
import { TesseraError } from '../errors.js';
import type { FederationService } from '../federation/service.js';
import type { MailQueue, MailQueueState } from '../mail/queue.js';
import { authorizeRoutes } from '../oauth/routes/authorize.js';
import { clientRoutes } from '../oauth/routes/clients.js';
import { discoveryRoutes } from '../oauth/routes/discovery.js';
import { grantRoutes } from '../oauth/routes/grants.js';
import { introspectionRoutes } from '../oauth/routes/introspection.js';
import { startOAuthProvider } from '../oauth/routes/provider.js';
import { tokenRoutes } from '../oauth/routes/token.js';
import { userinfoRoutes } from '../oauth/routes/userinfo.js';
import type { RegisteredRoute } from '../openapi/document.js';
import { collectRoutes, openApiRoute, SERVER_VERSION } from '../openapi/route.js';
import { registerPages } from '../pages/index.js';
import type { Stores } from '../store/ports.js';
import type { OAuthParts } from '../tessera.js';
import { cookieNames } from './cookies.js';
import { clientErrorHandler, registerErrorHandling } from './errors.js';
import { authGuard } from './guard.js';
import { internalAccess } from './internal-access.js';
import { Metrics } from './metrics.js';
import { accountRoutes } from './routes/account.js';
import { emailRoutes } from './routes/email.js';
import { federationRoutes } from './routes/federation.js';
import { feedRoutes } from './routes/feed.js';
import { metaRoutes } from './routes/meta.js';
import { sessionRoutes } from './routes/session.js';
import { originPolicy, registerSecurityHeaders, securityHeaders } from './security.js';

/** The parts createTessera built; buildApp puts HTTP in front of them. */
export interface AppOptions {
  config: Config;
  stores: Stores;
  keys: KeyRing;
  tokens: TokenIssuer;
  revocations: Revocations;
  auth: AuthService;
  email: EmailAccounts;
  mail: MailQueue;
  oauth: OAuthParts | undefined;
  /** Sign-in through upstream providers (routes only when providers are configured). */
  federation?: FederationService;
  /** pino options or false; tests pass false. */
  logger?: boolean | Record<string, unknown>;
  now?: () => number;
  heartbeatMs?: number;
  /**
   * Tests: serialize answers with JSON.stringify instead of the response schemas, so a field a
   * schema lacks shows up (and fails the document check) instead of being dropped.
   */
  rawSerializer?: boolean;
}

export interface App {
  fastify: FastifyInstance;
  auth: AuthService;
  keys: KeyRing;
  tokens: TokenIssuer;
  revocations: Revocations;
  metrics: Metrics;
  stores: Stores;
  config: Config;
  /** Every route registered, as Fastify's onRoute hook saw it: what the OpenAPI document lists. */
  routes: readonly RegisteredRoute[];
}

/** Never log what proves identity. */
export const LOG_REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  '*.refresh_token',
  '*.access_token',
  '*.session_token',
];

/**
 * What a request's log line says of it: its path and never its query string, where mailed links
 * carry their tokens (`/reset-password?token=…`) and provider callbacks their codes.
 */
function requestForLog(req: FastifyRequest) {
  const q = req.url.indexOf('?');
  return {
    method: req.method,
    url: q === -1 ? req.url : `${req.url.slice(0, q)}?[redacted]`,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/** The Fastify app: every route, hook and metric, on parts already built (see createTessera). */
export async function buildApp(options: AppOptions): Promise<App> {
  const { config, stores, keys, tokens, revocations, auth, email, mail } = options;
  const hub = revocations.hub;
  const metrics = new Metrics();
  metrics.describe('tessera_logins_total', 'Login attempts by result.');
  metrics.describe('tessera_registrations_total', 'Accounts registered.');
  metrics.describe('tessera_password_changes_total', 'Passwords changed by their users.');
  metrics.describe('tessera_refreshes_total', 'Refresh attempts by result.');
  metrics.describe('tessera_refresh_reuse_total', 'Refresh token reuse detections (families revoked).');
  metrics.describe('tessera_revocations_total', 'Revocation feed entries recorded, by reason and kind.');
  hub.onRecorded = (entries) => {
    for (const e of entries) {
      metrics.inc('tessera_revocations_total', { reason: e.reason, kind: e.sid ? 'session' : 'user' });
    }
  };
  metrics.gauge(
    'tessera_revocation_stream_clients',
    'Open revocation stream connections.',
    () => hub.subscribers,
  );
  metrics.describe('tessera_password_resets_total', 'Passwords reset with a mailed link.');
  metrics.describe(
    'tessera_emails_verified_total',
    'Email addresses verified, changed or restored by link or code.',
  );
  // Read from the queue in the store: what every instance of the deployment has waiting. A scrape
  // reads every gauge at once, so the two below share one read of the store.
  let queueRead: Promise<MailQueueState> | undefined;
  const queueState = () =>
    (queueRead ??= mail.state().finally(() => {
      queueRead = undefined;
    }));
  metrics.gauge(
    'tessera_mail_queued',
    'Mails waiting to be sent (queued or being retried), by every instance.',
    async () => (await queueState()).queued,
  );
  metrics.gauge(
    'tessera_mail_retrying',
    '1 while a waiting mail has failed and waits to be retried, else 0.',
    async () => ((await queueState()).retrying ? 1 : 0),
  );
  metrics.gauge('tessera_mail_sent', 'Mails this instance sent since it started.', () => mail.counts.sent);
  metrics.gauge(
    'tessera_mail_failed_attempts',
    'Attempts to send a mail that failed on this instance since it started.',
    () => mail.counts.failedAttempts,
  );
  metrics.gauge(
    'tessera_mail_dropped',
    'Mails this instance gave up after they failed for a day.',
    () => mail.counts.dropped,
  );
  metrics.gauge(
    'tessera_password_hashes_waiting',
    'Password hashes (logins, registrations, password changes) waiting for a hashing slot.',
    hashesWaiting,
  );

  mail.log = {
    info: (fields, message) => fastify.log.info(fields, message),
    warn: (fields, message) => fastify.log.warn(fields, message),
  };
  const fastify = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            level: config.logLevel,
            redact: { paths: LOG_REDACT, censor: '[redacted]' },
            serializers: { req: requestForLog },
            ...(typeof options.logger === 'object' ? options.logger : {}),
          },
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    routerOptions: { maxParamLength: 200 },
    // Requests that arrive while closing get our own 503 (the onRequest hook below), not Fastify's.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Router-level faults (bad URL encoding, overlong params) get our error shape, without echoing the URL.
    // They run before the onRequest hooks, so the security headers are set here too.
    frameworkErrors: (_error, _request, reply: FastifyReply) => {
      void reply
        .code(400)
        .headers(securityHeaders(config))
        .header('Vary', 'Origin')
        .header('Cache-Control', 'no-store')
        .send({ error: 'invalid_request', message: 'The request URL is malformed.' });
    },
    clientErrorHandler: clientErrorHandler(securityHeaders(config)),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  if (options.rawSerializer) fastify.setSerializerCompiler(() => (data) => JSON.stringify(data));
  const routes = collectRoutes(fastify);
  // JSON only: without a text/plain parser no simple cross-site form post reaches a handler.
  fastify.removeContentTypeParser('text/plain');
  await fastify.register(cookie, { parseOptions: {} });
  registerSecurityHeaders(fastify, config);
  registerErrorHandling(fastify);
  const isAllowedOrigin = originPolicy(config);
  const closers: (() => void)[] = [];
  // Graceful shutdown: in-flight requests finish, and their connections close behind them
  // instead of idling until the keep-alive timeout.
  let closing = false;
  fastify.addHook('preClose', async () => {
    closing = true;
    for (const fn of closers) fn();
  });
  // A request that arrives on an open connection while closing is refused with our error shape
  // (after the security headers are set); the onSend hook below closes its connection.
  fastify.addHook('onRequest', async () => {
    if (closing) throw new TesseraError('unavailable', 'The server is shutting down; try again.');
  });
  fastify.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('Connection', 'close');
  });

  const cookies = cookieNames(config);
  // Every request has the guard's field from the start: one object shape for all of them.
  fastify.decorateRequest('principal', undefined);
  const guard = authGuard({ auth, cookies, isAllowedOrigin });
  await fastify.register(openApiRoute, {
    routes,
    info: { issuer: config.issuer, version: SERVER_VERSION, cookies },
  });
  await fastify.register(sessionRoutes, { config, auth, cookies, metrics, guard });
  await fastify.register(accountRoutes, { config, auth, cookies, metrics, guard });
  if (options.federation)
    await fastify.register(federationRoutes, {
      config,
      auth,
      cookies,
      metrics,
      guard,
      federation: options.federation,
    });
  await fastify.register(emailRoutes, { config, auth, cookies, metrics, guard, email });
  await fastify.register(feedRoutes, {
    revocations,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    onClose: (fn) => closers.push(fn),
    authorize: internalAccess(config, config.feedToken, 'TESSERA_FEED_TOKEN'),
    maxStreamsPerClient: config.feedMaxStreamsPerClient,
    securityHeaders: securityHeaders(config),
  });

  registerPages(fastify, { config });
  const oauth = options.oauth ? startOAuthProvider(fastify, config, options.oauth.service) : undefined;
  if (oauth) {
    const routes = { config, guard, ...oauth, now: options.now ?? Date.now };
    for (const plugin of [
      discoveryRoutes,
      authorizeRoutes,
      tokenRoutes,
      introspectionRoutes,
      userinfoRoutes,
      grantRoutes,
      clientRoutes,
    ])
      await fastify.register(plugin, routes);
  }

  await fastify.register(metaRoutes, {
    keys,
    stores,
    metrics,
    mail,
    authorizeMetrics: internalAccess(config, config.metricsToken, 'TESSERA_METRICS_TOKEN'),
  });

  return { fastify, auth, keys, tokens, revocations, metrics, stores, config, routes };
}
