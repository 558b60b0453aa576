// An API server on its own origin that trusts Tessera access tokens without asking the account
// server: it only knows the issuer URL, fetches the JWKS once (then per Cache-Control), and
// verifies every request locally. Stop the account server and it keeps answering.
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import {
  createDpopChecker,
  createVerifier,
  type DpopCheckerOptions,
  dpopConfirmation,
  type RevocationChecker,
  RevocationFeedClient,
  RevocationSet,
  type Verifier,
} from '@tessera/verify';
import { fastifyAuth, fastifyClaims } from '@tessera/verify/fastify';
import Fastify, { type FastifyInstance } from 'fastify';

export interface ApiServerOptions {
  /** The account server's issuer URL (`iss` of its tokens). */
  issuer: string;
  /**
   * Accepted `aud` values. Default `tessera`, the account server's first-party audience; add an
   * OAuth resource URI here (RFC 8707) to also accept tokens issued to OAuth clients for it.
   */
  audience?: string | readonly string[];
  /** Scopes every token must carry (403 `insufficient_scope` otherwise). Default `['api']`. */
  requiredScopes?: readonly string[];
  port?: number;
  host?: string;
  /** Browser origins allowed to call this API (exact match). */
  corsOrigins?: readonly string[];
  /** Defaults to `${issuer}/.well-known/jwks.json`. */
  jwksUrl?: string;
  /**
   * Follow the account server's revocation feed. Off by default: with it on, the API fails
   * closed (503 `feed_stale`) once the feed has been silent for `maxStalenessSeconds`, so it
   * keeps answering through an account-server outage only that long.
   */
  revocationFeed?: false | { maxStalenessSeconds?: number; token?: string };
  /**
   * Accept DPoP-bound tokens (RFC 9449) with `Authorization: DPoP <token>` and a `DPoP` proof.
   * On by default. `false`: Bearer only, and DPoP-bound tokens (`cnf.jkt`) are refused.
   */
  dpop?: false | Omit<DpopCheckerOptions, 'publicUrl'>;
  /**
   * This API's external base URL as clients address it (e.g. `https://api.example.com`), for the
   * DPoP `htu` check. Required unless `dpop` is `false`: the request's own Host never decides it.
   */
  publicUrl?: string;
  logger?: boolean;
}

export interface ApiServer {
  url: string;
  port: number;
  app: FastifyInstance;
  verifier: Verifier;
  close(): Promise<void>;
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const issuer = options.issuer;
  const allowedOrigins = new Set(options.corsOrigins ?? []);
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 16 * 1024 });

  let revocations: RevocationChecker | undefined;
  let feed: RevocationFeedClient | undefined;
  if (options.revocationFeed) {
    const set = new RevocationSet({
      maxStalenessMs: (options.revocationFeed.maxStalenessSeconds ?? 60) * 1000,
    });
    feed = new RevocationFeedClient({
      issuer,
      set,
      token: options.revocationFeed.token,
      onError: (e) => app.log.warn(e.message),
    });
    revocations = set;
  }

  const verifier = createVerifier({
    issuer,
    audience: options.audience ?? 'tessera',
    jwks: {
      url:
        options.jwksUrl ??
        new URL('.well-known/jwks.json', issuer.endsWith('/') ? issuer : `${issuer}/`).href,
      onError: (e) => app.log.warn(`jwks: ${e.message}`),
    },
    requiredScopes: options.requiredScopes ?? ['api'],
    revocations,
    // DPoP-bound tokens get past the verifier only to have their proof checked by the middleware.
    confirmation: options.dpop === false ? 'reject' : dpopConfirmation,
  });
  const dpop =
    options.dpop === false
      ? undefined
      : createDpopChecker({ ...options.dpop, publicUrl: options.publicUrl as string });
  const auth = fastifyAuth(verifier, { dpop });

  // CORS: exact-match allow-list, Authorization and DPoP headers only (no credentials, so no cookies
  // cross over).
  app.addHook('onRequest', async (request, reply) => {
    reply.header('vary', 'Origin');
    const origin = request.headers.origin;
    const allowed = typeof origin === 'string' && allowedOrigins.has(origin);
    if (allowed) {
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-expose-headers', 'WWW-Authenticate');
    }
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      if (allowed) {
        reply.header('access-control-allow-methods', 'GET, OPTIONS');
        reply.header('access-control-allow-headers', 'Authorization, Content-Type, DPoP');
        reply.header('access-control-max-age', '600');
      }
      return reply.code(204).send();
    }
  });

  app.get('/api/hello', { preHandler: auth }, async (request) => {
    const claims = fastifyClaims(request)!;
    return { sub: claims.sub, sid: claims.sid ?? null, scope: claims.scope ?? '' };
  });
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Preload keys and the revocation snapshot; an account server that is down is not fatal here:
  // requests answer 503 until the first key set arrives, then verification is local.
  await verifier.ready().catch((e: unknown) => app.log.warn(`jwks not loaded yet: ${String(e)}`));
  if (feed)
    await feed.start().catch((e: unknown) => app.log.warn(`revocation feed not loaded yet: ${String(e)}`));

  await app.listen({ port: options.port ?? 4001, host: options.host ?? '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    app,
    verifier,
    async close() {
      await feed?.stop();
      await app.close();
    },
  };
}

function envList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  const port = Number(env['PORT'] ?? 4001);
  const server = await startApiServer({
    issuer: env['TESSERA_ISSUER'] ?? 'http://localhost:4000',
    audience: env['TESSERA_AUDIENCE'] ?? 'tessera',
    port,
    host: env['HOST'] ?? '127.0.0.1',
    corsOrigins: envList(env['CORS_ORIGINS']),
    // On by default. The staleness bound defaults to the access-token lifetime: while the account
    // server is down no new token can be issued nor revoked, so the API keeps serving every token
    // that is still valid, and fails closed only after they have all expired anyway.
    revocationFeed:
      env['TESSERA_REVOCATION_FEED'] === '0'
        ? false
        : {
            maxStalenessSeconds: Number(env['TESSERA_REVOCATION_MAX_STALENESS'] ?? 300),
            token: env['TESSERA_FEED_TOKEN'] || undefined,
          },
    dpop: env['TESSERA_DPOP'] === '0' ? false : {},
    publicUrl: env['PUBLIC_URL'] || `http://localhost:${port}`,
    logger: true,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      server.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
