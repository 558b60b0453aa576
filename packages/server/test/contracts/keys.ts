// The KeyStore contract: the signing-key ring and its compare-and-set rotation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomId } from '../../src/util/crypto.js';
import { type Open, opened } from './fixtures.js';
import { key, T0 } from './records.js';

/** `open` gives an empty ring. */
export function keyStoreContract(name: string, open: Open<'keys'>, options: { skip?: string } = {}): void {
  describe(`KeyStore contract: ${name}`, { skip: options.skip }, () => {
    const s = opened(open);

    it('starts a ring once, rotates it with a compare-and-set and drops retired keys', async () => {
      const { keys } = s.stores;
      assert.deepEqual(await keys.listSigningKeys(), []);
      assert.equal(await keys.initSigningKeys([key('k1', 'current'), key('k2', 'next', T0 + 1)]), true);
      assert.equal(await keys.initSigningKeys([key('kx', 'current')]), false);
      assert.deepEqual(
        (await keys.listSigningKeys()).map((k) => k.kid),
        ['k1', 'k2'],
      );
      const fresh = `k-${randomId()}`;
      assert.equal(
        await keys.rotateSigningKeys(key(fresh, 'next', T0 + 2), 'not-current', T0 + 2, T0 + 1000),
        false,
      );
      assert.equal(await keys.rotateSigningKeys(key(fresh, 'next', T0 + 2), 'k1', T0 + 2, T0 + 1000), true);
      const after = await keys.listSigningKeys();
      const state = (kid: string) => after.find((k) => k.kid === kid);
      assert.equal(state('k1')?.state, 'retired');
      assert.equal(state('k1')?.retireUntil, T0 + 1000);
      assert.equal(state('k1')?.privateKeyEnc, '', 'a retired key keeps no private key');
      assert.deepEqual(state('k1')?.publicJwk, { kty: 'EC', kid: 'k1' }, 'it still verifies');
      assert.equal(state('k2')?.state, 'current');
      assert.equal(state('k2')?.privateKeyEnc, 'enc-k2');
      assert.equal(state(fresh)?.state, 'next');
      assert.equal(state(fresh)?.privateKeyEnc, `enc-${fresh}`);
      assert.deepEqual(state(fresh)?.publicJwk, { kty: 'EC', kid: fresh });
      assert.equal(await keys.deleteRetiredKeys(T0 + 999), 0);
      assert.equal(await keys.deleteRetiredKeys(T0 + 1000), 1);
      assert.equal(
        (await keys.listSigningKeys()).find((k) => k.kid === 'k1'),
        undefined,
      );
    });

    it('rotates once when two rotations race from the same current key', async () => {
      const { keys } = s.stores;
      const current = (await keys.listSigningKeys()).find((k) => k.state === 'current')!.kid;
      const results = await Promise.all(
        Array.from({ length: 5 }, () =>
          keys.rotateSigningKeys(key(`k-${randomId()}`, 'next', T0 + 3), current, T0 + 3, T0 + 2000),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const ring = await keys.listSigningKeys();
      assert.equal(ring.filter((k) => k.state === 'current').length, 1);
      assert.equal(ring.filter((k) => k.state === 'next').length, 1);
    });
  });
}
