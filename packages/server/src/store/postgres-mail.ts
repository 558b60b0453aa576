import type { PgDatabase } from './pg.js';
import type { MailOutbox } from './ports.js';
import { toQueuedMail } from './rows.js';
import type { NewQueuedMail, QueuedMail } from './types.js';

/**
 * The mail queue in PostgreSQL, drained by every instance. A claim is one statement that locks
 * the due rows it takes and skips rows another claim has locked (`FOR UPDATE SKIP LOCKED`), and
 * the lease it writes keeps them from every later claim until it ends: no mail goes to two.
 */
export class PostgresMailOutbox implements MailOutbox {
  constructor(private readonly db: PgDatabase) {}

  async queueMail(m: NewQueuedMail): Promise<void> {
    await this.db.q(
      `INSERT INTO mail_queue (id, sealed, queued_at, attempts, next_attempt_at) VALUES ($1, $2, $3, 0, $3)`,
      [m.id, m.sealed, m.queuedAt],
    );
  }

  async claimMail(lease: string, now: number, leaseUntil: number, limit: number): Promise<QueuedMail[]> {
    const rows = await this.db.q(
      `UPDATE mail_queue m SET lease = $1, lease_until = $2
       FROM (
         SELECT seq FROM mail_queue
         WHERE next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
         ORDER BY seq LIMIT $4
         FOR UPDATE SKIP LOCKED
       ) due
       WHERE m.seq = due.seq
       RETURNING m.*`,
      [lease, leaseUntil, now, limit],
    );
    return rows.sort((a, b) => (a.seq as number) - (b.seq as number)).map(toQueuedMail);
  }

  async deleteMail(id: string, lease: string): Promise<boolean> {
    return (await this.db.count('DELETE FROM mail_queue WHERE id = $1 AND lease = $2', [id, lease])) === 1;
  }

  async retryMail(id: string, lease: string, nextAttemptAt: number): Promise<boolean> {
    return (
      (await this.db.count(
        `UPDATE mail_queue SET attempts = attempts + 1, next_attempt_at = $3, lease = NULL, lease_until = NULL
         WHERE id = $1 AND lease = $2`,
        [id, lease, nextAttemptAt],
      )) === 1
    );
  }

  async countMail(): Promise<{ queued: number; retrying: number }> {
    const [r] = await this.db.q(
      'SELECT count(*) AS queued, count(*) FILTER (WHERE attempts > 0) AS retrying FROM mail_queue',
    );
    return { queued: Number(r?.queued ?? 0), retrying: Number(r?.retrying ?? 0) };
  }
}
