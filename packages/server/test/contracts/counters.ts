// The contract every Counters backend passes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Counters } from '../../src/store/ports.js';
import { randomId } from '../../src/util/crypto.js';
import { T0 } from './records.js';

export interface CountersFixture {
  counters: Counters;
  close(): Promise<void>;
}

export function countersContract(
  name: string,
  open: () => Promise<CountersFixture>,
  options: { skip?: string | false } = {},
): void {
  describe(`counters contract: ${name}`, { skip: options.skip || undefined }, () => {
    let fixture: CountersFixture;
    let counters: Counters;
    before(async () => {
      fixture = await open();
      counters = fixture.counters;
    });
    after(async () => {
      await fixture?.close();
    });

    it('counts hits in a window that starts at the first hit', async () => {
      const k = `ctr-${randomId()}`;
      assert.equal(await counters.hitCounter(k, 1000, T0), 1);
      assert.equal(await counters.hitCounter(k, 1000, T0 + 10), 2);
      assert.equal(await counters.getCounter(k, T0 + 20), 2);
      assert.equal(await counters.getCounter(k, T0 + 1000), 0, 'the window is over');
      assert.equal(await counters.hitCounter(k, 1000, T0 + 1000), 1, 'a new window starts over');
      await counters.resetCounter(k);
      assert.equal(await counters.getCounter(k, T0 + 1001), 0);
      assert.equal(await counters.getCounter(`never-${k}`, T0), 0);
    });

    it('gives every one of 20 concurrent hits its own count', async () => {
      const k = `ctr-${randomId()}`;
      const counts = await Promise.all(Array.from({ length: 20 }, () => counters.hitCounter(k, 60_000, T0)));
      assert.deepEqual(
        [...counts].sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    });

    it('gives a reservation back with -1, never below 0, atomically under concurrency', async () => {
      const k = `res-${randomId()}`;
      assert.equal(await counters.hitCounter(k, 60_000, T0), 1);
      assert.equal(await counters.hitCounter(k, 60_000, T0, -1), 0);
      assert.equal(await counters.hitCounter(k, 60_000, T0, -1), 0, 'never below 0');
      assert.equal(await counters.hitCounter(`${k}-new`, 60_000, T0, -1), 0, 'a release on no counter');
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => counters.hitCounter(k, 60_000, T0, i % 3 === 0 ? -1 : 1)),
      );
      const n = await counters.getCounter(k, T0);
      assert.ok(n >= 10 && n <= 20, `30 concurrent steps (+20, -10) ended at ${n}`);
      assert.equal(await counters.hitCounter(k, 60_000, T0 + 60_000, -1), 0, 'a release in a new window');
    });

    it('keeps locks until their end and never shortens one', async () => {
      const k = `lock-${randomId()}`;
      assert.equal(await counters.getLock(k, T0), 0);
      await counters.setLock(k, T0 + 500);
      assert.equal(await counters.getLock(k, T0), T0 + 500);
      await counters.setLock(k, T0 + 100);
      assert.equal(await counters.getLock(k, T0), T0 + 500, 'a lock is never shortened');
      await counters.setLock(k, T0 + 900);
      assert.equal(await counters.getLock(k, T0), T0 + 900, 'a longer lock extends it');
      assert.equal(await counters.getLock(k, T0 + 900), 0, 'over at its end');
    });
  });
}
