// Every unsafe-method route the app registers, sent a cookie without the CSRF token: the routes
// that authenticate by that cookie refuse with csrf_failed, the others answer as if no cookie came.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  type Answer,
  call,
  PASSWORD,
  registerAndLogin,
  startTestServer,
  type TestServer,
} from './helpers.js';
import { signIn } from './oauth-helpers.js';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const CLIENT_ID = 'csrf-probe-spa';
const REDIRECT = 'http://127.0.0.1:5173/cb';

/** `METHOD /path` for every route, read from Fastify's own route tree. */
function registeredRoutes(fastify: FastifyInstance): string[] {
  const out: string[] = [];
  const prefixes: string[] = [];
  for (const line of fastify.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const path = (depth === 0 ? '' : prefixes[depth - 1]!) + m[2]!;
    prefixes[depth] = path;
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) out.push(`${method} ${path}`);
  }
  return out.sort();
}

type Variant = 'session cookie' | 'refresh cookie';

interface Probe {
  json?: unknown;
  form?: Record<string, string>;
  /** The cookies this route authenticates by: with them and no CSRF token it must refuse. */
  csrf: Variant[];
}

const AUTHORIZE = {
  response_type: 'code',
  client_id: CLIENT_ID,
  redirect_uri: REDIRECT,
  scope: 'openid',
  state: 'st',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
  decision: 'allow',
};

/** A request each unsafe route would act on; a new route needs its entry here. */
const PROBES: Record<string, Probe> = {
  'POST /auth/register': { json: { username: 'csrf-probe-new', password: PASSWORD }, csrf: [] },
  'POST /auth/login': { json: { username: 'csrf-probe-nobody', password: PASSWORD }, csrf: [] },
  'POST /auth/refresh': { json: {}, csrf: ['refresh cookie'] },
  'POST /auth/logout': { json: {}, csrf: ['session cookie', 'refresh cookie'] },
  'POST /auth/logout-all': { json: {}, csrf: ['session cookie'] },
  'POST /auth/password': {
    json: { current_password: PASSWORD, new_password: `${PASSWORD} again` },
    csrf: ['session cookie'],
  },
  'POST /auth/email/verify/request': { json: {}, csrf: ['session cookie'] },
  'POST /auth/email/verify': { json: { token: 'x' }, csrf: [] },
  'POST /auth/email/verify/code': { json: { code: '123456' }, csrf: ['session cookie'] },
  'POST /auth/email/change': { json: { email: 'csrf-probe@example.test' }, csrf: ['session cookie'] },
  'POST /auth/password/forgot': { json: { email: 'csrf-probe@example.test' }, csrf: [] },
  'POST /auth/password/reset': { json: { token: 'x', password: PASSWORD }, csrf: [] },
  'DELETE /auth/sessions/:id': { csrf: ['session cookie'] },
  'DELETE /auth/grants/:id': { csrf: ['session cookie'] },
  'DELETE /auth/identities/:id': { csrf: ['session cookie'] },
  'POST /oauth/authorize': { form: AUTHORIZE, csrf: ['session cookie'] },
  'POST /oauth/token': { form: { grant_type: 'authorization_code', code: 'x' }, csrf: [] },
  'POST /oauth/introspect': { form: { token: 'x', client_id: CLIENT_ID }, csrf: [] },
  'POST /oauth/revoke': { form: { token: 'x', client_id: CLIENT_ID }, csrf: [] },
  'POST /oauth/userinfo': { form: {}, csrf: [] },
  'POST /oauth/clients': { json: { client_name: 'probe', client_type: 'public' }, csrf: [] },
  'DELETE /oauth/clients/:id': { csrf: [] },
};

interface Probed {
  srv: TestServer;
  cookies: Record<Variant, string>;
}

/** A server with a signed-in browser holding both kinds of cookie, and a public OAuth client. */
async function probed(): Promise<Probed> {
  const srv = await startTestServer();
  await srv.app.fastify.oauth.addClient({
    id: CLIENT_ID,
    name: 'SPA',
    type: 'public',
    redirectUris: [REDIRECT],
    scopes: ['openid'],
  });
  const session = await signIn(srv);
  const { login } = await registerAndLogin(
    srv.url,
    { mode: 'token', delivery: 'cookie' },
    { origin: srv.origin },
  );
  const refresh = Object.keys(login.cookies).find((n) => n.endsWith('tessera_refresh'))!;
  return {
    srv,
    cookies: {
      'session cookie': session.cookie,
      'refresh cookie': `${refresh}=${login.cookies[refresh]!.value}`,
    },
  };
}

async function send(srv: TestServer, route: string, probe: Probe, cookie?: string): Promise<Answer> {
  const [method = '', pattern = ''] = route.split(' ');
  const headers: Record<string, string> = { origin: srv.origin, ...(cookie ? { cookie } : {}) };
  const path = pattern.replace(/:[a-z]+/g, 'probe-id');
  if (probe.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    return call(srv.url, method, path, { rawBody: new URLSearchParams(probe.form).toString(), headers });
  }
  return call(srv.url, method, path, { body: probe.json, headers });
}

function code(answer: Answer): string | undefined {
  if (typeof answer.body === 'object' && answer.body !== null) return answer.body.error;
  return /csrf_failed/.test(String(answer.body)) ? 'csrf_failed' : undefined;
}

describe('CSRF on every cookie-authenticated write', () => {
  let routes: string[];
  before(async () => {
    const { srv } = await probed();
    routes = registeredRoutes(srv.app.fastify).filter((r) => !SAFE.has(r.split(' ')[0]!));
    await srv.close();
  });

  it('every unsafe-method route the app registers has a probe, and every probe a route', () => {
    assert.ok(routes.includes('POST /auth/logout-all') && routes.includes('DELETE /auth/grants/:id'));
    assert.deepEqual(routes, Object.keys(PROBES).sort());
  });

  it('safe methods need no token, on /auth/* and the grants API alike', async () => {
    const { srv, cookies } = await probed();
    try {
      for (const method of ['GET', 'HEAD']) {
        for (const path of ['/auth/me', '/auth/sessions', '/auth/grants']) {
          const res = await call(srv.url, method, path, {
            headers: { cookie: cookies['session cookie'], origin: srv.origin },
          });
          assert.equal(res.status, 200, `${method} ${path}`);
        }
      }
    } finally {
      await srv.close();
    }
  });

  it("a refused write leaves the session cookie's session where it was: no touch", async () => {
    const { srv, cookies } = await probed();
    try {
      const cookie = cookies['session cookie'];
      const id = cookie.slice(cookie.indexOf('=') + 1).split('.')[0]!;
      const idleEnd = async () => (await srv.app.stores.sessions.getSession(id))!.idleExpiresAt;
      const before = await idleEnd();
      srv.clock.now += 20 * 60_000; // past the touch interval, within the idle lifetime
      for (const route of routes) {
        const probe = PROBES[route]!;
        if (!probe.csrf.includes('session cookie')) continue;
        assert.equal(code(await send(srv, route, probe, cookie)), 'csrf_failed', route);
        assert.equal(await idleEnd(), before, `${route} moved the idle end on`);
      }
    } finally {
      await srv.close();
    }
  });

  for (const variant of ['session cookie', 'refresh cookie'] as const) {
    describe(`with the ${variant} and no X-CSRF-Token`, () => {
      // Two servers set up alike: one gets the cookie, the other the same request without it.
      let withCookie: Probed;
      let without: Probed;
      before(async () => {
        withCookie = await probed();
        without = await probed();
      });
      after(async () => {
        await withCookie.srv.close();
        await without.srv.close();
      });

      it('refuses with csrf_failed where the cookie authenticates, and ignores it elsewhere', async () => {
        for (const route of routes) {
          const probe = PROBES[route]!;
          const a = await send(withCookie.srv, route, probe, withCookie.cookies[variant]);
          const b = await send(without.srv, route, probe);
          if (probe.csrf.includes(variant)) {
            assert.equal(a.status, 403, `${route}: ${a.status} ${JSON.stringify(a.body)}`);
            assert.equal(code(a), 'csrf_failed', route);
            assert.notEqual(code(b), 'csrf_failed', `${route} refuses even without the cookie`);
          } else {
            assert.deepEqual([a.status, code(a)], [b.status, code(b)], `${route} reads the ${variant}`);
          }
        }
      });
    });
  }
});
