import { VerifyError } from '@tessera/verify';
import type { Config } from '../config.js';
import { TesseraError } from '../errors.js';
import {
  ANY_USE,
  refreshTokenId,
  type SessionUser,
  type Stores,
  sessionIdOfRefreshToken,
  UNUSED_ONLY,
} from '../store/ports.js';
import type {
  AuditType,
  EmailTokenPurpose,
  RefreshTokenRecord,
  SessionMode,
  SessionRecord,
  UserRecord,
} from '../store/types.js';
import { hmac, randomId, randomToken, safeEqual, sha256, splitIdSecret } from '../util/crypto.js';
import type { EmailAccounts } from './email.js';
import { checkPasswordPolicy, dummyHash, hashPassword, needsRehash, verifyPassword } from './passwords.js';
import type { Revocations } from './revocations.js';
import { refreshSuccessor, type Secrets } from './secrets.js';
import { type Reservation, Throttle } from './throttle.js';
import type { AccessClaims, TokenIssuer } from './tokens.js';
import { checkUsernameScripts, normalizeEmail, normalizeUsername } from './users.js';

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

export interface IssuedTokens {
  mode: SessionMode;
  session: SessionRecord;
  user: SessionUser;
  /** token mode */
  accessToken?: string;
  accessExpiresIn?: number;
  refreshToken?: string;
  refreshExpiresIn?: number;
  /** session mode */
  sessionToken?: string;
  sessionExpiresIn?: number;
}

export interface Authenticated {
  user: SessionUser;
  session: SessionRecord;
  /** How the request proved itself; cookie-authenticated writes need CSRF checks. */
  via: 'access_token' | 'session_token' | 'session_cookie';
  claims?: AccessClaims;
}

export interface AuthDeps {
  config: Config;
  stores: Pick<Stores, 'users' | 'sessions' | 'counters' | 'audit'>;
  tokens: TokenIssuer;
  secrets: Secrets;
  revocations: Revocations;
  now?: () => number;
}

const USER_AGENT_MAX = 512;

/** Why a session was ended as soon as it was written (see changedMeanwhile). */
type Refused = 'account disabled' | 'password changed meanwhile';
const ALWAYS_END_GRANTS = new Set(['account_disabled', 'password_reset', 'email_change_undone']);

/** What else of a user's ends with their sessions: their OAuth grants (linked by the OAuth server). */
export interface UserGrants {
  revokeUserGrants(userId: string, reason: string): Promise<number>;
}

/** The domain layer of the account server: no HTTP in here. */
export class AuthService {
  readonly throttle: Throttle;
  private readonly now: () => number;
  grants: UserGrants | undefined;
  /** Email identity and its notices (linked by createTessera). */
  email: EmailAccounts | undefined;

  constructor(private readonly deps: AuthDeps) {
    this.now = deps.now ?? Date.now;
    this.throttle = new Throttle(deps.stores.counters, deps.config, this.now);
  }

  private get config(): Config {
    return this.deps.config;
  }

  /** Mints and checks every token of this server; the OAuth server issues through it too. */
  get tokens(): TokenIssuer {
    return this.deps.tokens;
  }

  /** Appends to the audit trail. Nothing secret goes in: no password, no token. */
  audit(
    type: AuditType,
    fields: {
      userId?: string | null;
      sessionId?: string | null;
      client?: ClientInfo;
      detail?: string | null;
    },
  ): Promise<void> {
    return this.deps.stores.audit.appendAuditEvent({
      at: this.now(),
      type,
      userId: fields.userId ?? null,
      sessionId: fields.sessionId ?? null,
      ip: fields.client?.ip ?? null,
      userAgent: fields.client?.userAgent?.slice(0, USER_AGENT_MAX) ?? null,
      detail: fields.detail ?? null,
    });
  }

  async register(
    usernameInput: unknown,
    password: unknown,
    client?: ClientInfo,
    emailInput?: unknown,
  ): Promise<UserRecord> {
    const username = normalizeUsername(usernameInput);
    checkUsernameScripts(username);
    if (emailInput === undefined && this.config.emailRequired)
      throw new TesseraError('invalid_request', 'email is required.');
    const email = emailInput === undefined ? null : normalizeEmail(emailInput);
    if (typeof password !== 'string') throw new TesseraError('invalid_request', 'password must be a string.');
    checkPasswordPolicy(password, username);
    const now = this.now();
    const user: UserRecord = {
      id: randomId(),
      username,
      passwordHash: await hashPassword(password),
      roles: ['user'],
      disabled: false,
      createdAt: now,
      passwordChangedAt: now,
      email,
      emailVerified: false,
    };
    const created = await this.deps.stores.users.createUser(user);
    if (!created) throw new TesseraError('username_taken', 'That username is taken.');
    await this.audit('register', { userId: created.id, client });
    // After the answer, as for a forgotten password: whether another account holds the address
    // verified changes what is mailed, and must not change how long the answer takes.
    this.email?.verifyLater(created, client);
    return created;
  }

  /**
   * Unknown user, wrong password and disabled account cost the same (one argon2 verify) and
   * answer the same. Throttled per account and per IP before any password work.
   */
  async login(
    input: { username: unknown; password: unknown; mode: SessionMode },
    client: ClientInfo,
  ): Promise<IssuedTokens> {
    if (typeof input.password !== 'string' || input.password.length === 0) {
      throw new TesseraError('invalid_request', 'password must be a non-empty string.');
    }
    if (typeof input.username !== 'string')
      throw new TesseraError('invalid_request', 'username must be a string.');
    // An email address signs in the account whose verified address it is; the lockout counts
    // against that account, whichever name it is given by.
    // A name no account has counts under its normalised form too, so spellings of one unknown
    // address share a counter as those of a known one do (the answers tell nothing apart).
    let username: string | undefined;
    let byEmail: UserRecord | null | undefined;
    let claimed = input.username.normalize('NFKC').trim().toLowerCase();
    try {
      if (input.username.includes('@')) {
        claimed = normalizeEmail(input.username);
        byEmail = await this.deps.stores.users.getUserByEmail(claimed);
        username = byEmail?.username;
      } else username = normalizeUsername(input.username);
    } catch (err) {
      if (!(err instanceof TesseraError)) throw err;
      username = undefined;
    }
    const accountKey = username ?? `invalid:${sha256(claimed)}`;
    let reservation: Reservation;
    try {
      reservation = await this.throttle.reserveLogin(accountKey, client.ip);
    } catch (err) {
      await this.audit('login_failed', { client, detail: 'locked out' });
      throw err;
    }

    const user =
      byEmail !== undefined
        ? byEmail
        : username
          ? await this.deps.stores.users.getUserByUsername(username)
          : null;
    const password = input.password.length > 1024 ? '' : input.password;
    // An account without a password (it signs in through a provider) costs and answers the same as a wrong one.
    const ok = await verifyPassword(user?.passwordHash || (await dummyHash()), password);
    if (!user || !ok || !user.passwordHash || user.disabled || password === '') {
      const reason = !user ? 'unknown user' : user.disabled ? 'account disabled' : 'wrong password';
      await this.audit('login_failed', { userId: user?.id, client, detail: reason });
      const locked = await this.throttle.loginFailed(reservation);
      if (locked) await this.audit('lockout', { userId: user?.id, client, detail: locked });
      throw new TesseraError('invalid_credentials', 'Wrong username or password.');
    }
    await this.throttle.loginSucceeded(reservation);
    if (this.config.emailRequireVerified && !user.emailVerified) {
      await this.audit('login_failed', { userId: user.id, client, detail: 'email not verified' });
      throw new TesseraError('email_not_verified', 'Verify your email address before signing in.');
    }
    let verified = user;
    if (needsRehash(user.passwordHash)) {
      const rehashed = await hashPassword(password);
      // Only over the hash just verified: a change that landed meanwhile stays (and ends this
      // login). Another login's rehash of the same password may have landed instead: then the
      // stored hash still takes this password, and this login stands.
      const users = this.deps.stores.users;
      if (await users.setPasswordHash(user.id, rehashed, user.passwordChangedAt, user.passwordHash))
        verified = { ...user, passwordHash: rehashed };
      else {
        const current = await users.getUserById(user.id);
        if (current?.passwordHash && (await verifyPassword(current.passwordHash, password)))
          verified = current;
      }
    }
    const issued = await this.startSession(verified, input.mode, client, 'password');
    if (typeof issued === 'string') {
      await this.audit('login_failed', { userId: user.id, client, detail: issued });
      throw new TesseraError('invalid_credentials', 'Wrong username or password.');
    }
    this.email?.newDeviceCheck(user, client, issued.session.id);
    await this.audit('login_ok', {
      userId: user.id,
      sessionId: issued.session.id,
      client,
      detail: issued.mode,
    });
    return issued;
  }

  /**
   * An ordinary session for a user an upstream provider vouched for (domain/federation.ts):
   * the same session a password login starts, audited as a federated sign-in.
   */
  async federatedLogin(
    user: UserRecord,
    mode: SessionMode,
    client: ClientInfo,
    provider: string,
  ): Promise<IssuedTokens> {
    const disabled = () => new TesseraError('forbidden', 'This account is disabled.');
    if (user.disabled) throw disabled();
    const issued = await this.startSession(user, mode, client, 'provider');
    if (typeof issued === 'string') throw disabled();
    await this.audit('federated_login', {
      userId: user.id,
      sessionId: issued.session.id,
      client,
      detail: `${provider} ${issued.mode}`,
    });
    return issued;
  }

  /** Audits a federation event (link, unlink, a refused sign-in); the detail names the provider, nothing secret. */
  auditFederation(
    type: 'identity_linked' | 'identity_unlinked' | 'federated_login_failed' | 'register',
    fields: { userId?: string | null; sessionId?: string | null; client?: ClientInfo; detail: string },
  ): Promise<void> {
    return this.audit(type, fields);
  }

  /**
   * A new session for `user`, or why it was ended at once: the account was disabled while the
   * session was being started, or (for a password sign-in) its password was changed, since a
   * change ends every session and the password this one was started with is no longer the one.
   */
  private async startSession(
    user: UserRecord,
    mode: SessionMode,
    client: ClientInfo,
    by: 'password' | 'provider',
  ): Promise<IssuedTokens | Refused> {
    const now = this.now();
    const c = this.config;
    const id = randomId();
    const userAgent = client.userAgent ? client.userAgent.slice(0, USER_AGENT_MAX) : null;
    const secret = mode === 'session' ? randomToken(32) : undefined;
    const session: SessionRecord = {
      id,
      userId: user.id,
      mode,
      secretHash: secret === undefined ? null : sha256(secret),
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + (mode === 'session' ? c.sessionAbsoluteTtl : c.refreshAbsoluteTtl) * 1000,
      idleExpiresAt: now + (mode === 'session' ? c.sessionIdleTtl : c.refreshIdleTtl) * 1000,
      userAgent,
      ip: client.ip,
      revokedAt: null,
      revokeReason: null,
    };
    const sessionUser = toSessionUser(user);
    if (secret !== undefined) {
      await this.deps.stores.sessions.createSession(session, sessionUser);
      const refused = await this.changedMeanwhile(user, by, id, now);
      if (refused) return refused;
      return {
        mode,
        session,
        user: sessionUser,
        sessionToken: `${id}.${secret}`,
        sessionExpiresIn: c.sessionIdleTtl,
      };
    }
    const refreshSecret = randomToken(32);
    const first: RefreshTokenRecord = {
      id: refreshTokenId(id, randomId()),
      sessionId: id,
      secretHash: sha256(refreshSecret),
      parentId: null,
      createdAt: now,
      expiresAt: session.idleExpiresAt,
      usedAt: null,
    };
    await this.deps.stores.sessions.createSession(session, sessionUser, first);
    const refused = await this.changedMeanwhile(user, by, id, now);
    if (refused) return refused;
    return this.tokenPair(sessionUser, session, `${first.id}.${refreshSecret}`, first.expiresAt, now);
  }

  /**
   * Why the session just written for `user` was ended at once, or null when it stands. A disable
   * or a password change that ran after the user was read and before the session was written
   * found nothing of it to end; both write the user before they end sessions (a disable ends
   * them before too, see setDisabled), so reading the user after the session was written closes
   * that gap.
   */
  private async changedMeanwhile(
    user: UserRecord,
    by: 'password' | 'provider',
    sessionId: string,
    now: number,
  ): Promise<Refused | null> {
    const current = await this.deps.stores.users.getUserById(user.id);
    let refused: Refused | null = null;
    if (current === null || current.disabled) refused = 'account disabled';
    else if (
      by === 'password' &&
      (current.passwordHash !== user.passwordHash || current.passwordChangedAt !== user.passwordChangedAt)
    )
      refused = 'password changed meanwhile';
    if (refused === null) return null;
    const reason = refused === 'account disabled' ? 'account_disabled' : 'password_change';
    await this.deps.stores.sessions.revokeSession(sessionId, now, reason);
    await this.ended([sessionId], reason, now);
    return refused;
  }

  private async tokenPair(
    user: SessionUser,
    session: SessionRecord,
    refreshToken: string,
    refreshExpiresAt: number,
    now: number,
  ): Promise<IssuedTokens> {
    await this.deps.tokens.refreshKeys(now);
    return {
      mode: 'token',
      session,
      user,
      accessToken: await this.deps.tokens.firstPartyAccessToken(user, session.id, now),
      accessExpiresIn: this.config.accessTokenTtl,
      refreshToken,
      refreshExpiresIn: Math.max(0, Math.floor((refreshExpiresAt - now) / 1000)),
    };
  }

  /**
   * The successor of a refresh token is derived, not random, so a retry can be answered with it;
   * its id names the parent's session, as every refresh token id does.
   */
  private successorOf(parentId: string, parentSecret: string): { id: string; secret: string } {
    const next = refreshSuccessor(this.deps.secrets.refreshDerivation, parentId, parentSecret);
    return { id: refreshTokenId(sessionIdOfRefreshToken(parentId) ?? '', next.id), secret: next.secret };
  }

  async refresh(token: unknown, client?: ClientInfo): Promise<IssuedTokens> {
    const reservation = await this.throttle.reserveRefresh(client?.ip ?? null);
    let issued: IssuedTokens;
    try {
      issued = await this.rotate(token, client);
    } catch (err) {
      if (err instanceof TesseraError && err.code === 'invalid_refresh_token')
        await this.throttle.refreshFailed(reservation);
      else await this.throttle.refreshSucceeded(reservation);
      throw err;
    }
    await this.throttle.refreshSucceeded(reservation);
    return issued;
  }

  /** One store step: the store checks the secret, spends the token and stores the derived successor. */
  private async rotate(token: unknown, client?: ClientInfo): Promise<IssuedTokens> {
    const parts = splitIdSecret(token);
    if (!parts) throw new TesseraError('invalid_refresh_token', 'The refresh token is not valid.');
    const now = this.now();
    const next = this.successorOf(parts.id, parts.secret);
    const result = await this.deps.stores.sessions.rotateRefreshToken({
      id: parts.id,
      secretHash: sha256(parts.secret),
      successorId: next.id,
      successorSecretHash: sha256(next.secret),
      now,
      graceMs: this.config.refreshGraceSeconds * 1000,
      idleTtlMs: this.config.refreshIdleTtl * 1000,
    });
    switch (result.outcome) {
      case 'rotated':
      case 'grace':
        if (result.user.disabled) break;
        return this.tokenPair(
          result.user,
          result.session,
          `${next.id}.${next.secret}`,
          result.successorExpiresAt,
          now,
        );
      case 'reused':
        await this.ended([result.sessionId], 'refresh_reuse', now);
        await this.audit('refresh_reuse', { userId: result.userId, sessionId: result.sessionId, client });
        throw new TesseraError(
          'refresh_token_reused',
          'This refresh token was used before; the session has been ended.',
        );
      case 'invalid':
        break;
    }
    throw new TesseraError('invalid_refresh_token', 'The refresh token is not valid.');
  }

  /**
   * The live session behind a refresh token, without rotating it. To act for the user (linking
   * a provider) the token must be unused: the grace window is for retrying a refresh whose answer
   * was lost, not for anything else. `purpose: 'family'` also takes a spent one, for what any holder of a token of
   * the family may do, since replaying it at the refresh endpoint would end the family anyway:
   * read the session's CSRF token (no credential: it works only beside the current cookie, and a
   * tab that raced another's refresh keeps working) and end the session (a browser left with a
   * spent cookie, because a thief rotated first, still signs the thief out).
   */
  sessionOfRefreshToken(
    token: unknown,
    purpose: 'credential' | 'family' = 'credential',
  ): Promise<SessionRecord | null> {
    const parts = splitIdSecret(token);
    if (!parts) return Promise.resolve(null);
    return this.deps.stores.sessions.sessionOfRefreshToken(
      parts.id,
      sha256(parts.secret),
      this.now(),
      purpose === 'family' ? ANY_USE : UNUSED_ONLY,
    );
  }

  /**
   * Whether session `id` is still live, belongs to `userId` and its user is enabled: for a step
   * that a session started and that comes back without its cookie (a provider link).
   */
  async sessionStillLive(id: string, userId: string): Promise<boolean> {
    const live = await this.deps.stores.sessions.getLiveSession(id, this.now());
    return live !== null && live.session.userId === userId && !live.user.disabled;
  }

  /** The CSRF token of a session: only a cookie delivery answers with one, so it is made there. */
  csrfToken(sessionId: string): string {
    return hmac(this.deps.secrets.csrf, 'csrf', sessionId);
  }

  checkCsrf(sessionId: string, presented: unknown): boolean {
    return typeof presented === 'string' && safeEqual(presented, this.csrfToken(sessionId));
  }

  private isLive(s: SessionRecord, now: number): boolean {
    return s.revokedAt === null && s.expiresAt > now && s.idleExpiresAt > now;
  }

  /**
   * Who is calling: an access token (JWT) or a session token, from a Bearer header or the
   * session cookie. The session must still be live in every mode, so a logged-out access token
   * is refused here at once. Returns null when nothing valid was presented. Reads only: `touch`
   * slides the session's idle end.
   */
  async authenticate(credential: string, via: 'bearer' | 'cookie'): Promise<Authenticated | null> {
    const now = this.now();
    const sessions = this.deps.stores.sessions;
    if (via === 'bearer' && isJwtShaped(credential)) {
      let claims: AccessClaims;
      try {
        claims = await this.deps.tokens.verifyFirstParty(credential);
      } catch (err) {
        if (err instanceof VerifyError) return null;
        throw err;
      }
      const live = await sessions.getLiveSession(claims.sid, now);
      if (!live || live.session.userId !== claims.sub || live.user.disabled) return null;
      return { user: live.user, session: live.session, via: 'access_token', claims };
    }
    const parts = splitIdSecret(credential);
    if (!parts) return null;
    const live = await sessions.getLiveSession(parts.id, now);
    if (!live || live.user.disabled) return null;
    const { session } = live;
    if (session.mode !== 'session' || session.secretHash === null) return null;
    if (!safeEqual(session.secretHash, sha256(parts.secret))) return null;
    return { user: live.user, session, via: via === 'cookie' ? 'session_cookie' : 'session_token' };
  }

  /**
   * Marks a session token's session in use: its idle end moves on, at most once per touch
   * interval. An access token's session moves on when its refresh token rotates.
   */
  async touch(who: Authenticated): Promise<void> {
    if (who.via === 'access_token') return;
    const now = this.now();
    const { session } = who;
    if (now - session.lastSeenAt < this.config.sessionTouchInterval * 1000) return;
    const idleEnd = Math.min(session.expiresAt, now + this.config.sessionIdleTtl * 1000);
    await this.deps.stores.sessions.touchSession(session.id, now, idleEnd);
    session.lastSeenAt = now;
    session.idleExpiresAt = idleEnd;
  }

  async logout(session: SessionRecord, client?: ClientInfo): Promise<void> {
    const now = this.now();
    await this.deps.stores.sessions.revokeSession(session.id, now, 'logout');
    await this.ended([session.id], 'logout', now);
    await this.audit('logout', { userId: session.userId, sessionId: session.id, client });
  }

  /** Ends every session of the user; the audit entry counts `endedBefore` too (a disable's first pass). */
  async logoutAll(
    user: Pick<UserRecord, 'id'>,
    client?: ClientInfo,
    reason: 'logout_all' | 'account_disabled' | 'password_reset' | 'email_change_undone' = 'logout_all',
    endedBefore = 0,
  ): Promise<string[]> {
    const now = this.now();
    const ids = await this.deps.stores.sessions.revokeUserSessions(user.id, now, reason);
    await this.ended(ids, reason, now, user.id);
    await this.endGrants(user.id, reason);
    await this.spendMailedLinks(user.id, ['reset', 'change'], now);
    await this.audit(reason, {
      userId: user.id,
      client,
      detail: `${endedBefore + ids.length} sessions ended`,
    });
    return ids;
  }

  listSessions(user: Pick<UserRecord, 'id'>): Promise<SessionRecord[]> {
    return this.deps.stores.sessions.listSessions(user.id, this.now());
  }

  /** Ends one of the caller's own sessions; someone else's id answers not_found, like an unknown one. */
  async endSession(user: Pick<UserRecord, 'id'>, sessionId: string, client?: ClientInfo): Promise<void> {
    const session = await this.deps.stores.sessions.getSession(sessionId);
    const now = this.now();
    if (!session || session.userId !== user.id || !this.isLive(session, now)) {
      throw new TesseraError('not_found', 'No such session.');
    }
    await this.deps.stores.sessions.revokeSession(session.id, now, 'ended_by_user');
    await this.ended([session.id], 'ended_by_user', now);
    await this.audit('session_ended', { userId: user.id, sessionId: session.id, client });
  }

  async changePassword(
    auth: Authenticated,
    current: unknown,
    next: unknown,
    client?: ClientInfo,
  ): Promise<void> {
    if (typeof current !== 'string' || typeof next !== 'string') {
      throw new TesseraError('invalid_request', 'current_password and new_password must be strings.');
    }
    const user = await this.deps.stores.users.getUserById(auth.user.id);
    if (!user || user.disabled)
      throw new TesseraError('invalid_credentials', 'The current password is wrong.');
    if (!user.passwordHash)
      throw new TesseraError(
        'password_not_set',
        'This account has no password; it signs in through a provider.',
      );
    const reservation = await this.throttle.reserveLogin(user.username, null);
    if (!(await verifyPassword(user.passwordHash, current))) {
      await this.throttle.loginFailed(reservation);
      throw new TesseraError('invalid_credentials', 'The current password is wrong.');
    }
    await this.throttle.loginSucceeded(reservation);
    checkPasswordPolicy(next, user.username);
    const now = this.now();
    await this.deps.stores.users.setPasswordHash(user.id, await hashPassword(next), now);
    const ids = await this.deps.stores.sessions.revokeUserSessions(
      user.id,
      now,
      'password_change',
      auth.session.id,
    );
    await this.ended(ids, 'password_change', now);
    await this.endGrants(user.id, 'password_change');
    // Only someone who knew the password did this: the undo links go too (an old mailbox the
    // owner has left must not take the address back).
    await this.spendMailedLinks(user.id, ['reset', 'change', 'undo'], now);
    await this.audit('password_change', {
      userId: user.id,
      sessionId: auth.session.id,
      client,
      detail: `${ids.length} other sessions ended`,
    });
    this.email?.passwordChanged(user);
  }

  /**
   * The links mailed before the account was secured stop working, once its sessions have ended
   * (so none of them asks for a new one after): whoever asked for them (a thief with a session,
   * or with the mailbox for a while) is shut out with the sessions. Undo links stay unless the
   * password was changed by someone who knew it: after a reset or sign-out-everywhere they are
   * still the owner's way back from an address a thief moved the account to.
   */
  private async spendMailedLinks(
    userId: string,
    purposes: readonly EmailTokenPurpose[],
    now: number,
  ): Promise<void> {
    await this.deps.stores.users.spendEmailTokens(userId, purposes, now);
  }

  /**
   * After the store has ended sessions: tells the revocation feed (API servers hear at once; with
   * `everyTokenOf`, also every token of that user issued until now), then waits until no instance
   * can serve the sessions from a copy. Every ending goes through here.
   */
  private async ended(ids: string[], reason: string, now: number, everyTokenOf?: string): Promise<void> {
    if (ids.length > 0) await this.deps.revocations.revokeSessions(ids, reason, now);
    if (everyTokenOf !== undefined) await this.deps.revocations.revokeUser(everyTokenOf, reason, now);
    // Also when this call ended nothing: another instance may have ended the same sessions a
    // moment before, and its answer does not make the copies elsewhere run out any sooner.
    await this.deps.stores.sessions.settle?.();
  }

  /**
   * OAuth grants end with the sessions; a setting keeps them, except for a disabled account, a
   * password reset and an undone email change (the account may have been someone else's).
   */
  private async endGrants(userId: string, reason: string): Promise<void> {
    if (!ALWAYS_END_GRANTS.has(reason) && this.config.oauthKeepGrants) return;
    await this.grants?.revokeUserGrants(userId, reason);
  }

  /**
   * Admin: disable (revoking every session and OAuth grant) or enable an account.
   *
   * A disable ends the sessions, then writes the flag, then ends them again (with the grants).
   * SQL stores read the flag with every session, but Redis keeps the user as it was at sign-in
   * (store/redis-sessions.ts): a flag written with the sessions left standing would leave them
   * working there until a retry. In this order a disable that fails part way has written nothing
   * or ended every session that existed when it began, and says so; running it again completes
   * it. A sign-in racing the disable ends its own session once the flag is written (it reads the
   * user after writing it, changedMeanwhile); one that wrote it between the first pass and the
   * flag is left to the second pass.
   */
  async setDisabled(userId: string, disabled: boolean): Promise<boolean> {
    if (!disabled) {
      const ok = await this.deps.stores.users.setUserDisabled(userId, false);
      if (ok) await this.audit('account_enabled', { userId });
      return ok;
    }
    const now = this.now();
    const first = await this.deps.stores.sessions.revokeUserSessions(userId, now, 'account_disabled');
    await this.ended(first, 'account_disabled', now);
    if (!(await this.deps.stores.users.setUserDisabled(userId, true))) return false;
    await this.logoutAll({ id: userId }, undefined, 'account_disabled', first.length);
    return true;
  }
}

/** Three dot-separated parts, as a JWS compact serialization has; a session token has two. */
function isJwtShaped(credential: string): boolean {
  const first = credential.indexOf('.');
  const second = first < 0 ? -1 : credential.indexOf('.', first + 1);
  return second > 0 && credential.indexOf('.', second + 1) < 0;
}

function toSessionUser(user: UserRecord): SessionUser {
  return { id: user.id, username: user.username, roles: user.roles, disabled: user.disabled };
}
