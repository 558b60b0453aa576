import { randomInt } from 'node:crypto';
import type { Config } from '../config.js';
import { TesseraError } from '../errors.js';
import type { MailQueue } from '../mail/queue.js';
import { type MailContext, mails } from '../mail/templates.js';
import type { Stores } from '../store/ports.js';
import type { EmailTokenPurpose, UserRecord } from '../store/types.js';
import { hmac, randomToken, sha256 } from '../util/crypto.js';
import type { Authenticated, AuthService, ClientInfo } from './auth.js';
import { checkPasswordPolicy, hashPassword } from './passwords.js';
import type { Secrets } from './secrets.js';
import { addressKey } from './throttle.js';
import { normalizeEmail } from './users.js';

const HOUR = 60 * 60_000;
/** Verification mails a user may ask for, and codes they may try, per hour. */
const VERIFY_MAILS_PER_HOUR = 5;
const CODE_TRIES_PER_HOUR = 10;
const CHANGES_PER_HOUR = 5;

export interface EmailDeps {
  config: Config;
  stores: Pick<Stores, 'users' | 'audit'>;
  secrets: Secrets;
  mail: MailQueue;
  auth: AuthService;
  now?: () => number;
}

/** What a redeemed link did. */
export type Redeemed = { action: 'verified' | 'changed' | 'restored'; user: UserRecord };

const refused = () =>
  new TesseraError('invalid_email_token', 'This link or code is not valid: used, expired or not yours.');

/**
 * Email identity and recovery: addresses and their verification, forgotten passwords, address
 * changes with an undo, and the notices sent to a verified address. Tokens are mailed, stored
 * only as keyed hashes, bound to purpose, user and address, and spent once.
 */
export class EmailAccounts {
  private readonly now: () => number;
  private readonly tasks = new Set<Promise<void>>();

  constructor(private readonly deps: EmailDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get config(): Config {
    return this.deps.config;
  }

  private get users() {
    return this.deps.stores.users;
  }

  private get ctx(): MailContext {
    return { productName: this.config.productName, issuer: this.config.issuer };
  }

  private linkHash(token: string): string {
    return hmac(this.deps.secrets.emailTokens, 'link', token);
  }

  private codeHash(userId: string, code: string): string {
    return hmac(this.deps.secrets.emailTokens, 'code', userId, code);
  }

  /** A new link token for `purpose`, stored by hash; returns the token for the mail. */
  private async issue(
    purpose: EmailTokenPurpose,
    userId: string,
    email: string,
    ttlSeconds: number,
  ): Promise<string> {
    const token = randomToken(32);
    const now = this.now();
    await this.users.createEmailToken({
      hash: this.linkHash(token),
      purpose,
      userId,
      email,
      createdAt: now,
      expiresAt: now + ttlSeconds * 1000,
      usedAt: null,
    });
    return token;
  }

  /**
   * Work done after the answer is sent: its time and its outcome never show in the answer. It
   * starts in a later turn of the event loop (setImmediate), once the request that asked for it
   * has written its answer; not a step of it, not even a first synchronous SQLite read, runs before.
   */
  private later(fn: () => Promise<void>): void {
    const task = new Promise<void>((resolve) => setImmediate(resolve))
      .then(fn)
      .catch((err: unknown) => this.deps.mail.log.warn({ err: String(err) }, 'mail step failed'))
      .finally(() => this.tasks.delete(task));
    this.tasks.add(task);
  }

  /** Resolves when the work begun after answers is done (shutdown: before the stores close). */
  async drained(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
  }

  /** Resolves when the work begun after answers is done and the mails are out (tests). */
  async settled(): Promise<void> {
    await this.drained();
    await this.deps.mail.idle();
  }

  private minutes(seconds: number): number {
    return Math.round(seconds / 60);
  }

  /** The link and code that verify the user's address; a notice instead when another account holds it. */
  async sendVerification(user: UserRecord, client?: ClientInfo): Promise<void> {
    const email = user.email;
    if (!email) return;
    const holder = await this.users.getUserByEmail(email);
    if (holder && holder.id !== user.id) {
      await this.deps.mail.enqueue(mails.emailInUse(this.ctx, email));
      await this.deps.auth.audit('email_verification_sent', {
        userId: user.id,
        client,
        detail: 'address in use',
      });
      return;
    }
    const ttl = this.config.emailTokenTtl;
    // One live link and code per account: the newest mail spends the ones before, so codes to
    // guess do not pile up with every mail asked for again.
    await this.users.spendEmailTokens(user.id, ['verify'], this.now());
    const token = await this.issue('verify', user.id, email, ttl);
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const now = this.now();
    await this.users.createEmailToken({
      hash: this.codeHash(user.id, code),
      purpose: 'verify',
      userId: user.id,
      email,
      createdAt: now,
      expiresAt: now + ttl * 1000,
      usedAt: null,
    });
    await this.deps.mail.enqueue(mails.verify(this.ctx, email, token, code, this.minutes(ttl)));
    await this.deps.auth.audit('email_verification_sent', { userId: user.id, client });
  }

  /**
   * The caller's account as stored now. The session's copy of the user holds only what every
   * request needs, not the address, which can change while the session lives.
   */
  private async account(who: Authenticated): Promise<UserRecord> {
    const user = await this.users.getUserById(who.user.id);
    if (!user || user.disabled) throw new TesseraError('unauthorized', 'Sign in first.');
    return user;
  }

  /** The signed-in user's address, `null` when the account has none, and whether it is verified. */
  async address(who: Authenticated): Promise<{ email: string | null; emailVerified: boolean }> {
    const user = await this.account(who);
    return { email: user.email, emailVerified: user.email !== null && user.emailVerified };
  }

  /** sendVerification after the answer (registration): its work and its outcome never show in it. */
  verifyLater(user: UserRecord, client?: ClientInfo): void {
    this.later(() => this.sendVerification(user, client));
  }

  /** The signed-in user asks for a new verification mail. */
  async requestVerification(who: Authenticated, client: ClientInfo): Promise<void> {
    const user = await this.account(who);
    if (!user.email) throw new TesseraError('invalid_request', 'The account has no email address.');
    if (user.emailVerified) throw new TesseraError('invalid_request', 'The address is verified already.');
    await this.deps.auth.throttle.limit(`email-verify:user:${user.id}`, VERIFY_MAILS_PER_HOUR, HOUR);
    await this.sendVerification(user, client);
  }

  /** Redeems a mailed link: a verification, a confirmed change, or an undone change. */
  async redeem(token: string, client: ClientInfo): Promise<Redeemed> {
    const hash = this.linkHash(token);
    const now = this.now();
    for (const purpose of ['verify', 'change', 'undo'] as const) {
      const t = await this.users.useEmailToken(hash, purpose, now);
      if (!t) continue;
      const user = await this.users.getUserById(t.userId);
      if (!user || user.disabled) break;
      if (purpose === 'verify') {
        if (user.email !== t.email) break;
        return { action: 'verified', user: await this.confirm(user, t.email, 'email_verified', client) };
      }
      if (purpose === 'change') {
        return { action: 'changed', user: await this.confirm(user, t.email, 'email_changed', client) };
      }
      const restored = await this.confirm(user, t.email, 'email_change_undone', client, false);
      // The undo links of changes asked for after this one (by whoever moved the account on, to
      // an address of theirs) would move it back there: they go. Older ones stay, so a thief who
      // redeems a later one first cannot take the owner's way back.
      await this.users.spendEmailTokens(user.id, ['undo'], this.now(), t.createdAt);
      await this.deps.auth.logoutAll(user, client, 'email_change_undone');
      return { action: 'restored', user: restored };
    }
    await this.deps.auth.audit('email_token_refused', { client, detail: 'link' });
    throw refused();
  }

  /** Redeems a verification code, which only its own signed-in user can use. */
  async redeemCode(who: Authenticated, code: string, client: ClientInfo): Promise<Redeemed> {
    const { throttle } = this.deps.auth;
    await throttle.limit(`email-code:user:${who.user.id}`, CODE_TRIES_PER_HOUR, HOUR);
    // Also per address: accounts that all claim one unverified address share its tries.
    const account = await this.account(who);
    if (account.email !== null)
      await throttle.limit(`email-code:addr:${sha256(account.email)}`, CODE_TRIES_PER_HOUR, HOUR);
    const t = await this.users.useEmailToken(this.codeHash(who.user.id, code), 'verify', this.now());
    if (!t || t.userId !== account.id || account.email !== t.email) {
      await this.deps.auth.audit('email_token_refused', { userId: who.user.id, client, detail: 'code' });
      throw refused();
    }
    return { action: 'verified', user: await this.confirm(account, t.email, 'email_verified', client) };
  }

  private async confirm(
    user: UserRecord,
    email: string,
    event: 'email_verified' | 'email_changed' | 'email_change_undone',
    client: ClientInfo,
    audit = true,
  ): Promise<UserRecord> {
    if (!(await this.users.setEmail(user.id, email, true))) {
      throw new TesseraError('email_taken', 'Another account has verified this address.');
    }
    if (audit) await this.deps.auth.audit(event, { userId: user.id, client });
    return { ...user, email, emailVerified: true };
  }

  /**
   * A forgotten password. Answers the same, after the same work, whatever the address: the
   * lookup, the token and the mail happen after the answer. Limited per address and per IP.
   */
  async forgot(input: unknown, client: ClientInfo): Promise<void> {
    const email = normalizeEmail(input);
    const { throttle } = this.deps.auth;
    await throttle.limit(
      `forgot:ip:${client.ip === null ? 'none' : addressKey(client.ip)}`,
      this.config.passwordResetPerIpPerHour,
      HOUR,
    );
    await throttle.limit(`forgot:addr:${sha256(email)}`, this.config.passwordResetPerAddressPerHour, HOUR);
    this.later(async () => {
      const user = await this.users.getUserByEmail(email);
      if (!user || user.disabled) {
        await this.deps.auth.audit('password_reset_requested', { client, detail: 'no account' });
        return;
      }
      const ttl = this.config.passwordResetTtl;
      const token = await this.issue('reset', user.id, email, ttl);
      await this.deps.mail.enqueue(mails.reset(this.ctx, email, token, this.minutes(ttl)));
      await this.deps.auth.audit('password_reset_requested', { userId: user.id, client });
    });
  }

  /** Sets a new password with a reset link, then ends every session and OAuth grant of the account. */
  async reset(token: string, password: string, client: ClientInfo): Promise<void> {
    const hash = this.linkHash(token);
    const pending = await this.users.getEmailToken(hash, 'reset', this.now());
    const user = pending ? await this.users.getUserById(pending.userId) : null;
    if (!pending || !user || user.disabled || user.email !== pending.email || !user.emailVerified) {
      await this.deps.auth.audit('email_token_refused', { userId: user?.id, client, detail: 'reset' });
      throw refused();
    }
    checkPasswordPolicy(password, user.username);
    const passwordHash = await hashPassword(password);
    // Spent only now, so a weak password does not burn the link; of racing uses one wins.
    if (!(await this.users.useEmailToken(hash, 'reset', this.now()))) throw refused();
    await this.users.setPasswordHash(user.id, passwordHash, this.now());
    await this.deps.auth.logoutAll(user, client, 'password_reset');
    this.passwordChanged(user);
  }

  /** The signed-in user asks to move the account to `input`: confirmed from there, announced here. */
  async requestChange(who: Authenticated, input: unknown, client: ClientInfo): Promise<void> {
    const email = normalizeEmail(input);
    const user = await this.account(who);
    if (user.email === email && user.emailVerified) {
      throw new TesseraError('invalid_request', 'That is the address of the account already.');
    }
    await this.deps.auth.throttle.limit(`email-change:user:${user.id}`, CHANGES_PER_HOUR, HOUR);
    const ttl = this.config.emailTokenTtl;
    const token = await this.issue('change', user.id, email, ttl);
    await this.deps.mail.enqueue(mails.confirmChange(this.ctx, email, token, this.minutes(ttl)));
    if (user.email && user.emailVerified) {
      const undo = await this.issue('undo', user.id, user.email, ttl);
      await this.deps.mail.enqueue(mails.changeNotice(this.ctx, user.email, email, undo, this.minutes(ttl)));
    }
    await this.deps.auth.audit('email_change_requested', {
      userId: user.id,
      sessionId: who.session.id,
      client,
    });
  }

  /** A notice to the verified address that the password changed, queued after the answer. */
  passwordChanged(user: Pick<UserRecord, 'email' | 'emailVerified'>): void {
    const email = user.email;
    if (email && user.emailVerified)
      this.later(() => this.deps.mail.enqueue(mails.passwordChanged(this.ctx, email)));
  }

  /**
   * A notice to the verified address that a provider was linked to the account or unlinked from
   * it, queued after the answer: a link made with a stolen session or cookie does not go unseen,
   * nor an unlink that locks the owner out.
   */
  providerChanged(userId: string, provider: string, change: 'linked' | 'unlinked'): void {
    this.later(async () => {
      const user = await this.users.getUserById(userId);
      if (user?.email && user.emailVerified)
        await this.deps.mail.enqueue(mails.providerChange(this.ctx, user.email, provider, change));
    });
  }

  /**
   * A notice to the verified address when a sign-in comes from a device (User-Agent) none of the
   * account's recent sign-ins came from; the first sign-in of an account is no news. The check
   * runs after the answer, so the sign-in itself (its session, `sessionId`) is left out of it.
   */
  newDeviceCheck(user: UserRecord, client: ClientInfo, sessionId: string): void {
    if (!user.email || !user.emailVerified) return;
    const email = user.email;
    const at = new Date(this.now());
    this.later(async () => {
      const earlier = (
        await this.deps.stores.audit.listAuditEvents({ userId: user.id, type: 'login_ok', limit: 101 })
      ).filter((e) => e.sessionId !== sessionId);
      if (earlier.length === 0 || earlier.some((e) => e.userAgent === client.userAgent?.slice(0, 512)))
        return;
      const device = client.userAgent?.slice(0, 200) ?? 'unknown';
      await this.deps.mail.enqueue(mails.newDevice(this.ctx, email, device, client.ip ?? 'unknown', at));
      await this.deps.auth.audit('new_device_notice', { userId: user.id, client });
    });
  }
}
