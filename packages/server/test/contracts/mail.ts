// The MailOutbox contract, for every backend that holds users: mails wait in order, each claimed
// by one lease at a time, retried when due, and gone once sent.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { MailOutbox } from '../../src/store/ports.js';
import type { NewQueuedMail } from '../../src/store/types.js';
import { randomId } from '../../src/util/crypto.js';
import { type Open, opened } from './fixtures.js';
import { T0 } from './records.js';

const MINUTE = 60_000;

function mail(queuedAt = T0): NewQueuedMail {
  return { id: randomId(), sealed: `v1.sealed.${randomId()}`, queuedAt };
}

/** Takes every mail out, whoever leases it, so each case starts from an empty queue. */
async function drain(outbox: MailOutbox): Promise<void> {
  const far = T0 + 1000 * 24 * 60 * MINUTE;
  for (const m of await outbox.claimMail('drain', far, far + MINUTE, 10_000))
    await outbox.deleteMail(m.id, 'drain');
}

export function mailOutboxContract(name: string, open: Open<'mail'>, options: { skip?: string } = {}): void {
  describe(`MailOutbox contract: ${name}`, { skip: options.skip }, () => {
    const s = opened(open);
    afterEach(() => drain(s.stores.mail));

    it('claims due mails oldest first, each with the lease, and none again while the lease lasts', async () => {
      const { mail: outbox } = s.stores;
      const first = mail(T0);
      const second = mail(T0);
      const later = mail(T0 + 5 * MINUTE);
      for (const m of [first, second, later]) await outbox.queueMail(m);
      assert.deepEqual(await outbox.countMail(), { queued: 3, retrying: 0 });

      const claimed = await outbox.claimMail('lease-a', T0 + MINUTE, T0 + 3 * MINUTE, 10);
      assert.deepEqual(
        claimed,
        [first, second].map((m) => ({
          ...m,
          attempts: 0,
          nextAttemptAt: m.queuedAt,
          lease: 'lease-a',
          leaseUntil: T0 + 3 * MINUTE,
        })),
        'queue order; a mail queued later is not due yet',
      );
      assert.deepEqual(await outbox.claimMail('lease-b', T0 + 2 * MINUTE, T0 + 9 * MINUTE, 10), []);
      // Once the lease has ended (its holder stopped mid-send), another claim takes the mails.
      const again = await outbox.claimMail('lease-b', T0 + 6 * MINUTE, T0 + 9 * MINUTE, 1);
      assert.deepEqual(
        again.map((m) => [m.id, m.lease]),
        [[first.id, 'lease-b']],
        'limit',
      );
      assert.deepEqual(await outbox.countMail(), { queued: 3, retrying: 0 }, 'claims remove nothing');
    });

    it('deletes and retries a mail only for the lease that holds it', async () => {
      const { mail: outbox } = s.stores;
      const m = mail();
      await outbox.queueMail(m);
      const [held] = await outbox.claimMail('lease-a', T0, T0 + MINUTE, 10);
      assert.equal(held?.id, m.id);
      assert.equal(await outbox.deleteMail(m.id, 'lease-b'), false);
      assert.equal(await outbox.retryMail(m.id, 'lease-b', T0), false);
      assert.deepEqual(await outbox.countMail(), { queued: 1, retrying: 0 });

      // A failed attempt: counted, free again, due at the time given and not before.
      assert.equal(await outbox.retryMail(m.id, 'lease-a', T0 + 10 * MINUTE), true);
      assert.deepEqual(await outbox.countMail(), { queued: 1, retrying: 1 });
      assert.equal(await outbox.deleteMail(m.id, 'lease-a'), false, 'the lease ended with the retry');
      assert.deepEqual(await outbox.claimMail('lease-c', T0 + 2 * MINUTE, T0 + 20 * MINUTE, 10), []);
      const [retried] = await outbox.claimMail('lease-c', T0 + 10 * MINUTE, T0 + 20 * MINUTE, 10);
      assert.deepEqual(retried, {
        ...m,
        attempts: 1,
        nextAttemptAt: T0 + 10 * MINUTE,
        lease: 'lease-c',
        leaseUntil: T0 + 20 * MINUTE,
      });
      assert.equal(await outbox.retryMail(m.id, 'lease-c', T0 + 30 * MINUTE), true);
      const [third] = await outbox.claimMail('lease-d', T0 + 30 * MINUTE, T0 + 40 * MINUTE, 10);
      assert.equal(third?.attempts, 2);

      assert.equal(await outbox.deleteMail(m.id, 'lease-d'), true, 'sent');
      assert.deepEqual(await outbox.countMail(), { queued: 0, retrying: 0 });
      assert.equal(await outbox.deleteMail(m.id, 'lease-d'), false, 'once');
      assert.deepEqual(await outbox.claimMail('lease-e', T0 + 60 * MINUTE, T0 + 70 * MINUTE, 10), []);
    });

    it('gives each mail to one of many claims made at once', async () => {
      const { mail: outbox } = s.stores;
      const queued = Array.from({ length: 30 }, (_, i) => mail(T0 + i));
      for (const m of queued) await outbox.queueMail(m);
      const claims = await Promise.all(
        Array.from({ length: 12 }, (_, i) => outbox.claimMail(`lease-${i}`, T0 + MINUTE, T0 + 5 * MINUTE, 4)),
      );
      const ids = claims.flat().map((m) => m.id);
      assert.equal(new Set(ids).size, ids.length, 'no mail claimed twice');
      assert.deepEqual(new Set(ids), new Set(queued.map((m) => m.id)), 'every mail claimed');
      claims.forEach((batch, i) => {
        for (const m of batch) assert.equal(m.lease, `lease-${i}`);
      });
    });
  });
}
