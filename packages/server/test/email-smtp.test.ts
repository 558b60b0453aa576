// Email identity and recovery end to end, over a real SMTP server started here: sign-up and
// verification, forgotten passwords (old sessions dead, at an API server too, through the feed),
// email changes with their undo, notices, and the attacks: reused, expired and foreign links,
// enumeration by answer, a flood of reset requests, and a mail server that is down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createClient } from '@tessera/client';
import { type ApiServer, startApiServer } from '../../../examples/api/server.js';
import type { Config } from '../src/config.js';
import {
  type Answer,
  call,
  freePort,
  PASSWORD,
  startTestServer,
  type TestServer,
  uniqueName,
} from './helpers.js';
import { codeIn, linkToken, type ReceivedMail, startSmtp, type TestSmtp } from './mail.js';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const FROM = 'Acme Accounts <accounts@acme.test>';

async function mailServer(smtp: TestSmtp, overrides: Partial<Config> = {}): Promise<TestServer> {
  return startTestServer({ smtpUrl: smtp.url, mailFrom: FROM, productName: 'Acme', ...overrides });
}

async function signUp(srv: TestServer, smtp: TestSmtp, options: { verify?: boolean } = {}) {
  const username = uniqueName('mail');
  const email = `${username}@Example.test`.toLowerCase();
  const reg = await call(srv.url, 'POST', '/auth/register', {
    body: { username, password: PASSWORD, email: `${username}@Example.TEST` },
  });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const mail = await smtp.waitFor(email, /Confirm your email address/);
  if (options.verify !== false) {
    const verified = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(mail, 'verify-email') },
    });
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
  }
  return { username, email, mail, id: reg.body.user.id as string };
}

async function login(
  srv: TestServer,
  name: string,
  password = PASSWORD,
  headers: Record<string, string> = {},
) {
  return call(srv.url, 'POST', '/auth/login', {
    body: { username: name, password, mode: 'token', delivery: 'header' },
    headers,
  });
}

async function forgot(srv: TestServer, email: string): Promise<Answer> {
  return call(srv.url, 'POST', '/auth/password/forgot', { body: { email } });
}

describe('email over SMTP: sign up, verify, forget, reset, change', () => {
  let smtp: TestSmtp;
  let srv: TestServer;
  let api: ApiServer;

  before(async () => {
    smtp = await startSmtp();
    srv = await mailServer(smtp, { passwordResetPerAddressPerHour: 3, passwordResetPerIpPerHour: 100 });
    const apiPort = await freePort();
    api = await startApiServer({
      issuer: srv.url,
      port: apiPort,
      publicUrl: `http://127.0.0.1:${apiPort}`,
      revocationFeed: { maxStalenessSeconds: 5 },
    });
  });
  after(async () => {
    await api?.close();
    await srv?.close();
    await smtp?.stop();
  });

  it('signs up with an address, mails a link and a code from the configured sender, verifies by link', async () => {
    const { email, mail, id, username } = await signUp(srv, smtp);
    assert.equal(mail.from, 'accounts@acme.test');
    assert.match(mail.subject, /Acme/);
    assert.match(mail.text, /Or enter this code: \d{6}/);
    assert.ok(mail.html.includes('verify-email?token='), 'the HTML part has the link');
    assert.ok(linkToken(mail, 'verify-email').length >= 32);
    // Sign in with the address, in any case.
    const byEmail = await login(srv, email.toUpperCase());
    assert.equal(byEmail.status, 200, JSON.stringify(byEmail.body));
    const me = await call(srv.url, 'GET', '/auth/me', { headers: bearer(byEmail.body.access_token) });
    assert.equal(me.body.user.username, username);
    const events = await srv.app.stores.audit.listAuditEvents({ userId: id, limit: 20 });
    assert.ok(events.some((e) => e.type === 'email_verification_sent'));
    assert.ok(events.some((e) => e.type === 'email_verified'));
  });

  it('GET /auth/email answers the stored address: verified, not yet verified, none; 401 signed out', async () => {
    const address = (token?: string) =>
      call(srv.url, 'GET', '/auth/email', token === undefined ? {} : { headers: bearer(token) });
    const verified = await signUp(srv, smtp);
    const asVerified = (await login(srv, verified.username)).body.access_token;
    const v = await address(asVerified);
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.headers.get('cache-control'), 'no-store');
    assert.deepEqual(v.body, { email: verified.email, email_verified: true });

    const pending = await signUp(srv, smtp, { verify: false });
    const p = await address((await login(srv, pending.username)).body.access_token);
    assert.deepEqual(p.body, { email: pending.email, email_verified: false });

    const username = uniqueName('noaddr');
    assert.equal(
      (await call(srv.url, 'POST', '/auth/register', { body: { username, password: PASSWORD } })).status,
      201,
    );
    const n = await address((await login(srv, username)).body.access_token);
    assert.deepEqual(n.body, { email: null, email_verified: false });

    const out = await address();
    assert.equal(out.status, 401);
    assert.equal(out.body.error, 'unauthorized');
    assert.equal((await address('not-a-token')).status, 401);

    // Read from the account, not the session: a confirmed change shows in the same session at once.
    const next = `${verified.username}.moved@example.test`;
    const change = await call(srv.url, 'POST', '/auth/email/change', {
      body: { email: next },
      headers: bearer(asVerified),
    });
    assert.equal(change.status, 202, JSON.stringify(change.body));
    const confirm = linkToken(await smtp.waitFor(next, /Confirm your new/), 'confirm-email');
    assert.equal(
      (await call(srv.url, 'POST', '/auth/email/verify', { body: { token: confirm } })).status,
      200,
    );
    assert.deepEqual((await address(asVerified)).body, { email: next, email_verified: true });
    const me = await call(srv.url, 'GET', '/auth/me', { headers: bearer(asVerified) });
    assert.deepEqual(
      Object.keys(me.body.user).sort(),
      ['id', 'roles', 'username'],
      '/auth/me carries no address',
    );
  });

  it('verifies by the short code, signed in as the account it was sent for only', async () => {
    const a = await signUp(srv, smtp, { verify: false });
    const b = await signUp(srv, smtp, { verify: false });
    const asB = bearer((await login(srv, b.username)).body.access_token);
    const foreign = await call(srv.url, 'POST', '/auth/email/verify/code', {
      body: { code: codeIn(a.mail) },
      headers: asB,
    });
    assert.equal(foreign.status, 400);
    assert.equal(foreign.body.error, 'invalid_email_token');
    const asA = bearer((await login(srv, a.username)).body.access_token);
    const ok = await call(srv.url, 'POST', '/auth/email/verify/code', {
      body: { code: codeIn(a.mail) },
      headers: asA,
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.user, { id: a.id, username: a.username, email: a.email, email_verified: true });
    assert.equal(ok.body.action, 'verified');
  });

  it('keeps one live code per account, and counts code tries per address across accounts', async () => {
    const a = await signUp(srv, smtp, { verify: false });
    const asA = bearer((await login(srv, a.username)).body.access_token);
    srv.clock.now += 1000;
    assert.equal(
      (await call(srv.url, 'POST', '/auth/email/verify/request', { body: {}, headers: asA })).status,
      202,
    );
    const second = await smtp.waitFor(a.email, /Confirm your email address/, 1);
    const code = (c: string, headers: Record<string, string>) =>
      call(srv.url, 'POST', '/auth/email/verify/code', { body: { code: c }, headers });
    const stale = await code(codeIn(a.mail), asA);
    assert.equal(stale.status, 400, 'the first code died with the second mail');
    assert.equal(stale.body.error, 'invalid_email_token');
    assert.equal((await code(codeIn(second), asA)).status, 200);

    // Accounts claiming one unverified address share its ten tries an hour.
    const shared = `${uniqueName('claimed')}@example.test`;
    const claimers: Record<string, string>[] = [];
    for (let i = 0; i < 2; i++) {
      const username = uniqueName('claimer');
      const reg = await call(srv.url, 'POST', '/auth/register', {
        body: { username, password: PASSWORD, email: shared },
      });
      assert.equal(reg.status, 201);
      claimers.push(bearer((await login(srv, username)).body.access_token));
    }
    for (let i = 0; i < 10; i++) assert.equal((await code('000000', claimers[0]!)).status, 400);
    const limited = await code('000000', claimers[1]!);
    assert.equal(limited.status, 429, 'the other account has no tries of its own for that address');
  });

  it('refuses a used link, an expired one and one for another purpose with invalid_email_token', async () => {
    const { mail } = await signUp(srv, smtp, { verify: false });
    const token = linkToken(mail, 'verify-email');
    const verify = (t: string) => call(srv.url, 'POST', '/auth/email/verify', { body: { token: t } });
    assert.equal((await verify(token)).status, 200);
    const reused = await verify(token);
    assert.equal(reused.status, 400);
    assert.equal(reused.body.error, 'invalid_email_token');

    const late = await signUp(srv, smtp, { verify: false });
    srv.clock.now += (srv.config.emailTokenTtl + 1) * 1000;
    try {
      const expired = await verify(linkToken(late.mail, 'verify-email'));
      assert.equal(expired.status, 400);
      assert.equal(expired.body.error, 'invalid_email_token');
    } finally {
      srv.clock.now -= (srv.config.emailTokenTtl + 1) * 1000;
    }

    const user = await signUp(srv, smtp);
    assert.equal((await forgot(srv, user.email)).status, 202);
    const resetToken = linkToken(await smtp.waitFor(user.email, /Reset your password/), 'reset-password');
    const crossed = await verify(resetToken);
    assert.equal(crossed.status, 400, 'a reset link is no verification link');
    assert.equal(crossed.body.error, 'invalid_email_token');
    const garbage = await call(srv.url, 'POST', '/auth/password/reset', {
      body: { token: `${resetToken}x`, password: 'another long passphrase' },
    });
    assert.equal(garbage.body.error, 'invalid_email_token');
  });

  it('resets a forgotten password once: every old session ends, at the API server too through the feed', async () => {
    const { email, username, id } = await signUp(srv, smtp);
    const tokenLogin = await login(srv, username);
    const sessionLogin = await call(srv.url, 'POST', '/auth/login', {
      body: { username, password: PASSWORD, mode: 'session', delivery: 'header' },
    });
    const access = tokenLogin.body.access_token as string;
    assert.equal((await call(api.url, 'GET', '/api/hello', { headers: bearer(access) })).status, 200);

    assert.equal((await forgot(srv, email)).status, 202);
    const mail = await smtp.waitFor(email, /Reset your password/);
    assert.match(mail.text, new RegExp(`${srv.url}/reset-password\\?token=`));
    const token = linkToken(mail, 'reset-password');
    const weak = await call(srv.url, 'POST', '/auth/password/reset', {
      body: { token, password: 'password' },
    });
    assert.equal(weak.body.error, 'weak_password');
    const next = 'a brand new passphrase for this';
    const reset = await call(srv.url, 'POST', '/auth/password/reset', { body: { token, password: next } });
    assert.equal(reset.status, 204, 'a weak password did not spend the link');
    const again = await call(srv.url, 'POST', '/auth/password/reset', { body: { token, password: next } });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_email_token');

    assert.equal((await call(srv.url, 'GET', '/auth/me', { headers: bearer(access) })).status, 401);
    const sessionMe = await call(srv.url, 'GET', '/auth/me', {
      headers: bearer(sessionLogin.body.session_token),
    });
    assert.equal(sessionMe.status, 401);
    const refreshed = await call(srv.url, 'POST', '/auth/refresh', {
      body: { refresh_token: tokenLogin.body.refresh_token },
    });
    assert.equal(refreshed.status, 401);
    let atApi = 200;
    for (let i = 0; i < 250 && atApi === 200; i++) {
      atApi = (await call(api.url, 'GET', '/api/hello', { headers: bearer(access) })).status;
      if (atApi === 200) await delay(20);
    }
    assert.equal(atApi, 401, 'the API server refuses the old access token');
    assert.equal((await login(srv, username)).status, 401, 'the old password is gone');
    assert.equal((await login(srv, email, next)).status, 200);
    await smtp.waitFor(email, /Your password was changed/);
    const types = (await srv.app.stores.audit.listAuditEvents({ userId: id, limit: 50 })).map((e) => e.type);
    for (const t of ['password_reset_requested', 'password_reset'] as const) assert.ok(types.includes(t), t);
  });

  it('answers a reset request the same for an account, an unverified address and nobody', async () => {
    const known = await signUp(srv, smtp);
    const unverified = await signUp(srv, smtp, { verify: false });
    const nobody = `${uniqueName('nobody')}@example.test`;
    const answers = [];
    for (const address of [known.email, unverified.email, nobody]) {
      const a = await forgot(srv, address);
      answers.push({
        status: a.status,
        body: a.body,
        headers: [...a.headers].filter(([k]) => !['date', 'content-length'].includes(k)),
      });
    }
    assert.equal(answers[0]!.status, 202);
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
    await srv.tessera.email.settled();
    await smtp.waitFor(known.email, /Reset your password/);
    assert.equal(smtp.to(unverified.email).filter((m) => /Reset/.test(m.subject)).length, 0);
    assert.equal(smtp.to(nobody).length, 0);
  });

  it('does no store work for a reset request before it has answered, whatever the address', async () => {
    const known = await signUp(srv, smtp);
    const { users, mail, audit } = srv.tessera.stores;
    const calls: string[] = [];
    const spy = <T extends object, K extends keyof T>(target: T, name: K, label: string) => {
      const original = target[name] as (...args: unknown[]) => unknown;
      target[name] = ((...args: unknown[]) => {
        calls.push(label);
        return original.apply(target, args);
      }) as T[K];
      return () => {
        target[name] = original as T[K];
      };
    };
    const restore = [
      spy(users, 'getUserByEmail', 'lookup'),
      spy(users, 'createEmailToken', 'token'),
      spy(mail, 'queueMail', 'mail'),
      spy(audit, 'appendAuditEvent', 'audit'),
    ];
    try {
      const client = { ip: '192.0.2.7', userAgent: null };
      const seen: Record<string, string[]> = {};
      for (const address of [known.email, `${uniqueName('nobody')}@example.test`]) {
        calls.length = 0;
        await srv.tessera.email.forgot(address, client);
        // Everything the request's own turn of the event loop still runs, its answer included.
        for (let i = 0; i < 50; i++) await Promise.resolve();
        assert.deepEqual(calls, [], 'nothing looked up, stored or audited before the answer');
        await srv.tessera.email.settled();
        seen[address] = [...calls];
      }
      assert.deepEqual(seen[known.email], ['lookup', 'token', 'mail', 'audit'], 'and done after it');
    } finally {
      for (const r of restore) r();
    }
  });

  it('registers first and mails after: the verification work, whoever holds the address, follows the answer', async () => {
    const holder = await signUp(srv, smtp);
    const { users, mail } = srv.tessera.stores;
    const calls: string[] = [];
    const originals = { lookup: users.getUserByEmail, queue: mail.queueMail };
    users.getUserByEmail = (...args) => {
      calls.push('lookup');
      return originals.lookup.apply(users, args);
    };
    mail.queueMail = (...args) => {
      calls.push('mail');
      return originals.queue.apply(mail, args);
    };
    try {
      for (const email of [holder.email, `${uniqueName('fresh')}@example.test`]) {
        calls.length = 0;
        const username = uniqueName('later');
        await srv.tessera.auth.register(username, PASSWORD, { ip: '192.0.2.9', userAgent: null }, email);
        assert.deepEqual(calls, [], `${email}: nothing looked up or mailed before the answer`);
        await srv.tessera.email.settled();
        assert.deepEqual(calls, ['lookup', 'mail'], 'and done after it');
      }
    } finally {
      users.getUserByEmail = originals.lookup;
      mail.queueMail = originals.queue;
    }
  });

  it('limits a flood of reset requests per address, without telling which addresses exist', async () => {
    const { email } = await signUp(srv, smtp);
    const nobody = `${uniqueName('nobody')}@example.test`;
    for (const address of [email, nobody]) {
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await forgot(srv, address)).status);
      assert.deepEqual(statuses, [202, 202, 202, 429, 429, 429], address);
    }
    await srv.tessera.email.settled();
    assert.equal(smtp.to(email).filter((m) => /Reset/.test(m.subject)).length, 3);
  });

  it('changes the address when the new one confirms; the old one is told and can undo it', async () => {
    const user = await signUp(srv, smtp);
    const first = await login(srv, user.username);
    const next = `${uniqueName('moved')}@example.test`;
    const asked = await call(srv.url, 'POST', '/auth/email/change', {
      body: { email: next },
      headers: bearer(first.body.access_token),
    });
    assert.equal(asked.status, 202);
    const confirm = await smtp.waitFor(next, /Confirm your new email address/);
    const notice = await smtp.waitFor(user.email, /being changed/);
    assert.ok(notice.text.includes(next), 'the notice names the new address');
    assert.equal((await login(srv, next)).status, 401, 'not before it is confirmed');
    const confirmed = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(confirm, 'confirm-email') },
    });
    assert.equal(confirmed.status, 200);
    assert.equal(confirmed.body.action, 'changed');
    assert.equal(confirmed.body.user.email, next);
    assert.equal((await login(srv, next)).status, 200);
    assert.equal((await login(srv, user.email)).status, 401);

    const undone = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(notice, 'confirm-email') },
    });
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    assert.equal(undone.body.action, 'restored');
    assert.equal(undone.body.user.email, user.email);
    assert.equal(
      (await call(srv.url, 'GET', '/auth/me', { headers: bearer(first.body.access_token) })).status,
      401,
      'an undo ends every session',
    );
    assert.equal((await login(srv, user.email)).status, 200);
    assert.equal((await login(srv, next)).status, 401);
    const types = (await srv.app.stores.audit.listAuditEvents({ userId: user.id, limit: 50 })).map(
      (e) => e.type,
    );
    for (const t of ['email_change_requested', 'email_changed', 'email_change_undone'] as const)
      assert.ok(types.includes(t), t);
  });

  it('an undo also kills the confirm link of the change it undid', async () => {
    const user = await signUp(srv, smtp);
    const thief = await login(srv, user.username);
    const evil = `${uniqueName('evil')}@example.test`;
    const asked = await call(srv.url, 'POST', '/auth/email/change', {
      body: { email: evil },
      headers: bearer(thief.body.access_token),
    });
    assert.equal(asked.status, 202);
    const confirm = await smtp.waitFor(evil, /Confirm your new email address/);
    const notice = await smtp.waitFor(user.email, /being changed/);
    const undone = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(notice, 'confirm-email') },
    });
    assert.equal(undone.body.action, 'restored');
    const late = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(confirm, 'confirm-email') },
    });
    assert.equal(late.status, 400);
    assert.equal(late.body.error, 'invalid_email_token');
    assert.equal((await login(srv, evil)).status, 401, 'the account is not the thief’s address');
    assert.equal((await login(srv, user.email)).status, 200);
  });

  /**
   * A thief with the session moves the account to B (confirmed there), then asks for a second
   * change from B: the owner holds the undo link for the first change, the thief one for B.
   */
  async function thiefMovesTheAccount() {
    const user = await signUp(srv, smtp);
    const thief = bearer((await login(srv, user.username)).body.access_token);
    const change = (email: string) =>
      call(srv.url, 'POST', '/auth/email/change', { body: { email }, headers: thief });
    const verify = (mail: ReceivedMail) =>
      call(srv.url, 'POST', '/auth/email/verify', { body: { token: linkToken(mail, 'confirm-email') } });
    const b = `${uniqueName('thiefb')}@example.test`;
    assert.equal((await change(b)).status, 202);
    const ownersUndo = await smtp.waitFor(user.email, /being changed/);
    assert.equal(
      (await verify(await smtp.waitFor(b, /Confirm your new email address/))).body.action,
      'changed',
    );
    srv.clock.now += 1000;
    assert.equal((await change(`${uniqueName('thiefc')}@example.test`)).status, 202);
    const thiefsUndo = await smtp.waitFor(b, /being changed/);
    srv.clock.now += 1000;
    return { user, verify, ownersUndo, thiefsUndo };
  }

  it("the owner's undo also kills the undo links of the changes a thief made after it", async () => {
    const { user, verify, ownersUndo, thiefsUndo } = await thiefMovesTheAccount();
    const restored = await verify(ownersUndo);
    assert.equal(restored.body.action, 'restored');
    assert.equal(restored.body.user.email, user.email);
    const back = await verify(thiefsUndo);
    assert.equal(back.status, 400, 'the thief cannot move it back');
    assert.equal(back.body.error, 'invalid_email_token');
    assert.equal((await login(srv, user.email)).status, 200);
  });

  it("a thief's later undo redeemed first does not take the owner's undo", async () => {
    const { user, verify, ownersUndo, thiefsUndo } = await thiefMovesTheAccount();
    assert.equal((await verify(thiefsUndo)).body.action, 'restored', 'back to B, a no-op');
    const owners = await verify(ownersUndo);
    assert.equal(owners.status, 200, "the owner's undo still works");
    assert.equal(owners.body.user.email, user.email);
  });

  it('a reset or a password change spends the reset and change links mailed before it', async () => {
    const user = await signUp(srv, smtp);
    assert.equal((await forgot(srv, user.email)).status, 202);
    const t1 = linkToken(await smtp.waitFor(user.email, /Reset your password/), 'reset-password');
    assert.equal((await forgot(srv, user.email)).status, 202);
    const t2 = linkToken(await smtp.waitFor(user.email, /Reset your password/, 1), 'reset-password');
    const reset = (token: string, password: string) =>
      call(srv.url, 'POST', '/auth/password/reset', { body: { token, password } });
    const first = 'the first new passphrase here';
    assert.equal((await reset(t2, first)).status, 204);
    const stale = await reset(t1, 'the thief would set this one');
    assert.equal(stale.status, 400, 'the other link died with the reset');
    assert.equal(stale.body.error, 'invalid_email_token');

    const signedIn = await login(srv, user.username, first);
    assert.equal((await forgot(srv, user.email)).status, 202);
    const t3 = linkToken(await smtp.waitFor(user.email, /Reset your password/, 2), 'reset-password');
    const moved = `${uniqueName('moved')}@example.test`;
    const asked = await call(srv.url, 'POST', '/auth/email/change', {
      body: { email: moved },
      headers: bearer(signedIn.body.access_token),
    });
    assert.equal(asked.status, 202);
    const confirm = await smtp.waitFor(moved, /Confirm your new email address/);
    const changed = await call(srv.url, 'POST', '/auth/password', {
      body: { current_password: first, new_password: 'the second new passphrase' },
      headers: bearer(signedIn.body.access_token),
    });
    assert.equal(changed.status, 204);
    assert.equal((await reset(t3, 'the thief would set this one')).body.error, 'invalid_email_token');
    const late = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(confirm, 'confirm-email') },
    });
    assert.equal(late.body.error, 'invalid_email_token');
    assert.equal((await login(srv, user.email, 'the second new passphrase')).status, 200);
  });

  it("a password change also spends the undo links: an old mailbox can't take the address back", async () => {
    const user = await signUp(srv, smtp);
    const owner = await login(srv, user.username);
    const moved = `${uniqueName('moved')}@example.test`;
    await call(srv.url, 'POST', '/auth/email/change', {
      body: { email: moved },
      headers: bearer(owner.body.access_token),
    });
    const confirm = await smtp.waitFor(moved, /Confirm your new email address/);
    const notice = await smtp.waitFor(user.email, /being changed/);
    const confirmed = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(confirm, 'confirm-email') },
    });
    assert.equal(confirmed.body.action, 'changed');
    const changed = await call(srv.url, 'POST', '/auth/password', {
      body: { current_password: PASSWORD, new_password: 'a passphrase for the new address' },
      headers: bearer(owner.body.access_token),
    });
    assert.equal(changed.status, 204);
    const undo = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(notice, 'confirm-email') },
    });
    assert.equal(undo.status, 400);
    assert.equal(undo.body.error, 'invalid_email_token');
    assert.equal((await login(srv, moved, 'a passphrase for the new address')).status, 200);
  });

  it('tells the address of a password change and of a sign-in from a new device', async () => {
    const user = await signUp(srv, smtp);
    const first = await login(srv, user.username, PASSWORD, { 'user-agent': 'Laptop/1.0' });
    await login(srv, user.username, PASSWORD, { 'user-agent': 'Laptop/1.0' });
    await srv.tessera.email.settled();
    assert.equal(smtp.to(user.email).filter((m) => /new device/.test(m.subject)).length, 0);
    await login(srv, user.username, PASSWORD, { 'user-agent': 'Phone/2.0' });
    const notice = await smtp.waitFor(user.email, /A sign-in from a new device/);
    assert.match(notice.text, /Phone\/2\.0/);
    const changed = await call(srv.url, 'POST', '/auth/password', {
      body: { current_password: PASSWORD, new_password: 'yet another long passphrase' },
      headers: bearer(first.body.access_token),
    });
    assert.equal(changed.status, 204);
    await smtp.waitFor(user.email, /Your password was changed/);
  });

  it('the SDK: register with an address, verify, forget, reset, change', async () => {
    const client = createClient({ issuer: srv.url, delivery: 'header', autoRefresh: false });
    try {
      const username = uniqueName('sdk');
      const email = `${username}@example.test`;
      await client.register(username, PASSWORD, { email });
      const verify = await smtp.waitFor(email, /Confirm your email address/);
      await client.login(username, PASSWORD);
      assert.deepEqual(await client.email(), { email, emailVerified: false });
      const byCode = await client.verifyEmailCode(codeIn(verify));
      assert.deepEqual(byCode.user.email, email);
      assert.deepEqual(await client.email(), { email, emailVerified: true });
      await assert.rejects(
        client
          .verifyEmail(linkToken(verify, 'verify-email'))
          .then(() => client.verifyEmail(linkToken(verify, 'verify-email'))),
        {
          code: 'invalid_email_token',
        },
      );
      await assert.rejects(client.requestEmailVerification(), { code: 'invalid_request' });
      const next = `${username}.next@example.test`;
      await client.changeEmail(next);
      const changed = await client.verifyEmail(
        linkToken(await smtp.waitFor(next, /Confirm your new/), 'confirm-email'),
      );
      assert.equal(changed.action, 'changed');
      await client.forgotPassword(next);
      const token = linkToken(await smtp.waitFor(next, /Reset your password/), 'reset-password');
      await client.resetPassword(token, 'a password set through the SDK');
      assert.equal(client.session, null, 'signed out here too');
      await client.login(next, 'a password set through the SDK');
      assert.ok(client.session);
    } finally {
      client.close();
    }
  });

  it('does not let a second account verify an address another has verified', async () => {
    const owner = await signUp(srv, smtp);
    const username = uniqueName('squat');
    const reg = await call(srv.url, 'POST', '/auth/register', {
      body: { username, password: PASSWORD, email: owner.email },
    });
    assert.equal(reg.status, 201, 'the same answer as for a free address');
    await smtp.waitFor(owner.email, /Your address was given at sign-up/);
    assert.equal(smtp.to(owner.email).filter((m) => /Confirm your email/.test(m.subject)).length, 1);
  });
});

describe('email settings: required, and verified before sign-in', () => {
  let smtp: TestSmtp;
  let srv: TestServer;
  before(async () => {
    smtp = await startSmtp();
    srv = await mailServer(smtp, { emailRequired: true, emailRequireVerified: true });
  });
  after(async () => {
    await srv?.close();
    await smtp?.stop();
  });

  it('refuses a registration without an address, and a sign-in before it is verified', async () => {
    const bare = await call(srv.url, 'POST', '/auth/register', {
      body: { username: uniqueName(), password: PASSWORD },
    });
    assert.equal(bare.status, 400);
    assert.equal(bare.body.error, 'invalid_request');
    const user = await signUp(srv, smtp, { verify: false });
    const early = await login(srv, user.username);
    assert.equal(early.status, 403);
    assert.equal(early.body.error, 'email_not_verified');
    const wrong = await login(srv, user.username, 'not the password at all');
    assert.equal(wrong.body.error, 'invalid_credentials', 'a wrong password learns nothing more');
    const verified = await call(srv.url, 'POST', '/auth/email/verify', {
      body: { token: linkToken(user.mail, 'verify-email') },
    });
    assert.equal(verified.status, 200);
    assert.equal((await login(srv, user.username)).status, 200);
  });
});

describe('email: a mail server that is down', () => {
  let smtp: TestSmtp;
  let srv: TestServer;
  before(async () => {
    smtp = await startSmtp(await freePort(), { listen: false });
    srv = await mailServer(smtp, { mailRetrySeconds: 1, metricsToken: undefined });
  });
  after(async () => {
    await srv?.close();
    await smtp?.stop();
  });

  const metric = async (name: string) => {
    const text = (await call(srv.url, 'GET', '/metrics')).body as string;
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(' ')[1]) : Number.NaN;
  };

  it('accepts the request, queues the mail, says so, and delivers it once the server is back', async () => {
    const username = uniqueName('down');
    const email = `${username}@example.test`;
    const reg = await call(srv.url, 'POST', '/auth/register', {
      body: { username, password: PASSWORD, email },
    });
    assert.equal(reg.status, 201, 'a mail failure fails no request');
    let ready = await call(srv.url, 'GET', '/readyz');
    for (let i = 0; i < 250 && !ready.body.mail.retrying; i++) {
      await delay(20);
      ready = await call(srv.url, 'GET', '/readyz');
    }
    assert.equal(ready.status, 200, 'mail trouble does not take the instance out of rotation');
    assert.deepEqual(ready.body.mail, { transport: 'smtp', queued: 1, retrying: true });
    assert.equal(await metric('tessera_mail_queued'), 1);
    assert.equal(await metric('tessera_mail_retrying'), 1);
    assert.ok((await metric('tessera_mail_failed_attempts')) >= 1);

    await smtp.listen();
    const mail = await smtp.waitFor(email, /Confirm your email address/);
    assert.ok(linkToken(mail, 'verify-email'));
    await srv.tessera.email.settled();
    ready = await call(srv.url, 'GET', '/readyz');
    assert.deepEqual(ready.body.mail, { transport: 'smtp', queued: 0, retrying: false });
    assert.equal(await metric('tessera_mail_sent'), 1);
    assert.equal(await metric('tessera_mail_retrying'), 0);
  });
});
