import type { MailOutbox } from './ports.js';
import { type Row, toQueuedMail } from './rows.js';
import type { SqliteDatabase } from './sqlite-common.js';
import type { NewQueuedMail, QueuedMail } from './types.js';

/** The mail queue in the embedded database, beside the users. */
export class SqliteMailOutbox implements MailOutbox {
  constructor(private readonly sql: SqliteDatabase) {}

  queueMail(m: NewQueuedMail): Promise<void> {
    return this.sql.run(() => {
      this.sql
        .q(
          `INSERT INTO mail_queue (id, sealed, queued_at, attempts, next_attempt_at)
           VALUES (?, ?, ?, 0, ?)`,
        )
        .run(m.id, m.sealed, m.queuedAt, m.queuedAt);
    });
  }

  claimMail(lease: string, now: number, leaseUntil: number, limit: number): Promise<QueuedMail[]> {
    return this.sql.run(() =>
      (
        this.sql
          .q(
            `UPDATE mail_queue SET lease = ?, lease_until = ?
             WHERE seq IN (
               SELECT seq FROM mail_queue
               WHERE next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
               ORDER BY seq LIMIT ?)
             RETURNING *`,
          )
          .all(lease, leaseUntil, now, now, limit) as Row[]
      )
        .sort((a, b) => (a.seq as number) - (b.seq as number))
        .map(toQueuedMail),
    );
  }

  deleteMail(id: string, lease: string): Promise<boolean> {
    return this.sql.run(
      () => this.sql.q('DELETE FROM mail_queue WHERE id = ? AND lease = ?').run(id, lease).changes === 1,
    );
  }

  retryMail(id: string, lease: string, nextAttemptAt: number): Promise<boolean> {
    return this.sql.run(
      () =>
        this.sql
          .q(
            `UPDATE mail_queue SET attempts = attempts + 1, next_attempt_at = ?, lease = NULL, lease_until = NULL
             WHERE id = ? AND lease = ?`,
          )
          .run(nextAttemptAt, id, lease).changes === 1,
    );
  }

  countMail(): Promise<{ queued: number; retrying: number }> {
    return this.sql.run(() => {
      const r = this.sql
        .q('SELECT count(*) AS queued, count(*) FILTER (WHERE attempts > 0) AS retrying FROM mail_queue')
        .get() as { queued: number; retrying: number };
      return { queued: r.queued, retrying: r.retrying };
    });
  }
}
