// The RevocationLog contract: the feed's append-only log with its cursor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Open, opened } from './fixtures.js';

export function revocationLogContract(
  name: string,
  open: Open<'revocations'>,
  options: { skip?: string } = {},
): void {
  describe(`RevocationLog contract: ${name}`, { skip: options.skip }, () => {
    const s = opened(open);

    it('appends with increasing cursors, lists after a cursor and prunes expired entries', async () => {
      const { revocations: log } = s.stores;
      const now = 1_900_000_000;
      const [a, b] = await log.appendRevocations([
        { sid: 'sid-a', sub: null, notBefore: null, expiresAt: now + 10, reason: 'logout' },
        { sid: null, sub: 'user-b', notBefore: now - 1, expiresAt: now + 1000, reason: 'logout_all' },
      ]);
      assert.ok(a && b && b.seq > a.seq);
      assert.deepEqual(a, {
        seq: a.seq,
        sid: 'sid-a',
        sub: null,
        notBefore: null,
        expiresAt: now + 10,
        reason: 'logout',
      });
      assert.equal(b.sub, 'user-b');
      assert.equal(b.notBefore, now - 1);
      assert.deepEqual(await log.appendRevocations([]), []);
      assert.deepEqual((await log.listRevocations(a.seq, now, 100))[0], b);
      assert.deepEqual((await log.listRevocations(a.seq - 1, now, 100)).slice(0, 2), [a, b]);
      assert.deepEqual((await log.listRevocations(a.seq - 1, now, 1)).length, 1);
      assert.deepEqual(
        await log.listRevocations(a.seq - 1, now + 10, 100).then((l) => l[0]),
        b,
        'expired entries are not listed',
      );
      assert.ok((await log.pruneRevocations(now + 10)) >= 1);
      assert.equal(
        (await log.listRevocations(a.seq - 1, now, 100)).find((e) => e.seq === a.seq),
        undefined,
      );
    });

    it('gives concurrent appends distinct cursors, each listed once, in order', async () => {
      const { revocations: log } = s.stores;
      const now = 1_900_000_000;
      const start = (await log.listRevocations(0, now, 100_000)).at(-1)?.seq ?? 0;
      const batches = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          log.appendRevocations([
            { sid: `race-${i}-a`, sub: null, notBefore: null, expiresAt: now + 100, reason: 'logout' },
            { sid: `race-${i}-b`, sub: null, notBefore: null, expiresAt: now + 100, reason: 'logout' },
          ]),
        ),
      );
      const seqs = batches.flat().map((e) => e.seq);
      assert.equal(new Set(seqs).size, 20);
      for (const batch of batches) assert.ok(batch[0]!.seq < batch[1]!.seq, 'a batch keeps its order');
      const listed = await log.listRevocations(start, now, 100_000);
      assert.deepEqual(
        listed.map((e) => e.seq),
        [...seqs].sort((x, y) => x - y),
      );
    });
  });
}
