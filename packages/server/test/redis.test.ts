// The Redis roles (sessions, counters) and the revocation bridge, on one Redis and on a real
// three-node Redis Cluster the file starts itself.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RevocationBridge } from '../src/cluster/revocation-bridge.js';
import { RevocationHub } from '../src/domain/revocations.js';
import { StoreUnavailableError } from '../src/errors.js';
import { ANY_USE, refreshTokenId } from '../src/store/ports.js';
import { RedisBackend } from '../src/store/redis.js';
import { RedisCounters } from '../src/store/redis-counters.js';
import { RedisSessionStore } from '../src/store/redis-sessions.js';
import type { RevocationEntry } from '../src/store/types.js';
import { randomId } from '../src/util/crypto.js';
import { countersContract } from './contracts/counters.js';
import { refresh, session, sessionUser, T0, user } from './contracts/records.js';
import { sessionStoreContract } from './contracts/sessions.js';
import { freePort } from './helpers.js';
import { type RedisClusterFixture, skipWithoutRedisCluster, startRedisCluster } from './redis-cluster.js';
import { deleteRedisKeys, redisUrl } from './services.js';

const skipSingle = redisUrl ? undefined : 'Redis not reachable: TESSERA_TEST_REDIS_URL unset';
const prefix = `tessera:test:${randomBytes(6).toString('hex')}:`;
interface Opened {
  backend: RedisBackend;
  sessions: RedisSessionStore;
  counters: RedisCounters;
}

async function openRoles(url: string, cluster: boolean, keyPrefix: string): Promise<Opened> {
  const backend = await RedisBackend.open(url, { cluster, prefix: keyPrefix });
  return { backend, sessions: new RedisSessionStore(backend), counters: new RedisCounters(backend) };
}

/** The SessionStore and Counters contracts, each on a connection of its own. */
function contracts(name: string, open: () => Promise<Opened>, skip: string | undefined): void {
  sessionStoreContract(
    name,
    async () => {
      const r = await open();
      return { sessions: r.sessions, addUser: async () => {}, close: () => r.backend.close() };
    },
    { skip, prunes: false },
  );
  countersContract(
    name,
    async () => {
      const r = await open();
      return { counters: r.counters, close: () => r.backend.close() };
    },
    { skip },
  );
}

contracts('one Redis', () => openRoles(redisUrl!, false, `${prefix}contract:`), skipSingle);

let cluster: RedisClusterFixture | undefined;
const clusterPrefix = 'tessera:test:cluster:';
after(async () => {
  if (redisUrl) await deleteRedisKeys(redisUrl, prefix);
  await cluster?.stop();
});

describe('redis cluster', { skip: skipWithoutRedisCluster, timeout: 60_000 }, () => {
  before(async () => {
    cluster = await startRedisCluster();
  });

  contracts('three-node Redis Cluster', () => openRoles(cluster!.url, true, clusterPrefix), undefined);

  it('keeps one session and its refresh tokens in one slot, and spreads sessions over the nodes', async () => {
    const r = await openRoles(cluster!.url, true, `${clusterPrefix}slots:`);
    const admin = cluster!.node(cluster!.ports[0]!);
    try {
      const u = sessionUser(user());
      const sessions = Array.from({ length: 60 }, () => session(u.id));
      const firsts = sessions.map((s) => refresh(s.id, { expiresAt: s.idleExpiresAt }));
      for (let i = 0; i < sessions.length; i++) await r.sessions.createSession(sessions[i]!, u, firsts[i]);
      const s = sessions[0]!;
      const t = firsts[0]!;
      const successorId = refreshTokenId(s.id, randomId());
      const rotated = await r.sessions.rotateRefreshToken({
        id: t.id,
        secretHash: t.secretHash,
        successorId,
        successorSecretHash: 'h',
        now: T0 + 1,
        graceMs: 0,
        idleTtlMs: 600_000,
      });
      assert.equal(rotated.outcome, 'rotated');
      const misnamed = {
        id: successorId,
        secretHash: 'h',
        successorId: refreshTokenId(randomId(), randomId()),
        successorSecretHash: 'h2',
        now: T0 + 2,
        graceMs: 0,
        idleTtlMs: 600_000,
      };
      assert.deepEqual(
        await r.sessions.rotateRefreshToken(misnamed),
        { outcome: 'invalid' },
        'a successor named for another session',
      );
      const next = refreshTokenId(s.id, randomId());
      assert.equal(
        (await r.sessions.rotateRefreshToken({ ...misnamed, successorId: next })).outcome,
        'rotated',
      );
      const keys = [
        r.sessions.sessionKey(s.id),
        r.sessions.refreshKey(t.id)!,
        r.sessions.refreshKey(successorId)!,
        r.sessions.refreshKey(next)!,
      ];
      const slots = await Promise.all(keys.map((k) => admin.cluster('KEYSLOT', k) as Promise<number>));
      assert.equal(new Set(slots).size, 1, `one slot for ${keys.join(', ')}: ${slots.join(', ')}`);

      // Where each session's key actually is: every node holds some.
      const perNode = await Promise.all(
        cluster!.ports.map(async (port) => {
          const node = cluster!.node(port);
          let cursor = '0';
          let found = 0;
          do {
            const [next, batch] = await node.scan(
              cursor,
              'MATCH',
              `${clusterPrefix}slots:s:{*}`,
              'COUNT',
              500,
            );
            cursor = next;
            found += batch.length;
          } while (cursor !== '0');
          return found;
        }),
      );
      assert.equal(
        perNode.reduce((a, b) => a + b, 0),
        sessions.length,
      );
      assert.ok(
        perNode.every((n) => n > 0),
        `sessions on every node: ${perNode.join(', ')}`,
      );
    } finally {
      await r.backend.close();
    }
  });

  it('shares revocations between bridges on the cluster', async () => {
    const hubA = new RevocationHub();
    const hubB = new RevocationHub();
    const a = await RevocationBridge.start(cluster!.url, hubA, clusterPrefix, true);
    const b = await RevocationBridge.start(cluster!.url, hubB, clusterPrefix, true);
    try {
      const entry: RevocationEntry = {
        seq: 1,
        sid: randomId(),
        sub: null,
        notBefore: null,
        expiresAt: Math.floor(T0 / 1000) + 600,
        reason: 'logout',
      };
      const received = new Promise<RevocationEntry[]>((resolve) => hubB.subscribe(resolve));
      await hubA.broadcast!([entry]);
      assert.deepEqual(await received, [entry]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/**
 * A session that ends an hour from the real now (TTLs count from Redis's clock), a 60 s retention,
 * and a plain client to look at the keys.
 */
async function onRealClock(
  name: string,
  fn: (r: {
    sessions: RedisSessionStore;
    admin: Redis;
    now: number;
    u: ReturnType<typeof sessionUser>;
    s: ReturnType<typeof session>;
  }) => Promise<void>,
): Promise<void> {
  const backend = await RedisBackend.open(redisUrl!, { prefix: `${prefix}${name}:`, retainMs: 60_000 });
  const admin = new Redis(redisUrl!);
  try {
    const now = Date.now();
    const u = sessionUser(user());
    const s = session(u.id, { createdAt: now, expiresAt: now + 3_600_000, idleExpiresAt: now + 600_000 });
    await fn({ sessions: new RedisSessionStore(backend), admin, now, u, s });
  } finally {
    await admin.quit();
    await backend.close();
  }
}

describe('redis backend', { skip: skipSingle }, () => {
  it('gives a session its idle end, a refresh token its own end, and the index the latest end, plus the retention', async () => {
    await onRealClock('ttl', async ({ sessions, admin, now, u, s }) => {
      const t = refresh(s.id, { createdAt: now, expiresAt: now + 120_000 });
      await sessions.createSession(s, u, t);
      const sttl = await admin.pttl(sessions.sessionKey(s.id));
      assert.ok(sttl > 600_000 && sttl <= 660_000, String(sttl));
      const rttl = await admin.pttl(sessions.refreshKey(t.id)!);
      assert.ok(rttl > 120_000 && rttl <= 180_000, String(rttl));
      const ittl = await admin.pttl(sessions.indexKey(u.id));
      assert.ok(ittl > 3_600_000 && ittl <= 3_660_000, String(ittl));
      await sessions.touchSession(s.id, now + 1, now + 1_200_000);
      const touched = await admin.pttl(sessions.sessionKey(s.id));
      assert.ok(touched > 1_200_000 && touched <= 1_260_000, String(touched));
    });
  });

  it('keeps a used refresh token whole for its grace window, then only its digest, which still catches reuse', async () => {
    await onRealClock('used', async ({ sessions, admin, now, u, s }) => {
      const t = refresh(s.id, { createdAt: now, expiresAt: s.idleExpiresAt });
      await sessions.createSession(s, u, t);
      const rotation = {
        id: t.id,
        secretHash: t.secretHash,
        successorId: refreshTokenId(s.id, randomId()),
        successorSecretHash: 'successor',
        now: now + 1,
        graceMs: 10_000,
        idleTtlMs: 600_000,
      };
      assert.equal((await sessions.rotateRefreshToken(rotation)).outcome, 'rotated');
      const kept = await admin.pttl(sessions.refreshKey(t.id)!);
      assert.ok(kept > 60_000 && kept <= 70_000, `grace + retention: ${kept}`);
      assert.equal((await admin.get(sessions.usedKey(s.id)))?.length, 21);
      assert.ok((await admin.pttl(sessions.usedKey(s.id))) > 600_000);

      // The whole record has expired; a replay with a forged secret is only invalid...
      await admin.del(sessions.refreshKey(t.id)!);
      // It still names its family for what any holder of the family may do (sign out), as the
      // SQL stores' whole record does, and is no credential.
      const family = (secret: string, graceMs: number) =>
        sessions.sessionOfRefreshToken(t.id, secret, now + 20_000, graceMs);
      assert.equal((await family(t.secretHash, ANY_USE))?.id, s.id);
      assert.equal(await family('forged', ANY_USE), null);
      assert.equal(await family(t.secretHash, 10_000), null, 'past the grace window');
      assert.equal(await family(t.secretHash, 300_000), null, 'a grace window longer than the retention too');
      const late = { ...rotation, now: now + 20_000 };
      assert.deepEqual(await sessions.rotateRefreshToken({ ...late, secretHash: 'forged' }), {
        outcome: 'invalid',
      });
      assert.notEqual(await sessions.getLiveSession(s.id, now + 20_000), null);
      // ...and the real one is reuse: the session ends.
      assert.deepEqual(await sessions.rotateRefreshToken(late), {
        outcome: 'reused',
        sessionId: s.id,
        userId: u.id,
      });
      assert.equal((await sessions.getSession(s.id))?.revokeReason, 'refresh_reuse');
    });
  });

  it('rejects with StoreUnavailableError when nothing listens (bounded connect timeout)', async () => {
    for (const cluster of [false, true]) {
      await assert.rejects(
        RedisBackend.open(`redis://127.0.0.1:${await freePort()}/0`, { cluster, connectTimeoutMillis: 1000 }),
        (err: unknown) => err instanceof StoreUnavailableError && err.code === 'unavailable',
      );
    }
  });

  it('fails closed while its connection is killed, then reconnects by itself', async () => {
    const name = `tessera-test-${randomBytes(4).toString('hex')}`;
    const backend = await RedisBackend.open(redisUrl!, { prefix: `${prefix}kill:`, connectionName: name });
    const counters = new RedisCounters(backend);
    const admin = new Redis(redisUrl!);
    try {
      await backend.ping();
      const clients = (await admin.client('LIST')) as string;
      const id = clients
        .split('\n')
        .find((line) => line.includes(` name=${name} `))
        ?.match(/^id=(\d+)/)?.[1];
      assert.ok(id, 'found the store connection');
      await admin.client('KILL', 'ID', id);
      const started = Date.now();
      let ok = false;
      let failures = 0;
      while (!ok && Date.now() - started < 15_000) {
        try {
          await counters.hitCounter('k', 60_000, Date.now());
          ok = true;
        } catch (err) {
          assert.ok(err instanceof StoreUnavailableError, String(err));
          failures++;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      assert.ok(ok, `reconnected (after ${failures} coded failures)`);
    } finally {
      await admin.quit();
      await backend.close();
    }
  });
});
