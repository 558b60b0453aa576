import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';

const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Exact-match origin allow-list: the configured origins plus the issuer's own. */
export function originPolicy(config: Config): (origin: string | undefined) => boolean {
  const allowed = new Set([...config.corsOrigins, new URL(config.issuer).origin]);
  return (origin) => origin !== undefined && allowed.has(origin);
}

/** The headers every answer carries, also those sent before any route or hook runs. */
export function securityHeaders(config: Config): Record<string, string> {
  return {
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Content-Security-Policy': API_CSP,
    ...(config.secureCookies ? { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' } : {}),
  };
}

/**
 * CORS with credentials for allow-listed origins only: never `*`, and a disallowed origin gets
 * no Access-Control-Allow-Origin at all. Also sets the security headers every answer carries.
 */
export function registerSecurityHeaders(app: FastifyInstance, config: Config): void {
  const isAllowed = originPolicy(config);
  const headers = securityHeaders(config);
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    reply.header('Vary', 'Origin');
    if (isAllowed(origin)) {
      reply.header('Access-Control-Allow-Origin', origin);
      reply.header('Access-Control-Allow-Credentials', 'true');
      reply.header('Access-Control-Expose-Headers', 'WWW-Authenticate, Retry-After');
    }
    reply.headers(headers);
  });
  // Preflight for every path: answers with the allowed methods and headers for allowed origins only.
  app.options('*', async (request: FastifyRequest, reply: FastifyReply) => {
    if (isAllowed(request.headers.origin)) {
      reply.header('Access-Control-Allow-Methods', 'GET, POST, DELETE, OPTIONS');
      reply.header('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-CSRF-Token, DPoP');
      reply.header('Access-Control-Max-Age', '600');
    }
    return reply.code(204).send();
  });
}

/**
 * Where the browser says a request comes from: `allowed` (an allowed `Origin`, or no `Origin` and
 * `Sec-Fetch-Site: same-origin`), `foreign` (any other `Origin`, or `Sec-Fetch-Site: cross-site`
 * or `same-site`, which is another origin too), or `unsaid` (neither: an address typed or
 * bookmarked, `Sec-Fetch-Site: none`, an older browser, a program).
 */
export function requestSource(
  request: FastifyRequest,
  isAllowed: (o: string | undefined) => boolean,
): 'allowed' | 'foreign' | 'unsaid' {
  const origin = request.headers.origin;
  if (origin !== undefined) return isAllowed(origin) ? 'allowed' : 'foreign';
  const site = request.headers['sec-fetch-site'];
  if (site === 'same-origin') return 'allowed';
  return site === 'cross-site' || site === 'same-site' ? 'foreign' : 'unsaid';
}

/** A cookie-authenticated write must come from an allowed Origin or say it is same-origin. */
export function originAllowedForWrite(
  request: FastifyRequest,
  isAllowed: (o: string | undefined) => boolean,
): boolean {
  return requestSource(request, isAllowed) === 'allowed';
}
