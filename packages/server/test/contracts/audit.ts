// The AuditLog contract: append-only, newest first, filtered by user and type.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomId } from '../../src/util/crypto.js';
import { type Open, opened } from './fixtures.js';
import { T0 } from './records.js';

export function auditLogContract(name: string, open: Open<'audit'>, options: { skip?: string } = {}): void {
  describe(`AuditLog contract: ${name}`, { skip: options.skip }, () => {
    const s = opened(open);

    it('keeps events newest first, filtered by user and type, paged by seq', async () => {
      const { audit } = s.stores;
      const u = `audit-user-${randomId()}`;
      const base = { at: T0, sessionId: 'sid-1', ip: '127.0.0.1', userAgent: 'ua', detail: null };
      await audit.appendAuditEvent({ ...base, type: 'login_failed', userId: u, detail: 'wrong password' });
      await audit.appendAuditEvent({ ...base, type: 'login_ok', userId: u, at: T0 + 1 });
      await audit.appendAuditEvent({ ...base, type: 'login_ok', userId: `other-${u}`, at: T0 + 2 });
      await audit.appendAuditEvent({ ...base, type: 'logout', userId: u, at: T0 + 3 });
      const mine = await audit.listAuditEvents({ userId: u, limit: 10 });
      assert.deepEqual(
        mine.map((e) => e.type),
        ['logout', 'login_ok', 'login_failed'],
      );
      assert.ok(mine[0]!.seq > mine[1]!.seq && mine[1]!.seq > mine[2]!.seq);
      assert.deepEqual(mine[2], {
        ...base,
        seq: mine[2]!.seq,
        type: 'login_failed',
        userId: u,
        detail: 'wrong password',
      });
      assert.deepEqual(
        (await audit.listAuditEvents({ userId: u, type: 'login_ok', limit: 10 })).map((e) => e.at),
        [T0 + 1],
      );
      assert.equal((await audit.listAuditEvents({ userId: u, limit: 1 })).length, 1);
      assert.deepEqual(
        (await audit.listAuditEvents({ userId: u, beforeSeq: mine[0]!.seq, limit: 10 })).map((e) => e.type),
        ['login_ok', 'login_failed'],
      );
      assert.ok((await audit.listAuditEvents({ limit: 100 })).some((e) => e.userId === `other-${u}`));
    });

    it('keeps events without a user or session, and null fields as null', async () => {
      const { audit } = s.stores;
      const detail = `kid-${randomId()}`;
      await audit.appendAuditEvent({
        at: T0,
        type: 'key_rotation',
        userId: null,
        sessionId: null,
        ip: null,
        userAgent: null,
        detail,
      });
      const [e] = await audit.listAuditEvents({ type: 'key_rotation', limit: 1 });
      assert.deepEqual(e, {
        seq: e!.seq,
        at: T0,
        type: 'key_rotation',
        userId: null,
        sessionId: null,
        ip: null,
        userAgent: null,
        detail,
      });
    });
  });
}
