// Walks every operation of /openapi.json with real requests (successes and refusals) and checks
// each answer against the document: a documented status, media type and body schema. It runs
// twice: as served, and with answers serialized by JSON.stringify instead of the response
// schemas, so a field a handler sends but a schema lacks fails here instead of vanishing.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { OpenApiDocument } from '../src/openapi/document.js';
import { PASSWORD, startTestServer, uniqueName } from './helpers.js';
import { codeIn, linkToken, outbox } from './mail.js';
import {
  authorize,
  basic,
  formFields,
  type OAuthFixture,
  pkce,
  SPA_REDIRECT,
  signIn,
  startOAuthServer,
  WEB_REDIRECT,
} from './oauth-helpers.js';
import { Contract, json, type Sent, send } from './openapi-contract.js';

const ADMIN_TOKEN = 'admin-token-for-the-openapi-walk-0123456789';
const FEED_TOKEN = 'feed-token-for-the-openapi-walk-0123456789';

/**
 * An event stream's status, headers and first chunk (a refusal: its whole body), and a way to
 * end it. node:http, because a socket it destroys is closed at once, which the server sees.
 */
async function openStream(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Sent & { end: () => void }> {
  const req = http.get(`${base}${path}`, { headers });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve).once('error', reject);
  });
  const answerHeaders = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') answerHeaders.set(k, v);
  const streaming = res.headers['content-type']?.startsWith('text/event-stream') === true;
  const text = await new Promise<string>((resolve) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      body += chunk;
      if (streaming) resolve(body);
    });
    res.once('end', () => resolve(body));
  });
  return { status: res.statusCode!, headers: answerHeaders, body: parsed(text), end: () => req.destroy() };
}

/** The body as `call` gives it: JSON parsed, '' as undefined. */
function parsed(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The start of a stream, which is then ended. */
async function streamStart(base: string, path: string, headers: Record<string, string> = {}): Promise<Sent> {
  const stream = await openStream(base, path, headers);
  stream.end();
  return stream;
}

async function dpopProof(
  key: { privateKey: CryptoKey; jwk: object },
  htm: string,
  htu: string,
  accessToken?: string,
): Promise<string> {
  const claims: Record<string, unknown> = { htm, htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID() };
  if (accessToken) claims.ath = createHash('sha256').update(accessToken).digest('base64url');
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk as never })
    .sign(key.privateKey);
}

function cookieOf(sent: Sent, suffix: string): string {
  const line = sent.headers.getSetCookie().find((l) => l.split('=')[0]!.endsWith(suffix));
  assert.ok(line, `a ${suffix} cookie`);
  return line.split(';')[0]!;
}

for (const rawSerializer of [false, true]) {
  describe(`every documented operation answers as documented${rawSerializer ? ' (unfiltered answers)' : ''}`, () => {
    let fx: OAuthFixture;
    let u: string;
    let contract: Contract;
    const check = (method: string, template: string, sent: Sent, status?: number) =>
      contract.check(method, template, sent, status);

    before(async () => {
      fx = await startOAuthServer(
        { adminToken: ADMIN_TOKEN, loginMaxFailuresPerAccount: 2 },
        { rawSerializer },
      );
      u = fx.srv.url;
      const doc = json(await send(u, 'GET', '/openapi.json')) as OpenApiDocument;
      contract = new Contract(doc);
    });
    after(() => fx.srv.close());

    it('discovery and operations', async () => {
      check('GET', '/openapi.json', await send(u, 'GET', '/openapi.json'), 200);
      check('GET', '/.well-known/jwks.json', await send(u, 'GET', '/.well-known/jwks.json'), 200);
      check(
        'GET',
        '/.well-known/openid-configuration',
        await send(u, 'GET', '/.well-known/openid-configuration'),
        200,
      );
      check(
        'GET',
        '/.well-known/oauth-authorization-server',
        await send(u, 'GET', '/.well-known/oauth-authorization-server'),
        200,
      );
      check('GET', '/healthz', await send(u, 'GET', '/healthz'), 200);
      check('GET', '/readyz', await send(u, 'GET', '/readyz'), 200);
      check('GET', '/metrics', await send(u, 'GET', '/metrics'), 200);
    });

    it('pages and assets', async () => {
      check('GET', '/', await send(u, 'GET', '/'), 302);
      check('GET', '/signin', await send(u, 'GET', '/signin'), 200);
      check('GET', '/register', await send(u, 'GET', '/register'), 200);
      check('GET', '/account', await send(u, 'GET', '/account'), 302);
      const { cookie } = await signIn(fx.srv);
      check('GET', '/account', await send(u, 'GET', '/account', { headers: { cookie } }), 200);
      for (const path of ['/forgot-password', '/reset-password', '/verify-email', '/confirm-email'])
        check('GET', path, await send(u, 'GET', path), 200);
      check('GET', '/change-email', await send(u, 'GET', '/change-email'), 302);
      check('GET', '/change-email', await send(u, 'GET', '/change-email', { headers: { cookie } }), 200);
      const assets = Object.keys(contract.doc.paths).filter((p) => p.startsWith('/assets/'));
      assert.ok(assets.includes('/assets/sdk.js') && assets.includes('/assets/app.css'));
      for (const path of assets) {
        const first = check('GET', path, await send(u, 'GET', path), 200);
        const etag = first.headers.get('etag')!;
        check('GET', path, await send(u, 'GET', path, { headers: { 'if-none-match': etag } }), 304);
      }
    });

    it('register and login, every mode and delivery, and their refusals', async () => {
      const username = uniqueName('walk');
      const body = { username, password: PASSWORD };
      check('POST', '/auth/register', await send(u, 'POST', '/auth/register', { json: body }), 201);
      check('POST', '/auth/register', await send(u, 'POST', '/auth/register', { json: body }), 409);
      check(
        'POST',
        '/auth/register',
        await send(u, 'POST', '/auth/register', { json: { username: uniqueName(), password: 'short' } }),
        400,
      );
      check(
        'POST',
        '/auth/register',
        await send(u, 'POST', '/auth/register', {
          raw: '{',
          headers: { 'content-type': 'application/json' },
        }),
        400,
      );
      check(
        'POST',
        '/auth/register',
        await send(u, 'POST', '/auth/register', { raw: 'x', headers: { 'content-type': 'text/plain' } }),
        415,
      );
      check(
        'POST',
        '/auth/register',
        await send(u, 'POST', '/auth/register', { json: { username, password: 'x'.repeat(20_000) } }),
        413,
      );
      const origin = { origin: fx.srv.origin };
      for (const mode of ['session', 'token'] as const) {
        check(
          'POST',
          '/auth/login',
          await send(u, 'POST', '/auth/login', { json: { ...body, mode, delivery: 'header' } }),
          200,
        );
        check(
          'POST',
          '/auth/login',
          await send(u, 'POST', '/auth/login', {
            json: { ...body, mode, delivery: 'cookie' },
            headers: origin,
          }),
          200,
        );
      }
      check(
        'POST',
        '/auth/login',
        await send(u, 'POST', '/auth/login', {
          json: { ...body, delivery: 'cookie' },
          headers: { origin: 'https://evil.example' },
        }),
        403,
      );
      check('POST', '/auth/login', await send(u, 'POST', '/auth/login', { json: { username } }), 400);
      const wrong = { username, password: 'not the password at all' };
      check('POST', '/auth/login', await send(u, 'POST', '/auth/login', { json: wrong }), 401);
      check('POST', '/auth/login', await send(u, 'POST', '/auth/login', { json: wrong }), 401);
      check('POST', '/auth/login', await send(u, 'POST', '/auth/login', { json: wrong }), 429);
    });

    it('refresh, csrf and logout', async () => {
      const username = uniqueName('walk');
      const body = { username, password: PASSWORD };
      await send(u, 'POST', '/auth/register', { json: body });
      const header = json(
        check(
          'POST',
          '/auth/login',
          await send(u, 'POST', '/auth/login', { json: { ...body, mode: 'token', delivery: 'header' } }),
          200,
        ),
      );
      const refreshed = json(
        check(
          'POST',
          '/auth/refresh',
          await send(u, 'POST', '/auth/refresh', { json: { refresh_token: header.refresh_token } }),
          200,
        ),
      );
      check(
        'POST',
        '/auth/refresh',
        await send(u, 'POST', '/auth/refresh', { json: { refresh_token: 'nope' } }),
        401,
      );
      fx.srv.clock.now += (fx.srv.config.refreshGraceSeconds + 1) * 1000;
      check(
        'POST',
        '/auth/refresh',
        await send(u, 'POST', '/auth/refresh', { json: { refresh_token: header.refresh_token } }),
        401,
      );
      check(
        'POST',
        '/auth/refresh',
        await send(u, 'POST', '/auth/refresh', { json: { refresh_token: 5 } }),
        400,
      );
      assert.ok(refreshed.refresh_token);

      // A browser in token mode: the refresh cookie and its CSRF token.
      const origin = fx.srv.origin;
      const tokenLogin = check(
        'POST',
        '/auth/login',
        await send(u, 'POST', '/auth/login', {
          json: { ...body, mode: 'token', delivery: 'cookie' },
          headers: { origin },
        }),
        200,
      );
      const refreshCookie = cookieOf(tokenLogin, 'tessera_refresh');
      const csrf = json(
        check(
          'GET',
          '/auth/csrf',
          await send(u, 'GET', '/auth/csrf', { headers: { cookie: refreshCookie } }),
          200,
        ),
      );
      check(
        'POST',
        '/auth/refresh',
        await send(u, 'POST', '/auth/refresh', { headers: { cookie: refreshCookie, origin } }),
        403,
      );
      const cookieRefresh = check(
        'POST',
        '/auth/refresh',
        await send(u, 'POST', '/auth/refresh', {
          headers: { cookie: refreshCookie, origin, 'x-csrf-token': csrf.csrf_token },
        }),
        200,
      );
      const nextCookie = cookieOf(cookieRefresh, 'tessera_refresh');
      check(
        'POST',
        '/auth/logout',
        await send(u, 'POST', '/auth/logout', {
          headers: { cookie: nextCookie, origin, 'x-csrf-token': csrf.csrf_token },
        }),
        204,
      );

      // Session mode in a browser.
      const sessionLogin = check(
        'POST',
        '/auth/login',
        await send(u, 'POST', '/auth/login', {
          json: { ...body, mode: 'session', delivery: 'cookie' },
          headers: { origin },
        }),
        200,
      );
      const sessionCookie = cookieOf(sessionLogin, 'tessera_session');
      check(
        'GET',
        '/auth/csrf',
        await send(u, 'GET', '/auth/csrf', { headers: { cookie: sessionCookie } }),
        200,
      );
      check('GET', '/auth/csrf', await send(u, 'GET', '/auth/csrf'), 401);
      check(
        'POST',
        '/auth/logout',
        await send(u, 'POST', '/auth/logout', { headers: { cookie: sessionCookie, origin } }),
        403,
      );
      check('POST', '/auth/logout', await send(u, 'POST', '/auth/logout'), 401);
      const fresh = json(
        await send(u, 'POST', '/auth/login', { json: { ...body, mode: 'token', delivery: 'header' } }),
      );
      check(
        'POST',
        '/auth/logout',
        await send(u, 'POST', '/auth/logout', { headers: { authorization: 'Bearer nope' } }),
        401,
      );
      check(
        'POST',
        '/auth/logout',
        await send(u, 'POST', '/auth/logout', { headers: { authorization: `Bearer ${fresh.access_token}` } }),
        204,
      );
    });

    it('the account: me, sessions, password, sign out everywhere', async () => {
      const username = uniqueName('walk');
      const body = { username, password: PASSWORD };
      await send(u, 'POST', '/auth/register', { json: body });
      const login = async () =>
        json(
          await send(u, 'POST', '/auth/login', { json: { ...body, mode: 'session', delivery: 'header' } }),
        );
      const first = await login();
      const second = await login();
      const auth = { authorization: `Bearer ${first.session_token}` };
      check('GET', '/auth/me', await send(u, 'GET', '/auth/me', { headers: auth }), 200);
      check('GET', '/auth/me', await send(u, 'GET', '/auth/me'), 401);
      // An account without an address: `email` is null.
      check('GET', '/auth/email', await send(u, 'GET', '/auth/email', { headers: auth }), 200);
      check(
        'GET',
        '/auth/me',
        await send(u, 'GET', '/auth/me', { headers: { authorization: 'Basic x' } }),
        401,
      );
      check('GET', '/auth/sessions', await send(u, 'GET', '/auth/sessions', { headers: auth }), 200);
      check('GET', '/auth/sessions', await send(u, 'GET', '/auth/sessions'), 401);
      const one = '/auth/sessions/{id}';
      check(
        'DELETE',
        one,
        await send(u, 'DELETE', `/auth/sessions/${second.session_id}`, { headers: auth }),
        204,
      );
      check(
        'DELETE',
        one,
        await send(u, 'DELETE', `/auth/sessions/${second.session_id}`, { headers: auth }),
        404,
      );
      check('DELETE', one, await send(u, 'DELETE', '/auth/sessions/not.an.id', { headers: auth }), 400);
      check('DELETE', one, await send(u, 'DELETE', '/auth/sessions/%E0%A4%A', { headers: auth }), 400);
      check(
        'DELETE',
        one,
        await send(u, 'DELETE', '/auth/sessions/x', {
          raw: 'x',
          headers: { ...auth, 'content-type': 'text/plain' },
        }),
        415,
      );
      const pw = (current: string, next: string) => ({
        json: { current_password: current, new_password: next },
        headers: auth,
      });
      check(
        'POST',
        '/auth/password',
        await send(u, 'POST', '/auth/password', pw('wrong password here', 'a new password, long')),
        401,
      );
      check('POST', '/auth/password', await send(u, 'POST', '/auth/password', pw(PASSWORD, 'password')), 400);
      check(
        'POST',
        '/auth/password',
        await send(u, 'POST', '/auth/password', pw(PASSWORD, 'an entirely new passphrase')),
        204,
      );
      check('POST', '/auth/logout-all', await send(u, 'POST', '/auth/logout-all', { headers: auth }), 204);
      check('POST', '/auth/logout-all', await send(u, 'POST', '/auth/logout-all', { headers: auth }), 401);
    });

    it('email: verify by link and code, forgot and reset, change', async () => {
      const username = uniqueName('mail');
      const email = `${username}@example.test`;
      const settled = () => fx.srv.tessera.email.settled();
      const mailTo = async (to: string, subject: RegExp) => {
        await settled();
        const found = (await outbox(fx.srv.config.dataDir)).filter(
          (m) => m.to === to && subject.test(m.subject),
        );
        assert.ok(found.length > 0, `a mail to ${to} matching ${subject}`);
        return found.at(-1)!;
      };
      const reg = { username, password: PASSWORD, email };
      check('POST', '/auth/register', await send(u, 'POST', '/auth/register', { json: reg }), 201);
      const signIn = async (name: string) =>
        json(
          await send(u, 'POST', '/auth/login', {
            json: { username: name, password: PASSWORD, mode: 'token', delivery: 'header' },
          }),
        ) as { access_token: string };
      const auth = { authorization: `Bearer ${(await signIn(username)).access_token}` };
      const verifyMail = await mailTo(email, /Confirm your email/);
      const address = (headers: Record<string, string>) => send(u, 'GET', '/auth/email', { headers });
      check('GET', '/auth/email', await address(auth), 200);
      check('GET', '/auth/email', await address({}), 401);
      const verify = (token: string) => send(u, 'POST', '/auth/email/verify', { json: { token } });
      const code = (c: string, headers: Record<string, string> = auth) =>
        send(u, 'POST', '/auth/email/verify/code', { json: { code: c }, headers });
      check('POST', '/auth/email/verify/code', await code(codeIn(verifyMail), {}), 401);
      check('POST', '/auth/email/verify/code', await code('12345'), 400);
      check('POST', '/auth/email/verify/code', await code(codeIn(verifyMail)), 200);
      check('POST', '/auth/email/verify/code', await code(codeIn(verifyMail)), 400);
      check('POST', '/auth/email/verify', await verify(linkToken(verifyMail, 'verify-email')), 200);
      check('POST', '/auth/email/verify', await verify(linkToken(verifyMail, 'verify-email')), 400);
      const request = (headers: Record<string, string>) =>
        send(u, 'POST', '/auth/email/verify/request', { headers });
      check('POST', '/auth/email/verify/request', await request({}), 401);
      check('POST', '/auth/email/verify/request', await request(auth), 400);

      const forgot = (body: unknown) => send(u, 'POST', '/auth/password/forgot', { json: body });
      check('POST', '/auth/password/forgot', await forgot({ email: 'not an address' }), 400);
      check('POST', '/auth/password/forgot', await forgot({ email }), 202);
      const token = linkToken(await mailTo(email, /Reset your password/), 'reset-password');
      const reset = (password: string) =>
        send(u, 'POST', '/auth/password/reset', { json: { token, password } });
      check('POST', '/auth/password/reset', await reset('password'), 400);
      check('POST', '/auth/password/reset', await reset(PASSWORD), 204);
      check('POST', '/auth/password/reset', await reset(PASSWORD), 400);

      const again = { authorization: `Bearer ${(await signIn(email)).access_token}` };
      check('GET', '/auth/email', await address(again), 200);
      const change = (body: unknown, headers: Record<string, string>) =>
        send(u, 'POST', '/auth/email/change', { json: body, headers });
      const next = `${username}.new@example.test`;
      check('POST', '/auth/email/change', await change({ email: next }, {}), 401);
      check('POST', '/auth/email/change', await change({ email: 'nope' }, again), 400);
      check('POST', '/auth/email/change', await change({ email: next }, again), 202);
      check('POST', '/auth/email/verify/request', await request(again), 400);
      const confirm = linkToken(await mailTo(next, /Confirm your new email/), 'confirm-email');
      check('POST', '/auth/email/verify', await verify(confirm), 200);
    });

    it('the revocation feed', async () => {
      check('GET', '/auth/revocations', await send(u, 'GET', '/auth/revocations'), 200);
      check('GET', '/auth/revocations', await send(u, 'GET', '/auth/revocations?cursor=1'), 200);
      check('GET', '/auth/revocations', await send(u, 'GET', '/auth/revocations?cursor=x'), 400);
      check('GET', '/auth/revocations/stream', await streamStart(u, '/auth/revocations/stream'), 200);
      check(
        'GET',
        '/auth/revocations/stream',
        await streamStart(u, '/auth/revocations/stream', { 'last-event-id': '1' }),
        200,
      );
      check(
        'GET',
        '/auth/revocations/stream',
        await streamStart(u, '/auth/revocations/stream?cursor=-1'),
        400,
      );
    });

    it('the feed and metrics behind a token, an unconfigured admin API', async () => {
      // A second server: internal reads need TESSERA_FEED_TOKEN; no metrics token; no admin token.
      const locked = await startTestServer(
        { internalAuth: true, feedToken: FEED_TOKEN, feedMaxStreamsPerClient: 1 },
        { rawSerializer },
      );
      try {
        const l = locked.url;
        const token = { authorization: `Bearer ${FEED_TOKEN}` };
        check('GET', '/auth/revocations', await send(l, 'GET', '/auth/revocations'), 401);
        check('GET', '/auth/revocations', await send(l, 'GET', '/auth/revocations', { headers: token }), 200);
        check('GET', '/auth/revocations/stream', await streamStart(l, '/auth/revocations/stream'), 401);
        check('GET', '/metrics', await send(l, 'GET', '/metrics'), 403);
        // One stream per client: the second is refused while the first is open.
        const open = await openStream(l, '/auth/revocations/stream', token);
        assert.equal(open.status, 200);
        check(
          'GET',
          '/auth/revocations/stream',
          await streamStart(l, '/auth/revocations/stream', token),
          429,
        );
        open.end();
        check('GET', '/oauth/clients', await send(l, 'GET', '/oauth/clients'), 404);
      } finally {
        await locked.close();
      }
    });

    it('the client admin API', async () => {
      const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const created = json(
        check(
          'POST',
          '/oauth/clients',
          await send(u, 'POST', '/oauth/clients', {
            json: {
              client_name: 'Walk',
              client_type: 'confidential',
              redirect_uris: ['https://walk.example/cb'],
              scope: 'openid',
            },
            headers: admin,
          }),
          201,
        ),
      );
      assert.ok(created.client_secret);
      const pub = json(
        check(
          'POST',
          '/oauth/clients',
          await send(u, 'POST', '/oauth/clients', {
            json: {
              client_name: 'Walk SPA',
              client_type: 'public',
              redirect_uris: ['http://127.0.0.1:9/cb'],
            },
            headers: admin,
          }),
          201,
        ),
      );
      check(
        'POST',
        '/oauth/clients',
        await send(u, 'POST', '/oauth/clients', { json: { client_name: 'x' }, headers: admin }),
        400,
      );
      check(
        'POST',
        '/oauth/clients',
        await send(u, 'POST', '/oauth/clients', {
          json: { client_name: 'x', client_type: 'public', redirect_uris: ['not a url'] },
          headers: admin,
        }),
        400,
      );
      check(
        'POST',
        '/oauth/clients',
        await send(u, 'POST', '/oauth/clients', {
          json: { client_name: 'x', client_type: 'public' },
          headers: { authorization: 'Bearer wrong' },
        }),
        401,
      );
      check('GET', '/oauth/clients', await send(u, 'GET', '/oauth/clients', { headers: admin }), 200);
      check('GET', '/oauth/clients', await send(u, 'GET', '/oauth/clients'), 401);
      const one = '/oauth/clients/{id}';
      check(
        'DELETE',
        one,
        await send(u, 'DELETE', `/oauth/clients/${pub.client_id}`, { headers: admin }),
        204,
      );
      check(
        'DELETE',
        one,
        await send(u, 'DELETE', `/oauth/clients/${pub.client_id}`, { headers: admin }),
        404,
      );
      check('DELETE', one, await send(u, 'DELETE', '/oauth/clients/a%20b', { headers: admin }), 400);
      check('DELETE', one, await send(u, 'DELETE', `/oauth/clients/${created.client_id}`), 401);
    });

    it('authorization, consent and the token endpoint', async () => {
      const { cookie } = await signIn(fx.srv);
      const { verifier, challenge } = await pkce();
      const params = {
        client_id: fx.web.client.client_id,
        redirect_uri: WEB_REDIRECT,
        response_type: 'code',
        scope: 'openid profile api offline_access',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state: 'walk',
      };
      const q = (p: Record<string, string>) => `/oauth/authorize?${new URLSearchParams(p)}`;
      const A = '/oauth/authorize';
      check('GET', A, await send(u, 'GET', q(params)), 302); // to /signin
      const consent = check('GET', A, await send(u, 'GET', q(params), { headers: { cookie } }), 200);
      check(
        'GET',
        A,
        await send(u, 'GET', q({ ...params, client_id: 'unknown' }), { headers: { cookie } }),
        400,
      );
      const refused = check(
        'GET',
        A,
        await send(u, 'GET', q({ ...params, response_type: 'token' }), { headers: { cookie } }),
        302,
      );
      assert.equal(
        new URL(refused.headers.get('location')!).searchParams.get('error'),
        'unsupported_response_type',
      );

      const fields = formFields(consent.body as string);
      const same = { cookie, origin: fx.srv.origin };
      check(
        'POST',
        A,
        await send(u, 'POST', A, {
          form: { ...fields, decision: 'allow' },
          headers: { cookie, origin: 'https://evil.example' },
        }),
        403,
      );
      check('POST', A, await send(u, 'POST', A, { json: { decision: 'allow' }, headers: same }), 400);
      check('POST', A, await send(u, 'POST', A, { headers: same }), 400);
      const allowed = check(
        'POST',
        A,
        await send(u, 'POST', A, { form: { ...fields, decision: 'allow' }, headers: same }),
        303,
      );
      const code = new URL(allowed.headers.get('location')!).searchParams.get('code')!;

      const T = '/oauth/token';
      const web = basic(fx.web.client.client_id, fx.web.secret);
      const dpopKey = await (async () => {
        const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
        return { privateKey, jwk: await exportJWK(publicKey) };
      })();
      const tokens = json(
        check(
          'POST',
          T,
          await send(u, 'POST', T, {
            form: {
              grant_type: 'authorization_code',
              code,
              code_verifier: verifier,
              redirect_uri: WEB_REDIRECT,
            },
            headers: { ...web, dpop: await dpopProof(dpopKey, 'POST', `${u}/oauth/token`) },
          }),
          200,
        ),
      );
      assert.equal(tokens.token_type, 'DPoP');
      check(
        'POST',
        T,
        await send(u, 'POST', T, {
          form: { grant_type: 'authorization_code', code: 'not-a-code', code_verifier: verifier },
          headers: web,
        }),
        400,
      );
      check('POST', T, await send(u, 'POST', T, { form: { grant_type: 'password' }, headers: web }), 400);
      check(
        'POST',
        T,
        await send(u, 'POST', T, {
          form: { grant_type: 'refresh_token', refresh_token: 'x.y' },
          headers: basic(fx.web.client.client_id, 'wrong'),
        }),
        401,
      );
      check(
        'POST',
        T,
        await send(u, 'POST', T, { json: { grant_type: 'client_credentials' }, headers: web }),
        400,
      );
      check(
        'POST',
        T,
        await send(u, 'POST', T, {
          form: { grant_type: 'client_credentials' },
          headers: { ...web, dpop: 'not a proof' },
        }),
        400,
      );
      const refreshed = json(
        check(
          'POST',
          T,
          await send(u, 'POST', T, {
            form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
            headers: { ...web, dpop: await dpopProof(dpopKey, 'POST', `${u}/oauth/token`) },
          }),
          200,
        ),
      );
      const machine = json(
        check(
          'POST',
          T,
          await send(u, 'POST', T, {
            form: {
              grant_type: 'client_credentials',
              client_id: fx.service.client.client_id,
              client_secret: fx.service.secret,
            },
          }),
          200,
        ),
      );

      // Introspection and revocation, by the web app about its own tokens.
      const I = '/oauth/introspect';
      const active = json(
        check(
          'POST',
          I,
          await send(u, 'POST', I, { form: { token: refreshed.access_token }, headers: web }),
          200,
        ),
      );
      assert.equal(active.active, true);
      assert.equal(active.token_type, 'DPoP');
      check(
        'POST',
        I,
        await send(u, 'POST', I, { form: { token: refreshed.refresh_token }, headers: web }),
        200,
      );
      check(
        'POST',
        I,
        await send(u, 'POST', I, { form: { token: machine.access_token }, headers: web }),
        200,
      );
      check('POST', I, await send(u, 'POST', I, { form: {}, headers: web }), 400);
      check('POST', I, await send(u, 'POST', I, { form: { token: 'x' } }), 401);
      const serviceAuth = { client_id: fx.service.client.client_id, client_secret: fx.service.secret };
      check(
        'POST',
        I,
        await send(u, 'POST', I, { form: { token: machine.access_token, ...serviceAuth } }),
        200,
      );

      // Userinfo: the DPoP-bound token needs the DPoP scheme and a proof.
      const UI = '/oauth/userinfo';
      const at = refreshed.access_token;
      for (const method of ['GET', 'POST']) {
        const proof = await dpopProof(dpopKey, method, `${u}/oauth/userinfo`, at);
        check(
          method,
          UI,
          await send(u, method, UI, { headers: { authorization: `DPoP ${at}`, dpop: proof } }),
          200,
        );
        check(method, UI, await send(u, method, UI), 401);
        check(
          method,
          UI,
          await send(u, method, UI, { headers: { authorization: `DPoP ${at}`, dpop: 'nope' } }),
          400,
        );
      }
      check(
        'POST',
        UI,
        await send(u, 'POST', UI, { json: {}, headers: { authorization: `Bearer ${at}` } }),
        400,
      );

      // A token without openid: userinfo refuses it for its scope.
      const spa = await pkce();
      const back = await authorize(fx.srv, cookie, {
        client_id: fx.spa.client.client_id,
        redirect_uri: SPA_REDIRECT,
        response_type: 'code',
        scope: 'api',
        code_challenge: spa.challenge,
        code_challenge_method: 'S256',
      });
      const apiOnly = json(
        await send(u, 'POST', T, {
          form: {
            grant_type: 'authorization_code',
            code: back.searchParams.get('code')!,
            code_verifier: spa.verifier,
            redirect_uri: SPA_REDIRECT,
            client_id: fx.spa.client.client_id,
          },
        }),
      );
      check(
        'GET',
        UI,
        await send(u, 'GET', UI, { headers: { authorization: `Bearer ${apiOnly.access_token}` } }),
        403,
      );

      const R = '/oauth/revoke';
      check(
        'POST',
        R,
        await send(u, 'POST', R, { form: { token: refreshed.refresh_token }, headers: web }),
        200,
      );
      check('POST', R, await send(u, 'POST', R, { form: {}, headers: web }), 400);
      check(
        'POST',
        R,
        await send(u, 'POST', R, { form: { token: 'x' }, headers: basic(fx.web.client.client_id, 'wrong') }),
        401,
      );
      const inactive = json(
        check(
          'POST',
          I,
          await send(u, 'POST', I, { form: { token: refreshed.access_token }, headers: web }),
          200,
        ),
      );
      assert.equal(inactive.active, false);

      // The user's grants.
      const csrf = json(await send(u, 'GET', '/auth/csrf', { headers: { cookie } })).csrf_token;
      const grants = json(
        check('GET', '/auth/grants', await send(u, 'GET', '/auth/grants', { headers: { cookie } }), 200),
      );
      assert.ok(grants.grants.length > 0);
      check('GET', '/auth/grants', await send(u, 'GET', '/auth/grants'), 401);
      const G = '/auth/grants/{id}';
      const write = { cookie, origin: fx.srv.origin, 'x-csrf-token': csrf };
      check(
        'DELETE',
        G,
        await send(u, 'DELETE', `/auth/grants/${grants.grants[0].id}`, {
          headers: { cookie, origin: fx.srv.origin },
        }),
        403,
      );
      check(
        'DELETE',
        G,
        await send(u, 'DELETE', `/auth/grants/${grants.grants[0].id}`, { headers: write }),
        204,
      );
      check(
        'DELETE',
        G,
        await send(u, 'DELETE', `/auth/grants/${grants.grants[0].id}`, { headers: write }),
        404,
      );

      // Provider sign-in, with no provider configured (test/federation.test.ts drives real ones).
      check('GET', '/auth/providers', await send(u, 'GET', '/auth/providers'), 200);
      const S = '/auth/providers/{id}/start';
      check('GET', S, await send(u, 'GET', '/auth/providers/nope/start?mode=session'), 404);
      check('GET', S, await send(u, 'GET', '/auth/providers/nope/start?link=1'), 401);
      const C = '/auth/providers/{id}/callback';
      check('GET', C, await send(u, 'GET', '/auth/providers/nope/callback?code=x&state=y'), 400);
      check(
        'GET',
        '/auth/identities',
        await send(u, 'GET', '/auth/identities', { headers: { cookie } }),
        200,
      );
      check('GET', '/auth/identities', await send(u, 'GET', '/auth/identities'), 401);
      const D = '/auth/identities/{id}';
      check('DELETE', D, await send(u, 'DELETE', '/auth/identities/none', { headers: write }), 404);
    });

    it('walked every operation of the document', () => {
      const missing = contract.operations().filter((op) => !contract.covered.has(op));
      assert.deepEqual(missing, []);
    });
  });
}
