import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../src/errors.js';
import { PostgresOAuthStore } from '../src/oauth/postgres.js';
import type { OAuthRefreshTokenRecord } from '../src/oauth/types.js';
import { PostgresStore } from '../src/store/postgres.js';
import { randomId } from '../src/util/crypto.js';
import { freePort } from './helpers.js';
import { oauthStoreContract } from './oauth-store-contract.js';
import { dropSchemas } from './services.js';

const url = process.env.TESSERA_TEST_DATABASE_URL;
const skip = url ? undefined : 'PostgreSQL not reachable: TESSERA_TEST_DATABASE_URL unset';

// Every run works in schemas of its own, dropped at the end, so runs never see each other's rows.
const run = `tessera_oauth_test_${randomBytes(6).toString('hex')}`;
const schemas: string[] = [];
function schema(suffix: string): string {
  const name = `${run}_${suffix}`;
  schemas.push(name);
  return name;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

after(async () => {
  if (!url || schemas.length === 0) return;
  await dropSchemas(url, schemas);
});

const T0 = 1_700_000_000_000;

function refresh(grantId: string, over: Partial<OAuthRefreshTokenRecord> = {}): OAuthRefreshTokenRecord {
  return {
    id: randomId(),
    grantId,
    clientId: 'c',
    userId: 'u',
    secretHash: 'h',
    scope: 'api',
    dpopJkt: null,
    parentId: null,
    createdAt: T0,
    expiresAt: T0 + 86_400_000,
    usedAt: null,
    ...over,
  };
}

if (url) {
  // A schema per opened store, as the SQLite contract gets a fresh database each time.
  let n = 0;
  oauthStoreContract('postgres', () => PostgresOAuthStore.open(url, { schema: schema(`contract_${n++}`) }));
} else {
  it('OAuthStore contract: postgres', { skip }, () => {});
}

describe('postgres oauth store', { skip }, () => {
  /** Two instances of a cluster: separate pools on one schema. */
  async function pair(suffix: string): Promise<[PostgresOAuthStore, PostgresOAuthStore]> {
    const name = schema(suffix);
    const a = await PostgresOAuthStore.open(url!, { schema: name });
    const b = await PostgresOAuthStore.open(url!, { schema: name });
    return [a, b];
  }

  it('two instances racing to consume one code: exactly one winner', async () => {
    const [a, b] = await pair('code_race');
    try {
      for (let round = 0; round < 5; round++) {
        const codeHash = randomId();
        await a.insertCode({
          codeHash,
          clientId: 'c',
          userId: 'u',
          grantId: 'g',
          redirectUri: 'https://app.example/cb',
          redirectUriGiven: true,
          scope: 'openid',
          codeChallenge: 'x'.repeat(43),
          nonce: null,
          authTime: T0,
          dpopJkt: null,
          createdAt: T0,
          expiresAt: T0 + 60_000,
          consumedAt: null,
        });
        const wins = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).consumeCode(codeHash, T0 + 1 + i)),
        );
        assert.equal(wins.filter(Boolean).length, 1, `round ${round}`);
        const winner = wins.indexOf(true);
        assert.equal((await b.getCode(codeHash))?.consumedAt, T0 + 1 + winner);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('two instances racing to rotate one refresh token: one rotation, the rest see reuse', async () => {
    const [a, b] = await pair('rotate_race');
    try {
      const g = await a.upsertGrant({ id: randomId(), userId: 'u', clientId: 'c', scope: 'api', now: T0 });
      const t = refresh(g.id);
      await a.insertRefreshToken(t);
      const successors = Array.from({ length: 20 }, () => refresh(g.id, { parentId: t.id }));
      const outcomes = await Promise.all(
        successors.map((s, i) => (i % 2 === 0 ? a : b).rotateRefreshToken(t.id, T0 + 1, s)),
      );
      assert.equal(outcomes.filter((o) => o.outcome === 'rotated').length, 1);
      assert.equal(outcomes.filter((o) => o.outcome === 'reused').length, 19);
      // only the winner's successor was stored
      const stored = await Promise.all(successors.map((s) => b.getRefreshToken(s.id)));
      assert.equal(stored.filter((s) => s !== null).length, 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('revoking a grant while rotations race never leaves a live successor', async () => {
    const [a, b] = await pair('revoke_race');
    try {
      for (let round = 0; round < 5; round++) {
        const g = await a.upsertGrant({
          id: randomId(),
          userId: `u${round}`,
          clientId: 'c',
          scope: 'api',
          now: T0,
        });
        const t = refresh(g.id);
        await a.insertRefreshToken(t);
        const successor = refresh(g.id, { parentId: t.id });
        const [rotated, revoked] = await Promise.all([
          a.rotateRefreshToken(t.id, T0 + 1, successor),
          b.revokeGrant(g.id, T0 + 1, 'test'),
        ]);
        assert.equal(revoked, true);
        assert.ok(rotated.outcome === 'rotated' || rotated.outcome === 'invalid', JSON.stringify(rotated));
        const s = await b.getRefreshToken(successor.id);
        if (s) assert.notEqual(s.usedAt, null, 'the successor is spent with its grant');
        assert.deepEqual(await b.rotateRefreshToken(successor.id, T0 + 2, refresh(g.id)), {
          outcome: 'invalid',
        });
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('concurrent consents on two instances leave one live grant with every scope', async () => {
    const [a, b] = await pair('grant_race');
    try {
      const scopes = ['openid', 'api', 'profile', 'email', 'offline_access', 'reports'];
      const all = await Promise.all(
        scopes.map((scope, i) =>
          (i % 2 === 0 ? a : b).upsertGrant({
            id: randomId(),
            userId: 'u',
            clientId: 'c',
            scope,
            now: T0 + i,
          }),
        ),
      );
      assert.equal(new Set(all.map((g) => g.id)).size, 1);
      const live = await a.getLiveGrant('u', 'c');
      assert.deepEqual(live?.scope.split(' ').sort(), [...scopes].sort());
      // old scopes first, each once
      const widened = await b.upsertGrant({
        id: randomId(),
        userId: 'u',
        clientId: 'c',
        scope: 'api  zeta api',
        now: T0 + 10,
      });
      assert.equal(widened.scope, `${live?.scope} zeta`);
      assert.equal(widened.createdAt, live?.createdAt);
      assert.equal(widened.updatedAt, T0 + 10);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a DPoP jti is recorded once across instances', async () => {
    const [a, b] = await pair('jti_race');
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).rememberJti('k:jti', T0 + 1000, T0)),
      );
      assert.equal(results.filter(Boolean).length, 1);
      // an expired entry is taken over exactly once, too
      const later = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? a : b).rememberJti('k:jti', T0 + 5000, T0 + 2000),
        ),
      );
      assert.equal(later.filter(Boolean).length, 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('prune drops what expired and keeps the rest', async () => {
    const [a, b] = await pair('prune');
    try {
      const g = await a.upsertGrant({ id: randomId(), userId: 'u', clientId: 'c', scope: 'api', now: T0 });
      const old = refresh(g.id, { expiresAt: T0 });
      const fresh = refresh(g.id, { expiresAt: T0 + 10 * 86_400_000 });
      await a.insertRefreshToken(old);
      await a.insertRefreshToken(fresh);
      await a.rememberJti('k:old', T0 + 1, T0);
      await a.rememberJti('k:new', T0 + 3 * 86_400_000, T0);
      await b.prune(T0 + 2 * 86_400_000);
      assert.equal(await a.getRefreshToken(old.id), null);
      assert.notEqual(await a.getRefreshToken(fresh.id), null);
      assert.equal(await a.rememberJti('k:new', T0 + 3 * 86_400_000, T0 + 2 * 86_400_000), false);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('shares a schema with the account store: own migration table, both migrate once when started together', async () => {
    const name = schema('shared');
    const opened = await Promise.all([
      PostgresStore.open(url!, { schema: name }),
      PostgresOAuthStore.open(url!, { schema: name }),
      PostgresOAuthStore.open(url!, { schema: name }),
      PostgresStore.open(url!, { schema: name }),
    ]);
    await Promise.all(opened.map((s) => s.close()));
    const again = await PostgresOAuthStore.open(url!, { schema: name });
    await again.ping();
    await again.close();
    await admin(async (c) => {
      const oauthVersions = (
        await c.query(`SELECT version FROM ${name}.tessera_oauth_migrations ORDER BY version`)
      ).rows.map((r: { version: number }) => r.version);
      assert.ok(oauthVersions.length >= 1);
      assert.deepEqual(
        oauthVersions,
        oauthVersions.map((_: number, i: number) => i + 1),
      );
      const accountVersions = (
        await c.query(`SELECT version FROM ${name}.tessera_migrations ORDER BY version`)
      ).rows.map((r: { version: number }) => r.version);
      assert.ok(accountVersions.length >= 2, 'the account store migrated in the same schema');
    });
  });

  it('refuses a schema name it would have to quote', async () => {
    await assert.rejects(PostgresOAuthStore.open(url!, { schema: 'bad"; drop' }), TypeError);
  });

  it('rejects with StoreUnavailableError when nothing listens (bounded connect timeout)', async () => {
    const target = new URL(url!);
    target.hostname = '127.0.0.1';
    target.port = String(await freePort());
    await assert.rejects(
      PostgresOAuthStore.open(target.toString(), { schema: schema('down'), connectionTimeoutMillis: 1000 }),
      (err: unknown) => err instanceof StoreUnavailableError && err.code === 'unavailable',
    );
  });
});

describe('oauth suites with the OAuth store in PostgreSQL', { skip }, () => {
  it('oauth-flows, oauth-dpop, oauth-grants and oauth-security pass unchanged', {
    timeout: 180_000,
  }, async () => {
    // The same suites, in a child runner whose servers open their OAuth store through
    // connectOAuthStore with a databaseUrl (see startOAuthServer in oauth-helpers.ts).
    const files = ['oauth-flows', 'oauth-dpop', 'oauth-grants', 'oauth-security'].map((f) =>
      path.join(import.meta.dirname, `${f}.test.ts`),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_TEST_OAUTH_PG_SCHEMA: schema('suites') };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, output);
    assert.match(output, /ℹ fail 0/);
    assert.doesNotMatch(output, /ℹ pass 0\b/);
  });
});
