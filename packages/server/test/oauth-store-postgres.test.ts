import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import type { OAuthStore } from '../src/oauth/types.js';
import { closeStores } from '../src/store/open.js';
import type { Stores } from '../src/store/ports.js';
import { openPostgresStores } from '../src/store/postgres.js';
import { randomId } from '../src/util/crypto.js';
import { oauthCode, oauthRefresh as refresh, T0, user } from './contracts/records.js';
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

after(async () => {
  if (!url || schemas.length === 0) return;
  await dropSchemas(url, schemas);
});

describe('postgres oauth store', { skip }, () => {
  const opened: Stores[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await closeStores(s);
  });

  /** Two instances of a cluster (separate pools on one schema), and `users` users made there. */
  async function pair(suffix: string, users = 0): Promise<[OAuthStore, OAuthStore, string[]]> {
    const name = schema(suffix);
    const a = await openPostgresStores(url!, { schema: name });
    const b = await openPostgresStores(url!, { schema: name });
    opened.push(a, b);
    const ids: string[] = [];
    for (let i = 0; i < users; i++) ids.push((await a.users.createUser(user()))!.id);
    return [a.oauth, b.oauth, ids];
  }

  it('two instances racing to consume one code: exactly one winner', async () => {
    const [a, b] = await pair('code_race');
    for (let round = 0; round < 5; round++) {
      const code = oauthCode('g');
      const { codeHash } = code;
      await a.insertCode(code);
      const wins = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).consumeCode(codeHash, T0 + 1 + i)),
      );
      assert.equal(wins.filter(Boolean).length, 1, `round ${round}`);
      const winner = wins.indexOf(true);
      assert.equal((await b.getCode(codeHash))?.consumedAt, T0 + 1 + winner);
    }
  });

  it('two instances racing to rotate one refresh token: one rotation, the rest see reuse', async () => {
    const [a, b, [u]] = await pair('rotate_race', 1);
    const g = await a.upsertGrant({ id: randomId(), userId: u!, clientId: 'c', scope: 'api', now: T0 });
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
  });

  it('revoking a grant while rotations race never leaves a live successor', async () => {
    const [a, b, users] = await pair('revoke_race', 5);
    for (let round = 0; round < 5; round++) {
      const g = await a.upsertGrant({
        id: randomId(),
        userId: users[round]!,
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
  });

  it('concurrent consents on two instances leave one live grant with every scope', async () => {
    const [a, b, [u]] = await pair('grant_race', 1);
    const scopes = ['openid', 'api', 'profile', 'email', 'offline_access', 'reports'];
    const all = await Promise.all(
      scopes.map((scope, i) =>
        (i % 2 === 0 ? a : b).upsertGrant({
          id: randomId(),
          userId: u!,
          clientId: 'c',
          scope,
          now: T0 + i,
        }),
      ),
    );
    assert.equal(new Set(all.map((g) => g.id)).size, 1);
    const live = await a.getLiveGrant(u!, 'c');
    assert.deepEqual(live?.scope.split(' ').sort(), [...scopes].sort());
    // old scopes first, each once
    const widened = await b.upsertGrant({
      id: randomId(),
      userId: u!,
      clientId: 'c',
      scope: 'api  zeta api',
      now: T0 + 10,
    });
    assert.equal(widened.scope, `${live?.scope} zeta`);
    assert.equal(widened.createdAt, live?.createdAt);
    assert.equal(widened.updatedAt, T0 + 10);
  });

  it('a DPoP jti is recorded once across instances', async () => {
    const [a, b] = await pair('jti_race');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).rememberJti('k:jti', T0 + 1000, T0)),
    );
    assert.equal(results.filter(Boolean).length, 1);
    // an expired entry is taken over exactly once, too
    const later = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).rememberJti('k:jti', T0 + 5000, T0 + 2000)),
    );
    assert.equal(later.filter(Boolean).length, 1);
  });

  it('prune drops what expired and keeps the rest', async () => {
    const [a, b, [u]] = await pair('prune', 1);
    const g = await a.upsertGrant({ id: randomId(), userId: u!, clientId: 'c', scope: 'api', now: T0 });
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
  });
});

describe('oauth suites with the stores in PostgreSQL', { skip }, () => {
  it('oauth-flows, oauth-dpop, oauth-grants and oauth-security pass unchanged', {
    timeout: 180_000,
  }, async () => {
    // The same suites, in a child runner whose servers open their stores through openStores
    // with a databaseUrl (see startOAuthServer in oauth-helpers.ts).
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
