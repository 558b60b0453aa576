// grants() and revokeGrant(id): request building, answer checking, and a real OAuth grant.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD } from '../../server/test/helpers.js';
import {
  basic,
  form,
  type OAuthFixture,
  signIn,
  startOAuthServer,
  webAppTokens,
} from '../../server/test/oauth-helpers.js';
import {
  grantsRequest,
  isClientError,
  processGrants,
  revokeGrantRequest,
  TesseraClient,
  type TesseraClientError,
} from '../src/index.js';

async function rejectsWith(p: Promise<unknown>, code: string): Promise<TesseraClientError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isClientError(err), `expected a TesseraClientError, got ${String(err)}`);
    assert.equal(err.code, code);
    return err;
  }
  assert.fail(`expected ${code}`);
}

const jsonAnswer = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('grants: requests and answers', () => {
  test('GET /auth/grants; DELETE /auth/grants/:id with the id encoded and the CSRF token', () => {
    const list = grantsRequest('https://a.test/', { cookies: true, csrfToken: 'c' });
    assert.equal(list.url, 'https://a.test/auth/grants');
    assert.equal(list.init.method, 'GET');
    assert.equal((list.init.headers as Record<string, string>)['x-csrf-token'], undefined);
    const revoke = revokeGrantRequest('https://a.test', { cookies: true, csrfToken: 'c' }, 'a/b?c');
    assert.equal(revoke.url, 'https://a.test/auth/grants/a%2Fb%3Fc');
    assert.equal(revoke.init.method, 'DELETE');
    assert.equal(revoke.init.body, undefined);
    assert.equal(revoke.init.credentials, 'include');
    assert.equal((revoke.init.headers as Record<string, string>)['x-csrf-token'], 'c');
    const bearer = revokeGrantRequest('https://a.test', { bearer: 't' }, 'g1');
    assert.equal((bearer.init.headers as Record<string, string>).authorization, 'Bearer t');
    assert.equal(bearer.init.credentials, 'omit');
  });

  test('processGrants maps fields and splits the scope', async () => {
    const grants = await processGrants(
      jsonAnswer({
        grants: [
          {
            id: 'g1',
            client_id: 'c1',
            client_name: 'Web App',
            scope: 'openid  api offline_access',
            created_at: '2026-01-01T00:00:00.000Z',
            updated_at: '2026-01-02T00:00:00.000Z',
          },
        ],
      }),
    );
    assert.deepEqual(grants, [
      {
        id: 'g1',
        clientId: 'c1',
        clientName: 'Web App',
        scopes: ['openid', 'api', 'offline_access'],
        createdAt: '2026-01-01T00:00:00.000Z',
        updatedAt: '2026-01-02T00:00:00.000Z',
      },
    ]);
    assert.deepEqual(await processGrants(jsonAnswer({ grants: [] })), []);
  });

  test('processGrants refuses malformed answers and keeps server error codes', async () => {
    const good = {
      id: 'g1',
      client_id: 'c1',
      client_name: 'Web App',
      scope: 'openid',
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
    };
    for (const body of [
      {},
      { grants: 'x' },
      { grants: [null] },
      { grants: [7] },
      { grants: [{ ...good, id: 1 }] },
      { grants: [{ ...good, client_name: undefined }] },
      { grants: [{ ...good, scope: ['openid'] }] },
      { grants: [{ ...good, updated_at: null }] },
      [],
    ]) {
      await rejectsWith(processGrants(jsonAnswer(body)), 'bad_response');
    }
    await rejectsWith(processGrants(new Response('not json', { status: 200 })), 'bad_response');
    await rejectsWith(
      processGrants(jsonAnswer({ error: 'unauthorized', message: 'Sign in first.' }, 401)),
      'unauthorized',
    );
  });
});

describe('grants against a server with OAuth clients', () => {
  let fx: OAuthFixture;
  before(async () => {
    fx = await startOAuthServer();
  });
  after(async () => {
    await fx.srv.close();
  });

  /** The web app gets a grant (with a refresh token) from the user behind `cookie`. */
  async function grantTo(cookie: string): Promise<string> {
    const body = await webAppTokens(fx, cookie);
    assert.ok(body.refresh_token);
    return body.refresh_token;
  }

  const refreshWith = (token: string) =>
    form(
      fx.srv,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: token },
      basic(fx.web.client.client_id, fx.web.secret),
    );

  for (const mode of ['token', 'session'] as const) {
    test(`${mode} mode: lists the app, revokes it, and its refresh token stops working`, async () => {
      const user = await signIn(fx.srv);
      const c = new TesseraClient({ issuer: fx.srv.url, mode });
      try {
        await c.login(user.username, PASSWORD);
        assert.deepEqual(await c.grants(), []);

        const refreshToken = await grantTo(user.cookie);
        const grants = await c.grants();
        assert.equal(grants.length, 1);
        const g = grants[0]!;
        assert.equal(g.clientId, fx.web.client.client_id);
        assert.equal(g.clientName, 'Web App');
        assert.deepEqual([...g.scopes].sort(), ['api', 'offline_access', 'openid']);
        assert.ok(Number.isFinite(Date.parse(g.createdAt)));
        assert.ok(Number.isFinite(Date.parse(g.updatedAt)));

        await c.revokeGrant(g.id);
        assert.deepEqual(await c.grants(), []);
        const refreshed = await refreshWith(refreshToken);
        assert.equal(refreshed.status, 400);
        assert.equal(refreshed.body.error, 'invalid_grant');

        // Gone already; the SDK still has its own login.
        await rejectsWith(c.revokeGrant(g.id), 'not_found');
        assert.notEqual(c.session, null);
      } finally {
        c.close();
      }
    });
  }

  test("another user's grant is not_found, and signed out is not_signed_in", async () => {
    const alice = await signIn(fx.srv);
    await grantTo(alice.cookie);
    const aliceGrants = await call(alice.cookie);
    const bob = await signIn(fx.srv);
    const c = new TesseraClient({ issuer: fx.srv.url });
    try {
      await c.login(bob.username, PASSWORD);
      await rejectsWith(c.revokeGrant(aliceGrants[0]!), 'not_found');
      assert.deepEqual(await c.grants(), []);
      assert.equal((await call(alice.cookie)).length, 1);
      await c.logout();
      await rejectsWith(c.grants(), 'not_signed_in');
    } finally {
      c.close();
    }

    async function call(cookie: string): Promise<string[]> {
      const res = await fetch(`${fx.srv.url}/auth/grants`, { headers: { cookie } });
      const body = (await res.json()) as { grants: { id: string }[] };
      return body.grants.map((g) => g.id);
    }
  });
});
