// The signing-key ring over a real store: rotation when due (once), and retired keys dropped as
// soon as every token they signed has expired.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyRing } from '../src/domain/keys.js';
import { closeStores } from '../src/store/open.js';
import { openSqliteStores } from '../src/store/sqlite.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const ACCESS_TTL = 300;

async function ring() {
  const stores = openSqliteStores(':memory:');
  const keys = new KeyRing(stores, Buffer.alloc(32, 7), { rotationDays: 30, accessTokenTtl: ACCESS_TTL });
  const state = (kid: string) => keys.list().find((k) => k.kid === kid)?.state;
  const kidIn = (s: string) => keys.list().find((k) => k.state === s)!.kid;
  return { keys, state, kidIn, close: () => closeStores(stores) };
}

describe('key ring', () => {
  it('rotates once when due: the key it promoted is not judged due again by its own age', async () => {
    const r = await ring();
    try {
      await r.keys.init(T0);
      const [a, b] = [r.kidIn('current'), r.kidIn('next')];
      await r.keys.init(T0 + 30 * DAY - 1);
      assert.equal(r.kidIn('current'), a, 'not due yet');
      await r.keys.init(T0 + 30 * DAY + 2);
      assert.equal(r.kidIn('current'), b, 'the next of the first day signs');
      assert.equal(r.state(a), 'retired');
      const c = r.kidIn('next');
      // The next upkeep, another instance starting, any CLI command: all call init.
      for (const later of [T0 + 30 * DAY + 3_600_000, T0 + 31 * DAY]) {
        await r.keys.init(later);
        assert.equal(r.kidIn('current'), b, 'still the same current key');
        assert.equal(r.kidIn('next'), c);
      }
      await r.keys.init(T0 + 60 * DAY + 3);
      assert.equal(r.kidIn('current'), c, 'a period after it began, the next rotation');
    } finally {
      await r.close();
    }
  });

  it('stops trusting a retired key at the first upkeep after its last token expired', async () => {
    const r = await ring();
    try {
      await r.keys.init(T0);
      const withdrawn = r.kidIn('current');
      await r.keys.rotate(T0 + 1000);
      const lastToken = T0 + 1000 + (ACCESS_TTL + 300) * 1000;
      await r.keys.init(lastToken - 1);
      assert.ok(r.keys.publicKey(withdrawn), 'kept while a token it signed may live');
      await r.keys.init(lastToken + 1);
      assert.equal(r.keys.publicKey(withdrawn), undefined, 'no longer verifies anything');
      assert.ok(!r.keys.jwks().keys.some((k) => k.kid === withdrawn), 'nor published');
    } finally {
      await r.close();
    }
  });
});
