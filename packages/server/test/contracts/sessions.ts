// The contract every SessionStore backend passes: sessions, refresh-token families and the
// rotation compare-and-set.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type RotateRequest,
  refreshTokenId,
  SESSION_PRUNE_BATCH,
  type SessionStore,
  UNUSED_ONLY,
} from '../../src/store/ports.js';
import type { RefreshTokenRecord, SessionRecord, UserRecord } from '../../src/store/types.js';
import { randomId, sha256 } from '../../src/util/crypto.js';
import { refresh, session, sessionUser, T0, user } from './records.js';

export interface SessionsFixture {
  sessions: SessionStore;
  /** Makes the user exist where the backend keeps users beside sessions (SQL); a no-op elsewhere. */
  addUser(user: UserRecord): Promise<void>;
  close(): Promise<void>;
}

const GRACE = 10_000;
const IDLE = 600_000;

/**
 * The id of a token's successor: like every refresh token id, it begins with its session's id.
 * Its suffix is a hash, so it is never the token's own id (a suffix made of the token's own
 * characters was, once in 4,096 random ids).
 */
const successorId = (t: RefreshTokenRecord, generation = 1): string =>
  refreshTokenId(t.sessionId, sha256(`${t.id}/${generation}`));

export function sessionStoreContract(
  name: string,
  open: () => Promise<SessionsFixture>,
  options: { skip?: string | false; prunes?: boolean } = {},
): void {
  describe(`session store contract: ${name}`, { skip: options.skip || undefined }, () => {
    let fixture: SessionsFixture;
    let sessions: SessionStore;
    before(async () => {
      fixture = await open();
      sessions = fixture.sessions;
    });
    after(async () => {
      await fixture?.close();
    });

    async function newUser(overrides: Partial<UserRecord> = {}): Promise<UserRecord> {
      const u = user(overrides);
      await fixture.addUser(u);
      return u;
    }

    it('stores a session and reads it back live with its user in one call', async () => {
      const u = await newUser({ roles: ['user', 'admin'] });
      const s = session(u.id, { mode: 'session', secretHash: `h-${randomId()}` });
      await sessions.createSession(s, sessionUser(u));
      assert.deepEqual(await sessions.getSession(s.id), s);
      assert.deepEqual(await sessions.getLiveSession(s.id, T0 + 1), { session: s, user: sessionUser(u) });
      assert.equal(await sessions.getSession(`missing-${randomId()}`), null);
      assert.equal(await sessions.getLiveSession(`missing-${randomId()}`, T0), null);
    });

    it('is not live once revoked or past its idle or absolute end', async () => {
      const u = await newUser();
      const s = session(u.id, { mode: 'session', secretHash: 'h' });
      await sessions.createSession(s, sessionUser(u));
      assert.equal(await sessions.getLiveSession(s.id, s.idleExpiresAt), null, 'idle end');
      const long = session(u.id, { idleExpiresAt: T0 + 3_600_000 });
      await sessions.createSession(long, sessionUser(u));
      assert.notEqual(await sessions.getLiveSession(long.id, long.expiresAt - 1), null);
      assert.equal(await sessions.getLiveSession(long.id, long.expiresAt), null, 'absolute end');
      const ended = session(u.id);
      await sessions.createSession(ended, sessionUser(u));
      assert.equal(await sessions.revokeSession(ended.id, T0 + 1, 'logout'), true);
      assert.equal(await sessions.getLiveSession(ended.id, T0 + 2), null, 'revoked');
    });

    it('slides the idle end, never past the absolute end, and never revives a revoked session', async () => {
      const u = await newUser();
      const s = session(u.id, { mode: 'session', secretHash: 'h' });
      await sessions.createSession(s, sessionUser(u));
      await sessions.touchSession(s.id, T0 + 1000, T0 + 601_000);
      let got = await sessions.getSession(s.id);
      assert.equal(got?.lastSeenAt, T0 + 1000);
      assert.equal(got?.idleExpiresAt, T0 + 601_000);
      assert.notEqual(await sessions.getLiveSession(s.id, T0 + 600_500), null, 'live past the old idle end');
      await sessions.touchSession(s.id, T0 + 2000, T0 + 99_999_999);
      got = await sessions.getSession(s.id);
      assert.equal(got?.idleExpiresAt, s.expiresAt);
      await sessions.revokeSession(s.id, T0 + 3000, 'logout');
      await sessions.touchSession(s.id, T0 + 4000, T0 + 700_000);
      assert.equal((await sessions.getSession(s.id))?.revokedAt, T0 + 3000);
      assert.equal(await sessions.getLiveSession(s.id, T0 + 4001), null);
    });

    it('does not touch a session already past its idle end back to life', async () => {
      const u = await newUser();
      const s = session(u.id, { mode: 'session', secretHash: 'h' });
      await sessions.createSession(s, sessionUser(u));
      // An instance whose clock runs behind the session's idle end, or a touch that comes late.
      await sessions.touchSession(s.id, s.idleExpiresAt + 1, s.idleExpiresAt + 600_000);
      assert.equal(await sessions.getLiveSession(s.id, s.idleExpiresAt + 2), null);
      assert.equal((await sessions.getSession(s.id))?.idleExpiresAt, s.idleExpiresAt);
    });

    it('lists only live sessions of a user, newest first', async () => {
      const u = await newUser();
      const other = await newUser();
      const older = session(u.id, { createdAt: T0 });
      const newer = session(u.id, { createdAt: T0 + 10 });
      const idleGone = session(u.id, { idleExpiresAt: T0 + 5 });
      const revoked = session(u.id, { revokedAt: T0, revokeReason: 'x' });
      for (const s of [older, newer, idleGone, revoked]) await sessions.createSession(s, sessionUser(u));
      await sessions.createSession(session(other.id), sessionUser(other));
      assert.deepEqual(
        (await sessions.listSessions(u.id, T0 + 100)).map((s) => s.id),
        [newer.id, older.id],
      );
    });

    it('revokes one session once, and every session of a user but one', async () => {
      const u = await newUser();
      const [a, b, c] = [session(u.id), session(u.id), session(u.id)] as [
        SessionRecord,
        SessionRecord,
        SessionRecord,
      ];
      for (const s of [a, b, c]) await sessions.createSession(s, sessionUser(u));
      assert.equal(await sessions.revokeSession(a.id, T0 + 1, 'logout'), true);
      assert.equal(await sessions.revokeSession(a.id, T0 + 2, 'logout'), false);
      const got = await sessions.getSession(a.id);
      assert.equal(got?.revokedAt, T0 + 1);
      assert.equal(got?.revokeReason, 'logout');
      assert.deepEqual(await sessions.revokeUserSessions(u.id, T0 + 3, 'password_change', c.id), [b.id]);
      assert.equal((await sessions.getSession(b.id))?.revokeReason, 'password_change');
      assert.deepEqual(
        (await sessions.listSessions(u.id, T0 + 4)).map((s) => s.id),
        [c.id],
      );
      assert.deepEqual(await sessions.revokeUserSessions(u.id, T0 + 5, 'logout_all'), [c.id]);
      assert.deepEqual(await sessions.revokeUserSessions(u.id, T0 + 6, 'logout_all'), []);
    });

    describe('refresh-token families', () => {
      async function family(
        overrides: Partial<SessionRecord> = {},
      ): Promise<{ u: UserRecord; s: SessionRecord; t: RefreshTokenRecord }> {
        const u = await newUser();
        const s = session(u.id, overrides);
        const t = refresh(s.id, { expiresAt: s.idleExpiresAt });
        await sessions.createSession(s, sessionUser(u), t);
        return { u, s, t };
      }

      function rotation(
        t: RefreshTokenRecord,
        now: number,
        overrides: Partial<RotateRequest> = {},
      ): RotateRequest {
        return {
          id: t.id,
          secretHash: t.secretHash,
          successorId: successorId(t),
          successorSecretHash: `succ-${t.secretHash}`,
          now,
          graceMs: GRACE,
          idleTtlMs: IDLE,
          ...overrides,
        };
      }

      it('finds the session of a refresh token without using the token', async () => {
        const { s, t } = await family();
        assert.deepEqual(await sessions.sessionOfRefreshToken(t.id, t.secretHash, T0 + 1, GRACE), s);
        assert.equal(await sessions.sessionOfRefreshToken(t.id, 'wrong-hash', T0 + 1, GRACE), null);
        assert.equal(
          await sessions.sessionOfRefreshToken(`missing-${randomId()}`, t.secretHash, T0, GRACE),
          null,
        );
        assert.equal(
          await sessions.sessionOfRefreshToken(t.id, t.secretHash, t.expiresAt, GRACE),
          null,
          'expired',
        );
        // still unused: it rotates
        assert.equal((await sessions.rotateRefreshToken(rotation(t, T0 + 2))).outcome, 'rotated');
        await sessions.revokeSession(s.id, T0 + 3, 'logout');
        assert.equal(
          await sessions.sessionOfRefreshToken(successorId(t), `succ-${t.secretHash}`, T0 + 4, GRACE),
          null,
          'the session is over',
        );
      });

      it('takes a spent refresh token for its session only within the grace window', async () => {
        const { s, t } = await family();
        const usedAt = T0 + 1000;
        assert.equal((await sessions.rotateRefreshToken(rotation(t, usedAt))).outcome, 'rotated');
        const honoured = await sessions.sessionOfRefreshToken(t.id, t.secretHash, usedAt + GRACE, GRACE);
        assert.equal(honoured?.id, s.id, 'a retry within the grace window');
        assert.equal(
          await sessions.sessionOfRefreshToken(t.id, t.secretHash, usedAt + GRACE + 1, GRACE),
          null,
          'spent: no credential for a CSRF token, a logout or a provider link',
        );
        assert.equal(
          await sessions.sessionOfRefreshToken(t.id, t.secretHash, usedAt + 1, 0),
          null,
          'no grace window',
        );
        for (const at of [usedAt, usedAt - 1000]) {
          assert.equal(
            await sessions.sessionOfRefreshToken(t.id, t.secretHash, at, UNUSED_ONLY),
            null,
            'unused only: not even a token used this very millisecond, or by a clock ahead of this one',
          );
        }
        const next = await sessions.sessionOfRefreshToken(
          successorId(t),
          `succ-${t.secretHash}`,
          usedAt + GRACE + 1,
          GRACE,
        );
        assert.equal(next?.id, s.id, 'its successor stands for the session');
      });

      it('does not take an unused refresh token past its own expiry', async () => {
        const u = await newUser();
        const s = session(u.id);
        const t = refresh(s.id, { expiresAt: T0 + 5000 });
        await sessions.createSession(s, sessionUser(u), t);
        assert.equal((await sessions.sessionOfRefreshToken(t.id, t.secretHash, T0 + 4999, GRACE))?.id, s.id);
        assert.notEqual(await sessions.getLiveSession(s.id, T0 + 5000), null, 'the session lives on');
        assert.equal(await sessions.sessionOfRefreshToken(t.id, t.secretHash, T0 + 5000, GRACE), null);
      });

      it('rotates once, answering with the slid session, its user and the successor expiry', async () => {
        const { u, s, t } = await family();
        const now = T0 + 60_000;
        const result = await sessions.rotateRefreshToken(rotation(t, now));
        assert.deepEqual(result, {
          outcome: 'rotated',
          session: { ...s, lastSeenAt: now, idleExpiresAt: now + IDLE },
          user: sessionUser(u),
          successorExpiresAt: now + IDLE,
        });
        assert.equal((await sessions.getSession(s.id))?.idleExpiresAt, now + IDLE);
        // the successor is a refresh token of the same family
        assert.deepEqual(
          await sessions.sessionOfRefreshToken(successorId(t), `succ-${t.secretHash}`, now, GRACE),
          {
            ...s,
            lastSeenAt: now,
            idleExpiresAt: now + IDLE,
          },
        );
        const second = await sessions.rotateRefreshToken(
          rotation(t, now + 1000, {
            id: successorId(t),
            secretHash: `succ-${t.secretHash}`,
            successorId: successorId(t, 2),
            successorSecretHash: `succ2-${t.secretHash}`,
          }),
        );
        assert.equal(second.outcome, 'rotated');
      });

      it('never slides a family past the session’s absolute end', async () => {
        const { s, t } = await family({ expiresAt: T0 + 700_000 });
        const now = T0 + 300_000;
        const result = await sessions.rotateRefreshToken(rotation(t, now));
        assert.equal(result.outcome, 'rotated');
        assert.equal(result.outcome === 'rotated' && result.successorExpiresAt, s.expiresAt);
        assert.equal(result.outcome === 'rotated' && result.session.idleExpiresAt, s.expiresAt);
      });

      it('treats a repeat within the grace window as reuse once the successor is spent too', async () => {
        // The holder of a stolen spent token must not walk the chain to the live one.
        const { u, s, t } = await family();
        assert.equal((await sessions.rotateRefreshToken(rotation(t, T0 + 10))).outcome, 'rotated');
        const next = rotation(t, T0 + 20, {
          id: successorId(t),
          secretHash: `succ-${t.secretHash}`,
          successorId: successorId(t, 2),
          successorSecretHash: `succ2-${t.secretHash}`,
        });
        assert.equal((await sessions.rotateRefreshToken(next)).outcome, 'rotated');
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(t, T0 + 30)), {
          outcome: 'reused',
          sessionId: s.id,
          userId: u.id,
        });
        assert.equal((await sessions.getSession(s.id))?.revokeReason, 'refresh_reuse');
        const third = rotation(t, T0 + 40, {
          id: successorId(t, 2),
          secretHash: `succ2-${t.secretHash}`,
          successorId: successorId(t, 3),
          successorSecretHash: 'x',
        });
        assert.deepEqual(
          await sessions.rotateRefreshToken(third),
          { outcome: 'invalid' },
          'the live token ended with it',
        );
      });

      it('answers a repeat within the grace window with the same successor, and a late one ends the session', async () => {
        const { u, s, t } = await family();
        const first = await sessions.rotateRefreshToken(rotation(t, T0 + 10));
        assert.equal(first.outcome, 'rotated');
        const repeat = await sessions.rotateRefreshToken(rotation(t, T0 + 5000));
        assert.equal(repeat.outcome, 'grace');
        assert.equal(
          repeat.outcome === 'grace' && repeat.successorExpiresAt,
          first.outcome === 'rotated' && first.successorExpiresAt,
        );
        assert.equal(repeat.outcome === 'grace' && repeat.session.id, s.id);
        assert.deepEqual(repeat.outcome === 'grace' && repeat.user, sessionUser(u));
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(t, T0 + 10 + GRACE + 1)), {
          outcome: 'reused',
          sessionId: s.id,
          userId: u.id,
        });
        const ended = await sessions.getSession(s.id);
        assert.notEqual(ended?.revokedAt, null);
        assert.equal(ended?.revokeReason, 'refresh_reuse');
        // the whole family is dead: the successor no longer rotates
        assert.deepEqual(
          await sessions.rotateRefreshToken(
            rotation(t, T0 + GRACE + 20, {
              id: successorId(t),
              secretHash: `succ-${t.secretHash}`,
              successorId: successorId(t, 2),
              successorSecretHash: 'x',
            }),
          ),
          { outcome: 'invalid' },
        );
      });

      it('ends the session when a spent token comes back after its own expiry, the family still live', async () => {
        // The thief rotated first and keeps the chain sliding; the owner comes back with the old
        // token after it expired. That is reuse: the session ends.
        const { u, s, t } = await family({ expiresAt: T0 + 10 * IDLE });
        const first = await sessions.rotateRefreshToken(rotation(t, T0 + IDLE / 2));
        assert.equal(first.outcome, 'rotated');
        const next = {
          id: successorId(t),
          secretHash: `succ-${t.secretHash}`,
          successorId: successorId(t, 2),
        };
        assert.equal((await sessions.rotateRefreshToken(rotation(t, T0 + IDLE, next))).outcome, 'rotated');
        const late = T0 + IDLE + IDLE / 2; // past t's own expiry, within the successor's
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(t, late)), {
          outcome: 'reused',
          sessionId: s.id,
          userId: u.id,
        });
        assert.equal((await sessions.getSession(s.id))?.revokeReason, 'refresh_reuse');
      });

      it('refuses a wrong secret without using the token or ending the session', async () => {
        const { s, t } = await family();
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(t, T0 + 1, { secretHash: 'forged' })), {
          outcome: 'invalid',
        });
        assert.equal((await sessions.rotateRefreshToken(rotation(t, T0 + 2))).outcome, 'rotated');
        // a used token presented with a wrong secret, late: still only invalid, the session lives
        assert.deepEqual(
          await sessions.rotateRefreshToken(rotation(t, T0 + GRACE + 100, { secretHash: 'forged' })),
          { outcome: 'invalid' },
        );
        assert.equal((await sessions.getSession(s.id))?.revokedAt, null);
      });

      it('refuses unknown and expired tokens and tokens of an ended session', async () => {
        const { t } = await family();
        assert.deepEqual(
          await sessions.rotateRefreshToken(rotation(t, T0, { id: `missing-${randomId()}` })),
          {
            outcome: 'invalid',
          },
        );
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(t, t.expiresAt)), { outcome: 'invalid' });
        assert.equal(
          await sessions.sessionOfRefreshToken(successorId(t), `succ-${t.secretHash}`, T0, GRACE),
          null,
        );
        const other = await family();
        await sessions.revokeSession(other.s.id, T0 + 1, 'logout');
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(other.t, T0 + 2)), {
          outcome: 'invalid',
        });
        const ended = await family({ expiresAt: T0 + 1000, idleExpiresAt: T0 + 1000 });
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(ended.t, T0 + 1000)), {
          outcome: 'invalid',
        });
      });

      it('lets exactly one of 50 concurrent rotations win; the rest are grace repeats', async () => {
        const { s, t } = await family();
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => sessions.rotateRefreshToken(rotation(t, T0 + 100 + i))),
        );
        assert.equal(results.filter((r) => r.outcome === 'rotated').length, 1);
        assert.equal(results.filter((r) => r.outcome === 'grace').length, 49);
        assert.equal((await sessions.getSession(s.id))?.revokedAt, null);
      });

      it('ends every family of a user with revokeUserSessions', async () => {
        const a = await family();
        const b = await family();
        await sessions.revokeUserSessions(a.u.id, T0 + 1, 'logout_all');
        assert.deepEqual(await sessions.rotateRefreshToken(rotation(a.t, T0 + 2)), { outcome: 'invalid' });
        assert.equal((await sessions.rotateRefreshToken(rotation(b.t, T0 + 2))).outcome, 'rotated');
      });
    });
    // Stores whose entries expire by themselves (Redis) have nothing to prune.
    if (options.prunes !== false) {
      /** A token-mode session of `u` with its first refresh token; times default around `base`. */
      async function family(u: UserRecord, base: number, overrides: Partial<SessionRecord>) {
        const s = session(u.id, { createdAt: base, lastSeenAt: base, ...overrides });
        const t = refresh(s.id, { createdAt: base, expiresAt: s.idleExpiresAt });
        await sessions.createSession(s, sessionUser(u), t);
        return { s, t };
      }

      it('deletes the sessions that ended before the cut, with their refresh tokens, and no other', async () => {
        // Long before any other test's sessions, so only this test's can have ended before the cut.
        const base = T0 - 10 * 365 * 86_400_000;
        const cut = base + 10_000;
        const u = user();
        await fixture.addUser(u);
        const open = { expiresAt: base + 3_600_000, idleExpiresAt: base + 600_000 };
        const revokedBefore = await family(u, base, open);
        assert.equal(await sessions.revokeSession(revokedBefore.s.id, base + 1_000, 'logout'), true);
        const idleBefore = await family(u, base, { ...open, idleExpiresAt: base + 5_000 });
        const absoluteBefore = await family(u, base, {
          expiresAt: base + 9_000,
          idleExpiresAt: base + 9_000,
        });
        const revokedAfter = await family(u, base, open);
        assert.equal(await sessions.revokeSession(revokedAfter.s.id, cut + 1_000, 'logout'), true);
        const endsAtCut = await family(u, base, { ...open, idleExpiresAt: cut });
        const live = await family(u, base, { expiresAt: T0 + 3_600_000, idleExpiresAt: T0 + 600_000 });

        // The refresh tokens go first: with them left behind, the SQL stores' foreign keys refuse.
        assert.equal(await sessions.pruneSessions(cut), 3);
        for (const gone of [revokedBefore, idleBefore, absoluteBefore])
          assert.equal(await sessions.getSession(gone.s.id), null, 'an ended session is gone');
        for (const kept of [revokedAfter, endsAtCut, live])
          assert.deepEqual((await sessions.getSession(kept.s.id))?.id, kept.s.id, 'the others stay');
        const rotated = await sessions.rotateRefreshToken({
          id: live.t.id,
          secretHash: live.t.secretHash,
          successorId: successorId(live.t),
          successorSecretHash: `h-${randomId()}`,
          now: T0 + 1_000,
          graceMs: GRACE,
          idleTtlMs: IDLE,
        });
        assert.equal(rotated.outcome, 'rotated', 'a live family rotates as before');
        assert.equal(await sessions.pruneSessions(cut), 0, 'nothing left to prune');
      });

      it('goes on past one batch until every ended session is gone', async () => {
        const base = T0 - 20 * 365 * 86_400_000;
        const u = user();
        await fixture.addUser(u);
        const ended = { expiresAt: base + 1_000, idleExpiresAt: base + 1_000 };
        const ids: string[] = [];
        for (let i = 0; i < SESSION_PRUNE_BATCH + 3; i++) ids.push((await family(u, base, ended)).s.id);
        assert.equal(await sessions.pruneSessions(base + 2_000), SESSION_PRUNE_BATCH + 3);
        assert.equal(await sessions.getSession(ids[0]!), null);
        assert.equal(await sessions.getSession(ids.at(-1)!), null);
      });
    }
  });
}
