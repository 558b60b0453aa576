// Which X-Forwarded-For entries count: only what named proxies add. A client may put anything at
// the left of the header; the IP Tessera uses is the one the nearest trusted proxy saw.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type Config, ConfigError, loadConfig } from '../src/config.js';
import { call, configProblems, PASSWORD, startTestServer, type TestServer, uniqueName } from './helpers.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

/** Logs a new user in with the given X-Forwarded-For and answers the IP its audit event holds. */
async function auditedIp(overrides: Partial<Config>, forwardedFor: string): Promise<string | null> {
  const srv = await startTestServer(overrides);
  servers.push(srv);
  const username = uniqueName('proxied');
  assert.equal(
    (await call(srv.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status,
    201,
  );
  const login = await call(srv.url, 'POST', '/auth/login', {
    body: { username, password: PASSWORD, mode: 'token', delivery: 'header' },
    headers: { 'x-forwarded-for': forwardedFor },
  });
  assert.equal(login.status, 200);
  const user = await srv.app.stores.users.getUserByUsername(username);
  const events = await srv.app.stores.audit.listAuditEvents({ userId: user!.id, type: 'login_ok', limit: 1 });
  assert.equal(events.length, 1);
  return events[0]!.ip;
}

describe('trusted proxies', () => {
  // The test client is the proxy (127.0.0.1); it forwards a request whose sender it saw as
  // 198.51.100.4, and that sender wrote a spoofed 203.0.113.9 in front.
  const spoofed = '203.0.113.9, 198.51.100.4';

  it('with the proxy named by address, the spoofed leftmost entry is not the client IP', async () => {
    assert.equal(await auditedIp({ trustProxy: ['127.0.0.1'] }, spoofed), '198.51.100.4');
  });

  it('with the proxy named by CIDR from the environment, likewise', async () => {
    const { trustProxy } = loadConfig({ TESSERA_TRUST_PROXY: ' 10.0.0.0/8, 127.0.0.0/8 ,::1' });
    assert.deepEqual(trustProxy, ['10.0.0.0/8', '127.0.0.0/8', '::1']);
    assert.equal(await auditedIp({ trustProxy }, spoofed), '198.51.100.4');
  });

  it('a proxy that is not named adds nothing: the peer address is the client IP', async () => {
    assert.equal(await auditedIp({ trustProxy: ['10.1.2.3'] }, spoofed), '127.0.0.1');
  });

  it('off by default: X-Forwarded-For is ignored', async () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ TESSERA_TRUST_PROXY: 'false' }).trustProxy, false);
    assert.equal(await auditedIp({}, spoofed), '127.0.0.1');
  });

  it('refuses "true", hop counts and what is not an address, saying to name the proxies', () => {
    for (const value of ['true', 'yes', '1', '2', 'proxy.example', '10.0.0.0/33', '127.0.0.1/8/8']) {
      const found = configProblems({ TESSERA_TRUST_PROXY: value });
      assert.equal(found.length, 1, `${value}: ${JSON.stringify(found)}`);
      assert.match(found[0]!, /^TESSERA_TRUST_PROXY \(trustProxy\)/);
      assert.match(found[0]!, /name the proxies .* by address or CIDR/);
    }
    assert.match(configProblems({ TESSERA_TRUST_PROXY: 'true' })[0]!, /may not be true/);
    assert.throws(() => loadConfig({}, { trustProxy: true as never }), ConfigError);
  });
});
