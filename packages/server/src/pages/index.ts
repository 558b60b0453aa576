import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { cookieNames } from '../http/cookies.js';
import { type ScriptName, script } from './bundle.js';
import { accountPage, registerPage, signinPage } from './html.js';

/** Pages may run their own scripts and styles and talk to this origin; nothing inline, no framing. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "form-action 'self'",
  "base-uri 'none'",
].join('; ');

const LOOPBACK = /^(localhost|127\.0\.0\.1|\[::1\])$/;

function staticFile(name: string): string {
  return readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8');
}

/** The web pages the account server serves (sign in, register, account) and their assets. */
export function registerPages(app: FastifyInstance, deps: { config: Config }): void {
  const { config } = deps;
  const cookies = cookieNames(config);
  const issuer = new URL(config.issuer);
  const css = staticFile('app.css');
  const logo = staticFile('logo.svg');

  /** Which kind of login cookie the browser holds, so the script restores the right way first. */
  function cookieMode(request: FastifyRequest): 'session' | 'token' | undefined {
    if (request.cookies[cookies.session]) return 'session';
    if (request.cookies[cookies.refresh]) return 'token';
    return undefined;
  }

  /**
   * Development convenience: http://127.0.0.1:4000 and http://localhost:4000 are different
   * origins, and only the issuer's is allowed to sign in with cookies; send people there.
   */
  function wrongLoopbackHost(request: FastifyRequest, reply: FastifyReply): boolean {
    const host = request.host;
    if (host === issuer.host || !LOOPBACK.test(issuer.hostname) || !LOOPBACK.test(request.hostname))
      return false;
    void reply.redirect(new URL(request.url, issuer).href, 302);
    return true;
  }

  function page(reply: FastifyReply, html: string): FastifyReply {
    return reply
      .header('Content-Security-Policy', PAGE_CSP)
      .header('Cache-Control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(html);
  }

  app.get('/', async (request, reply) => {
    if (wrongLoopbackHost(request, reply)) return reply;
    return reply
      .header('Cache-Control', 'no-store')
      .redirect(cookieMode(request) ? '/account' : '/signin', 302);
  });
  app.get('/signin', async (request, reply) => {
    if (wrongLoopbackHost(request, reply)) return reply;
    return page(reply, signinPage(config.defaultMode, cookieMode(request)));
  });
  app.get('/register', async (request, reply) => {
    if (wrongLoopbackHost(request, reply)) return reply;
    return page(reply, registerPage());
  });
  app.get('/account', async (request, reply) => {
    if (wrongLoopbackHost(request, reply)) return reply;
    if (!cookieMode(request)) return reply.header('Cache-Control', 'no-store').redirect('/signin', 302);
    return page(reply, accountPage(cookieMode(request), { grants: config.oauth }));
  });

  const assetHeaders = (reply: FastifyReply, type: string, etag?: string): FastifyReply => {
    reply.header('Content-Type', type).header('Cache-Control', 'no-cache');
    if (etag) reply.header('ETag', etag);
    return reply;
  };
  app.get('/assets/app.css', async (_request, reply) =>
    assetHeaders(reply, 'text/css; charset=utf-8').send(css),
  );
  app.get('/assets/logo.svg', async (_request, reply) => assetHeaders(reply, 'image/svg+xml').send(logo));
  for (const name of ['app.js', 'sdk.js'] satisfies ScriptName[]) {
    app.get(`/assets/${name}`, async (request, reply) => {
      const asset = await script(name);
      if (request.headers['if-none-match'] === asset.etag)
        return assetHeaders(reply, 'text/javascript', asset.etag).code(304).send();
      return assetHeaders(reply, 'text/javascript; charset=utf-8', asset.etag).send(asset.body);
    });
  }
}
