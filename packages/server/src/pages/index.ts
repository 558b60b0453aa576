import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { cookieNames } from '../http/cookies.js';
import { errors, media, noBody, PUBLIC, type Schema } from '../openapi/schemas.js';
import { localPath } from '../util/next-path.js';
import { pageAssets } from './assets.js';
import {
  accountPage,
  changeEmailPage,
  confirmEmailPage,
  forgotPasswordPage,
  registerPage,
  resetPasswordPage,
  signinPage,
  verifyEmailPage,
} from './html.js';

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

/** In development, a request to the other loopback name goes to the issuer's. */
const TO_ISSUER_HOST = noBody('Development: to the same page on the issuer’s loopback host name.');

function pageSchema(summary: string, response: Record<number, Schema>, headers?: Schema) {
  return {
    schema: {
      summary,
      tags: ['pages'],
      security: PUBLIC,
      ...(headers ? { headers } : {}),
      response: { ...response, ...errors() },
    },
  };
}

const ASSET_SUMMARIES: Record<string, string> = {
  'app.js': 'The pages’ script',
  'app.js.map': 'The source map of the pages’ script',
  'sdk.js': 'The browser SDK (`@tessera/client`), prebuilt as one ES module',
  'sdk.js.map': 'The source map of the browser SDK',
  'app.css': 'The pages’ stylesheet',
  'logo.svg': 'The logo',
};

/** An asset: its file with an `ETag`, or 304 when the browser's copy is current. */
function assetSchema(name: string, type: string) {
  const mediaType = type.split(';')[0]!;
  const body = mediaType === 'application/json' ? { type: 'object' } : { type: 'string' };
  return pageSchema(
    ASSET_SUMMARIES[name] ?? name,
    {
      200: media('The file (`Cache-Control: no-cache`, with an `ETag`).', mediaType, body),
      304: noBody('`If-None-Match` named the current `ETag`.'),
    },
    {
      type: 'object',
      properties: {
        'if-none-match': { type: 'string', description: 'The `ETag` of the copy the browser holds.' },
      },
    },
  );
}

/** The web pages the account server serves (sign in, register, account) and their assets. */
export function registerPages(app: FastifyInstance, deps: { config: Config }): void {
  const { config } = deps;
  const cookies = cookieNames(config);
  const issuer = new URL(config.issuer);
  const assets = pageAssets();
  const providers = config.providers.map((p) => ({ id: p.id, name: p.name }));

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

  app.get(
    '/',
    pageSchema('Home', {
      302: noBody(
        'To `/account` with a login cookie, else to `/signin`; in development, to the issuer’s host name.',
      ),
    }),
    async (request, reply) => {
      if (wrongLoopbackHost(request, reply)) return reply;
      return reply
        .header('Cache-Control', 'no-store')
        .redirect(cookieMode(request) ? '/account' : '/signin', 302);
    },
  );
  app.get(
    '/signin',
    pageSchema('Sign-in page', { 200: media('The page.', 'text/html'), 302: TO_ISSUER_HOST }),
    async (request, reply) => {
      if (wrongLoopbackHost(request, reply)) return reply;
      const next = localPath((request.query as { next?: unknown } | undefined)?.next);
      return page(reply, signinPage(config.defaultMode, cookieMode(request), providers, next));
    },
  );
  app.get(
    '/register',
    pageSchema('Registration page', { 200: media('The page.', 'text/html'), 302: TO_ISSUER_HOST }),
    async (request, reply) => {
      if (wrongLoopbackHost(request, reply)) return reply;
      return page(reply, registerPage());
    },
  );
  app.get(
    '/account',
    pageSchema('Account page', {
      200: media('The page: who am I, sessions, grants, password.', 'text/html'),
      302: noBody('To `/signin` without a login cookie; in development, to the issuer’s host name.'),
    }),
    async (request, reply) => {
      if (wrongLoopbackHost(request, reply)) return reply;
      if (!cookieMode(request)) return reply.header('Cache-Control', 'no-store').redirect('/signin', 302);
      return page(reply, accountPage(cookieMode(request), { grants: config.oauth, providers }));
    },
  );

  // The email pages: the script reads `?token=` and acts only on a click, so a mail scanner that
  // fetches a link spends nothing.
  for (const [path, summary, html] of [
    ['/forgot-password', 'Forgot-password page', forgotPasswordPage],
    ['/reset-password', 'Reset-password page (`?token=` from the mail)', resetPasswordPage],
    ['/verify-email', 'Verify-email page (`?token=` from the mail)', verifyEmailPage],
    ['/confirm-email', 'Confirm-email-change page (`?token=` from the mail)', confirmEmailPage],
  ] as const) {
    app.get(
      path,
      pageSchema(summary, { 200: media('The page.', 'text/html'), 302: TO_ISSUER_HOST }),
      async (request, reply) => {
        if (wrongLoopbackHost(request, reply)) return reply;
        return page(reply, html());
      },
    );
  }
  app.get(
    '/change-email',
    pageSchema('Change-email page', {
      200: media('The page.', 'text/html'),
      302: noBody('To `/signin` without a login cookie; in development, to the issuer’s host name.'),
    }),
    async (request, reply) => {
      if (wrongLoopbackHost(request, reply)) return reply;
      if (!cookieMode(request)) return reply.header('Cache-Control', 'no-store').redirect('/signin', 302);
      return page(reply, changeEmailPage());
    },
  );

  for (const [name, asset] of assets) {
    app.get(`/assets/${name}`, assetSchema(name, asset.type), async (request, reply) => {
      reply.header('Content-Type', asset.type).header('Cache-Control', 'no-cache').header('ETag', asset.etag);
      if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
      return reply.send(asset.body);
    });
  }
}
