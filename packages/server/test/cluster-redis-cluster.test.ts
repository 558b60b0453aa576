// Two account-server instances on one PostgreSQL schema and a real three-node Redis Cluster
// (TESSERA_REDIS_CLUSTER): a flow whose steps land on either instance, revocations shared over
// the cluster's pub/sub, and the Redis round trips one refresh and one /auth/me cost.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server.js';
import type { RevocationEntry } from '../src/store/types.js';
import { call, freePort, registerAndLogin, SECRET } from './helpers.js';
import { type RedisClusterFixture, skipWithoutRedisCluster, startRedisCluster } from './redis-cluster.js';
import { databaseUrl, dropSchemas } from './services.js';

const skip = databaseUrl
  ? skipWithoutRedisCluster
  : 'PostgreSQL not reachable: TESSERA_TEST_DATABASE_URL unset';
const schema = `tessera_test_${randomBytes(6).toString('hex')}_rc`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('cluster on a Redis Cluster: two instances, PostgreSQL + three Redis nodes', {
  skip,
  timeout: 90_000,
}, () => {
  let cluster: RedisClusterFixture;
  let a: RunningServer;
  let b: RunningServer;
  const dataDirs: string[] = [];

  async function instance(port: number, issuer: string): Promise<RunningServer> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-rc-'));
    dataDirs.push(dataDir);
    const config = loadConfig(
      { TESSERA_REDIS_CLUSTER: 'true' },
      {
        port,
        issuer,
        dataDir,
        secret: SECRET,
        databaseUrl,
        redisUrl: cluster.url,
        databaseSchema: schema,
        redisPrefix: 'tessera:rc:',
        logLevel: 'silent',
      },
    );
    return startServer({ config, logger: false, heartbeatMs: 200 });
  }

  /**
   * The commands clients sent the cluster's nodes while `step` ran (round trips; the commands a
   * script runs inside Redis and the INFO of a new connection's ready check are not counted), by name.
   */
  async function roundTrips(step: () => Promise<void>): Promise<Record<string, number>> {
    const seen: Record<string, number> = {};
    const marker = `tessera-marker-${randomBytes(4).toString('hex')}`;
    const monitors = await Promise.all(
      cluster.ports.map(async (port) => {
        const monitor = await cluster.node(port).monitor();
        const done = new Promise<void>((resolve) => {
          monitor.on('monitor', (_time: string, args: string[], source: string) => {
            if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) resolve();
            else if (source !== 'lua' && args[0]?.toLowerCase() !== 'info')
              seen[args[0]!.toLowerCase()] = (seen[args[0]!.toLowerCase()] ?? 0) + 1;
          });
        });
        return { monitor, done };
      }),
    );
    await step();
    await Promise.all(cluster.ports.map((port) => cluster.node(port).echo(marker)));
    await Promise.all(monitors.map((m) => m.done));
    for (const m of monitors) m.monitor.disconnect();
    return seen;
  }

  before(async () => {
    cluster = await startRedisCluster();
    const [portA, portB] = [await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${portA}`;
    a = await instance(portA, issuer);
    b = await instance(portB, issuer);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await cluster?.stop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    if (databaseUrl) await dropSchemas(databaseUrl, [schema]);
  });

  it('logs in on A, refreshes and reads /auth/me on B, logs out on A, and B refuses at once', async (t) => {
    const { login } = await registerAndLogin(a.url, { mode: 'token', delivery: 'header' });
    const sid = login.body.session_id as string;

    // The first refresh on each instance loads the scripts (NOSCRIPT, then EVAL); the third is measured.
    let token = login.body.refresh_token as string;
    for (const server of [b, a]) {
      const warm = await call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: token } });
      assert.equal(warm.status, 200, JSON.stringify(warm.body));
      token = warm.body.refresh_token;
    }
    let refreshed!: Awaited<ReturnType<typeof call>>;
    const perRefresh = await roundTrips(async () => {
      refreshed = await call(b.url, 'POST', '/auth/refresh', { body: { refresh_token: token } });
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    const perMe = await roundTrips(async () => {
      const me = await call(b.url, 'GET', '/auth/me', { headers: bearer(refreshed.body.access_token) });
      assert.equal(me.status, 200);
    });
    t.diagnostic(`Redis round trips per refresh: ${JSON.stringify(perRefresh)}`);
    t.diagnostic(`Redis round trips per /auth/me: ${JSON.stringify(perMe)}`);

    const heardOnB = new Promise<RevocationEntry[]>((resolve) => {
      const stop = b.app.revocations.hub.subscribe((entries) => {
        if (entries.some((e) => e.sid === sid)) {
          stop();
          resolve(entries);
        }
      });
    });
    const out = await call(a.url, 'POST', '/auth/logout', { headers: bearer(refreshed.body.access_token) });
    assert.equal(out.status, 204);
    assert.ok(
      (await heardOnB).some((e) => e.sid === sid),
      'B heard the revocation over the cluster',
    );
    const after = await call(b.url, 'GET', '/auth/me', { headers: bearer(refreshed.body.access_token) });
    assert.equal(after.status, 401);
    const again = await call(b.url, 'POST', '/auth/refresh', {
      body: { refresh_token: refreshed.body.refresh_token },
    });
    assert.equal(again.status, 401);
  });
});
