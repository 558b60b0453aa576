// Who may read the revocation feed and /metrics, and how many streams one client may hold open.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { RevocationFeedClient, RevocationSet } from '@tessera/verify';
import { type ConfigError, loadConfig } from '../src/config.js';
import { call, registerAndLogin, startTestServer, type TestServer } from './helpers.js';

const FEED_TOKEN = 'feed-token-that-is-long-enough-0123456789';
const METRICS_TOKEN = 'metrics-token-that-is-long-enough-012345';

const servers: TestServer[] = [];
async function server(overrides: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const srv = await startTestServer(overrides, { realClock: true });
  servers.push(srv);
  return srv;
}
after(async () => {
  for (const srv of servers) await srv.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Opens a stream and waits for its first bytes (the hello event); the caller aborts it. */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(`${url}/auth/revocations/stream`, { headers, signal: controller.signal });
  if (res.status === 200) {
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /event: hello/);
  } else await res.body?.cancel();
  return { status: res.status, res, close: () => controller.abort() };
}

describe('revocation feed and metrics access', () => {
  it('is required by default when the issuer is https, and configurable', () => {
    assert.equal(loadConfig({}, { issuer: 'https://auth.example.test' }).internalAuth, true);
    assert.equal(loadConfig({}, { issuer: 'http://localhost:4000' }).internalAuth, false);
    assert.equal(
      loadConfig({ TESSERA_INTERNAL_AUTH: 'true' }, { issuer: 'http://localhost:4000' }).internalAuth,
      true,
    );
    const env = {
      TESSERA_FEED_TOKEN: 'short',
      TESSERA_METRICS_TOKEN: 'x'.repeat(40),
      TESSERA_INTERNAL_ALLOW: '10.0.0.0/8, ::1, 10.0.0.0/33,not-an-ip',
    };
    assert.throws(
      () => loadConfig(env),
      (err: ConfigError) =>
        err.problems.length === 3 &&
        err.problems.some((p) => p.startsWith('TESSERA_FEED_TOKEN')) &&
        err.problems.some((p) => p.includes('"10.0.0.0/33"')) &&
        err.problems.some((p) => p.includes('"not-an-ip"')),
    );
  });

  it('refuses anonymous readers of an https issuer that configured neither token nor allow-list', async () => {
    const srv = await server({ issuer: 'https://auth.example.test' });
    for (const path of ['/auth/revocations', '/auth/revocations/stream', '/metrics']) {
      const res = await call(srv.url, 'GET', path);
      assert.equal(res.status, 403, path);
      assert.equal(res.body.error, 'forbidden', path);
      assert.match(res.body.message, /TESSERA_(FEED|METRICS)_TOKEN or TESSERA_INTERNAL_ALLOW/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
  });

  it('accepts the right bearer token, refuses a missing or wrong one, each endpoint its own', async () => {
    const srv = await server({ feedToken: FEED_TOKEN, metricsToken: METRICS_TOKEN });
    for (const headers of [
      {},
      bearer(`${FEED_TOKEN}x`),
      bearer(FEED_TOKEN.slice(1)),
      { authorization: FEED_TOKEN },
    ]) {
      const snap = await call(srv.url, 'GET', '/auth/revocations', { headers });
      assert.equal(snap.status, 401);
      assert.equal(snap.body.error, 'unauthorized');
      assert.match(snap.headers.get('www-authenticate') ?? '', /^Bearer /);
      const stream = await openStream(srv.url, headers);
      assert.equal(stream.status, 401);
    }
    const snap = await call(srv.url, 'GET', '/auth/revocations', { headers: bearer(FEED_TOKEN) });
    assert.equal(snap.status, 200);
    assert.ok(Array.isArray(snap.body.entries));
    const stream = await openStream(srv.url, bearer(FEED_TOKEN));
    assert.equal(stream.status, 200);
    stream.close();

    assert.equal((await call(srv.url, 'GET', '/metrics')).status, 401);
    assert.equal((await call(srv.url, 'GET', '/metrics', { headers: bearer(FEED_TOKEN) })).status, 401);
    const metrics = await call(srv.url, 'GET', '/metrics', { headers: bearer(METRICS_TOKEN) });
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /tessera_revocation_stream_clients/);
  });

  it('lets allow-listed addresses in without a token, and no one else', async () => {
    const inside = await server({ issuer: 'https://auth.example.test', internalAllow: ['127.0.0.0/8'] });
    assert.equal((await call(inside.url, 'GET', '/auth/revocations')).status, 200);
    assert.equal((await call(inside.url, 'GET', '/metrics')).status, 200);
    const outside = await server({ internalAllow: ['10.0.0.0/8', '::1'] });
    const refused = await call(outside.url, 'GET', '/auth/revocations');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, 'forbidden');
    assert.equal((await call(outside.url, 'GET', '/metrics')).status, 403);
  });

  it('caps the streams one client holds open, and frees a slot when one closes', async () => {
    const srv = await server({ feedMaxStreamsPerClient: 2 });
    const a = await openStream(srv.url);
    const b = await openStream(srv.url);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    const third = await fetch(`${srv.url}/auth/revocations/stream`);
    assert.equal(third.status, 429);
    assert.equal(((await third.json()) as { error: string }).error, 'too_many_streams');
    assert.ok(third.headers.get('retry-after'));
    a.close();
    // The server sees the close asynchronously; a slot is free once it has.
    let again = await openStream(srv.url);
    for (let i = 0; i < 50 && again.status === 429; i++) {
      await delay(20);
      again = await openStream(srv.url);
    }
    assert.equal(again.status, 200);
    again.close();
    b.close();
  });

  it('counts the streams of one IPv6 /64 together', async () => {
    const srv = await server({ trustProxy: ['127.0.0.1'], feedMaxStreamsPerClient: 2 });
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    const a = await openStream(srv.url, from('2001:db8:7:1::1'));
    const b = await openStream(srv.url, from('2001:db8:7:1::2'));
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    const third = await fetch(`${srv.url}/auth/revocations/stream`, { headers: from('2001:db8:7:1::3') });
    assert.equal(third.status, 429);
    assert.equal(((await third.json()) as { error: string }).error, 'too_many_streams');
    const other = await openStream(srv.url, from('2001:db8:7:2::1'));
    assert.equal(other.status, 200, 'another /64 is another client');
    other.close();
    a.close();
    b.close();
  });

  it('RevocationFeedClient sends its token and follows the feed end to end', async () => {
    const srv = await server({ issuer: 'https://auth.example.test', feedToken: FEED_TOKEN });
    for (const token of [undefined, `${FEED_TOKEN}x`]) {
      const refused = new RevocationFeedClient({ issuer: srv.url, set: new RevocationSet(), token });
      try {
        await assert.rejects(refused.start(), /revocation snapshot answered 401/);
      } finally {
        await refused.stop();
      }
    }

    const set = new RevocationSet();
    const client = new RevocationFeedClient({ issuer: srv.url, set, token: FEED_TOKEN });
    try {
      await client.start();
      for (let i = 0; i < 100 && !client.connected; i++) await delay(20);
      assert.equal(client.connected, true, 'the stream is open');
      const { login } = await registerAndLogin(srv.url, { mode: 'token', delivery: 'header' });
      const claims = { sid: login.body.session_id as string };
      assert.equal(set.isRevoked(claims), false);
      await call(srv.url, 'POST', '/auth/logout', { headers: bearer(login.body.access_token) });
      for (let i = 0; i < 100 && !set.isRevoked(claims); i++) await delay(20);
      assert.equal(set.isRevoked(claims), true, 'the logout arrived over the stream');
    } finally {
      await client.stop();
    }
  });
});
